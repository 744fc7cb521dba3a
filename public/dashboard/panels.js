// @ts-check
/**
 * The tables and notices: built with DOM nodes and textContent only (model names, versions and prediction ids come
 * from the API and are never parsed as HTML).
 */

/** @typedef {import("./api.js").Figures} Figures */
/** @typedef {import("./api.js").Summary} Summary */
/** @typedef {import("./api.js").ServingFigures} ServingFigures */
/** @typedef {import("./api.js").PredictionRecord} PredictionRecord */
/** @typedef {import("./api.js").WindowName} WindowName */

/** @type {WindowName[]} */
export const WINDOWS = ["7d", "30d", "all"];

const NO_DATA = "no data";
const number = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** @param {number | null | undefined} v percent already (MAPE) */
export const pct = (v) => (v == null ? "–" : `${v.toFixed(2)} %`);
/** @param {number | null | undefined} v a fraction (skill, direction, rates) */
export const fraction = (v) => (v == null ? "–" : `${(v * 100).toFixed(1)} %`);
/** @param {number | null | undefined} v a fraction that may be negative (skill: two decimals, it is often small) */
export const signed = (v) => (v == null ? "–" : `${v > 0 ? "+" : ""}${(v * 100).toFixed(2)} %`);
/** @param {number | null | undefined} v */
const ms = (v) => (v == null ? "–" : number.format(v));

/**
 * @param {string} tag
 * @param {{ text?: string, className?: string }} [options]
 * @param {(Node | string)[]} [children]
 */
export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  node.append(...children);
  return node;
}

/** @typedef {{ text: string, className?: string }} Cell */

/**
 * @param {string[]} head
 * @param {(Cell | string)[][]} rows
 * @param {string} [label]
 */
export function table(head, rows, label) {
  const t = el("table", {}, [
    el("thead", {}, [
      el(
        "tr",
        {},
        head.map((h) => el("th", { text: h })),
      ),
    ]),
    el(
      "tbody",
      {},
      rows.map((row) =>
        el(
          "tr",
          {},
          row.map((cell) =>
            typeof cell === "string"
              ? el("td", { text: cell })
              : el("td", { text: cell.text, className: cell.className }),
          ),
        ),
      ),
    ),
  ]);
  if (label) t.setAttribute("aria-label", label);
  return t;
}

/** @param {number | null} skill @returns {Cell} */
const skillCell = (skill) => ({
  text: skill == null ? "–" : `${signed(skill)}${skill < 0 ? " (loses to naive)" : ""}`,
  className: skill == null ? undefined : skill < 0 ? "bad" : "good",
});

/**
 * @param {string} scope
 * @param {Figures} f
 * @returns {(Cell | string)[]}
 */
const figuresRow = (scope, f) => [
  scope,
  f.window,
  integer.format(f.predictions),
  integer.format(f.resolved),
  pct(f.mape),
  pct(f.naive_mape),
  skillCell(f.skill),
  fraction(f.direction_accuracy),
];

/**
 * The model's figures per window, then each version's.
 * @param {Summary} summary
 */
export function figuresTable(summary) {
  const rows = WINDOWS.map((w) => figuresRow("model", summary.windows[w]));
  for (const v of summary.versions)
    rows.push(...WINDOWS.map((w) => figuresRow(`v${v.version}`, v.windows[w])));
  return table(
    ["", "window", "forecasts", "resolved", "MAPE", "naive MAPE", "skill", "direction"],
    rows,
    "accuracy by window",
  );
}

/**
 * What a reader must not miss: no data yet, nothing resolved yet, or a model that loses to naive.
 * @param {Summary} summary
 * @param {string} source
 * @returns {HTMLElement[]}
 */
export function notices(summary, source) {
  const notice = (/** @type {string} */ kind, /** @type {string} */ text) =>
    el("p", { className: `notice ${kind}`, text });
  if (summary.predictions === 0) {
    const how =
      source === "backfill"
        ? `backfill one: POST /api/ml/models/${summary.model}/backfill {from, to} or npm run cli -- backfill ${summary.model} --from … --to …`
        : 'serve one (POST /api/ml/serve; on data that has ended, such as the shipped CSVs, a live forecast is 503 market_data_stale and {"as_of": …} logs a replay instead), or switch to backfill after a backfill';
    return [notice("empty", `No data yet: no ${source} forecasts of ${summary.model} are logged; ${how}.`)];
  }
  if (summary.resolved === 0) {
    return [
      notice(
        "empty",
        `No data yet: ${summary.predictions} ${source} forecast(s) of ${summary.model} are logged and none has resolved (a forecast resolves once its target time has passed and the market has the bar).`,
      ),
    ];
  }
  const out = [];
  if (summary.skill != null && summary.skill < 0) {
    out.push(
      notice(
        "loses",
        `${summary.model} loses to the naive forecast on ${source} forecasts: skill ${signed(summary.skill)} (MAPE ${pct(summary.mape)} against the naive ${pct(summary.naive_mape)} over ${summary.resolved} resolved).`,
      ),
    );
  } else if (summary.skill != null) {
    out.push(
      notice(
        "beats",
        `${summary.model} ${summary.skill > 0 ? "is ahead of" : "ties with"} the naive forecast on ${source} forecasts: skill ${signed(summary.skill)} (MAPE ${pct(summary.mape)} against the naive ${pct(summary.naive_mape)} over ${summary.resolved} resolved). A point estimate, not a significance test: the selection policy's evidence says whether it beats naive.`,
      ),
    );
  }
  for (const v of summary.versions) {
    const skill = v.windows.all.skill;
    if (skill != null && skill < 0 && summary.versions.length > 1) {
      out.push(
        notice(
          "loses",
          `Version ${v.version} loses to naive: skill ${signed(skill)} over all its resolved forecasts.`,
        ),
      );
    }
  }
  return out;
}

/**
 * @param {string} scope
 * @param {ServingFigures | null} s
 * @returns {(Cell | string)[]}
 */
function servingRow(scope, s) {
  if (!s) return [scope, { text: NO_DATA, className: "no-data" }, "", "", "", "", "", "", "", "", ""];
  const codes = Object.entries(s.errors_by_code)
    .map(([code, n]) => `${code} ${n}`)
    .join(", ");
  const { serve, infer } = s.latency_ms;
  return [
    scope,
    integer.format(s.requests),
    fraction(s.error_rate),
    { text: codes || "–", className: "text" },
    ms(serve?.p50),
    ms(serve?.p90),
    ms(serve?.p99),
    ms(infer?.p50),
    ms(infer?.p99),
    fraction(s.cache.hit_rate),
    integer.format(s.cold_starts),
  ];
}

/**
 * Latency, cache and errors for the model and each version; "no data" where the telemetry has none.
 * @param {Summary} summary
 */
export function servingTable(summary) {
  const rows = [
    servingRow("model", summary.serving),
    ...summary.versions.map((v) => servingRow(`v${v.version}`, v.serving)),
  ];
  return table(
    [
      "",
      "requests",
      "error rate",
      "errors by code",
      "serve p50",
      "serve p90",
      "serve p99",
      "infer p50",
      "infer p99",
      "cache hit rate",
      "cold starts",
    ],
    rows,
    "serving",
  );
}

/** @param {string} iso */
const day = (iso) => iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z");

/**
 * The prediction log (admin): newest target first, as listed.
 * @param {PredictionRecord[]} items
 */
export function logTable(items) {
  return table(
    ["prediction", "version", "as of", "target", "last close", "predicted", "actual", "error"],
    items.map((r) => [
      { text: r.prediction_id, className: "text" },
      r.version,
      day(r.as_of),
      day(r.target_time),
      number.format(r.last_close),
      number.format(r.predicted_price),
      r.actual_price == null ? { text: "pending", className: "no-data" } : number.format(r.actual_price),
      r.error_pct == null ? "–" : `${r.error_pct > 0 ? "+" : ""}${r.error_pct.toFixed(2)} %`,
    ]),
    "prediction log",
  );
}

/** @typedef {import("./api.js").RolloutStatus} RolloutStatus */

/** @param {number | null | undefined} p */
const pValue = (p) => (p == null ? "–" : p < 0.0001 ? p.toExponential(2) : p.toFixed(4));

/** What each decision means, in words. */
const ACTIONS = {
  promote: "would promote the challenger: significantly better",
  end: "would end the rollout",
  continue: "would let it run",
};

/**
 * The running rollout and its live comparison: the numbers `POST …/rollout/evaluate` would decide on now (it decides
 * nothing here). Null p-values: too few paired outcomes yet, or a runtime without the test.
 * @param {RolloutStatus} status
 * @returns {HTMLElement[]}
 */
export function rolloutPanel(status) {
  const { rollout, comparison } = status;
  const what = el("p", {
    className: "hint",
    text:
      `Rollout ${rollout.id}: ${rollout.mode} of v${rollout.challenger} against v${rollout.champion ?? "(what serves)"}` +
      `${rollout.mode === "canary" ? `, ${fraction(rollout.weight)} of clients` : `, ${fraction(rollout.weight)} of forecasts mirrored`}` +
      `, since ${day(rollout.started_at)}; decides at ${rollout.min_outcomes} paired outcomes, ends after ${integer.format(rollout.max_duration_seconds / 86_400)} day(s).`,
  });
  if (!comparison) return [what, el("p", { className: "no-data", text: "No comparison available." })];
  const e = comparison.evidence;
  const rows = [
    ["challenger", `v${e.challenger}`, integer.format(e.outcomes.challenger), pct(e.mean_ape.challenger)],
    ["champion", `v${e.champion}`, integer.format(e.outcomes.champion), pct(e.mean_ape.champion)],
  ];
  const stats = table(
    ["paired outcomes", "mean difference", "DM statistic", "p (better)", "p (worse)", "α"],
    [
      [
        integer.format(e.pairs),
        e.mean_differential == null
          ? "–"
          : `${e.mean_differential > 0 ? "+" : ""}${e.mean_differential.toFixed(4)} pp`,
        e.dm_statistic == null ? "–" : e.dm_statistic.toFixed(3),
        pValue(e.p_value_better),
        pValue(e.p_value_worse),
        String(e.alpha),
      ],
    ],
    "rollout test",
  );
  const verdict = el("p", {
    className: `notice ${comparison.action === "promote" ? "beats" : comparison.action === "end" ? "loses" : "empty"}`,
    text: `Evaluated now, it ${ACTIONS[comparison.action]} (${comparison.reason.replaceAll("_", " ")}): ${comparison.summary}`,
  });
  return [
    what,
    table(["", "version", "outcomes", "mean APE (paired)"], rows, "rollout versions"),
    stats,
    verdict,
    el("p", { className: "hint", text: e.test }),
  ];
}
