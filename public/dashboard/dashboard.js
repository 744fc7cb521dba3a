// @ts-check
/**
 * The dashboard page: a model and a source (live or backfill) chosen in the URL (`?model=BTC-24h&source=backfill`),
 * the performance summary and series of that pair drawn, and the admin panel with a token kept in sessionStorage
 * only (never localStorage, never a cookie: it goes when the tab goes).
 *
 * What the page drew is exposed as `window.__dashboard` (the chart data, the API's answers) and `data-state` on
 * <body> ("loading", "ready", "error"): the browser test compares the plotted points with the API's JSON.
 */
import {
  ApiError,
  fetchModelNames,
  fetchPredictions,
  fetchRollout,
  fetchSeries,
  fetchSummary,
} from "./api.js";
import { drawChart, priceData, skillData } from "./charts.js";
import { el, figuresTable, logTable, notices, rolloutPanel, servingTable } from "./panels.js";

/** @typedef {import("./api.js").Source} Source */

const DEFAULT_MODEL = "BTC-24h";
const TOKEN_KEY = "edgeml.adminToken";

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const modelSelect = /** @type {HTMLSelectElement} */ (byId("model"));
const tokenInput = /** @type {HTMLInputElement} */ (byId("token"));

/**
 * @typedef {{
 *   model: string, source: Source,
 *   summary?: import("./api.js").Summary, series?: import("./api.js").Series,
 *   charts: { price: import("uplot") | null, skill: import("uplot") | null },
 *   plotted: { price?: import("./charts.js").ChartData, skill?: import("./charts.js").ChartData },
 *   log?: import("./api.js").PredictionRecord[],
 *   rollout?: import("./api.js").RolloutStatus | null
 * }} DashboardState
 */

const params = new URLSearchParams(location.search);
/** @type {DashboardState} */
const state = {
  model: params.get("model") || DEFAULT_MODEL,
  source: params.get("source") === "backfill" ? "backfill" : "live",
  charts: { price: null, skill: null },
  plotted: {},
};
/** @type {Window & { __dashboard?: DashboardState }} */ (window).__dashboard = state;

const token = () => sessionStorage.getItem(TOKEN_KEY);

/** @param {unknown} error */
const messageOf = (error) =>
  error instanceof ApiError ? `${error.message}${error.code ? ` (${error.code})` : ""}` : String(error);

/** @param {string} text @param {boolean} [failed] */
function setStatus(text, failed = false) {
  const status = byId("status");
  status.textContent = text;
  status.className = failed ? "status notice error" : "status";
}

function syncUrl() {
  const query = new URLSearchParams({ model: state.model, source: state.source });
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

/** Fills the model selector; the current model stays listed even when the listing does not name it. */
async function loadModels() {
  /** @type {string[]} */
  let names = [];
  try {
    names = await fetchModelNames(token());
  } catch (error) {
    byId("notices").append(
      el("p", { className: "notice error", text: `Cannot list the models: ${messageOf(error)}` }),
    );
  }
  const all = [...new Set([state.model, ...names])].sort((a, b) =>
    a === DEFAULT_MODEL ? -1 : b === DEFAULT_MODEL ? 1 : a.localeCompare(b),
  );
  modelSelect.replaceChildren(...all.map((name) => new Option(name, name, false, name === state.model)));
}

/** Summary and series of the chosen model and source, drawn. */
async function loadPerformance() {
  document.body.dataset.state = "loading";
  setStatus(`Loading ${state.source} performance of ${state.model}…`);
  const { model, source } = state;
  try {
    const [summary, series] = await Promise.all([fetchSummary(model, source), fetchSeries(model, source)]);
    if (model !== state.model || source !== state.source) return; // a newer choice is loading
    state.summary = summary;
    state.series = series;
    byId("notices").replaceChildren(...notices(summary, source));
    byId("figures").replaceChildren(figuresTable(summary));
    byId("serving").replaceChildren(servingTable(summary));
    state.charts.price?.destroy();
    state.charts.skill?.destroy();
    const plotted = { price: priceData(series.points), skill: skillData(series.skill) };
    state.plotted = plotted;
    state.charts.price = drawChart(byId("price-chart"), plotted.price, {
      kind: "price",
      empty: `No resolved ${source} forecasts of ${model} yet.`,
    });
    state.charts.skill = drawChart(byId("skill-chart"), plotted.skill, {
      kind: "skill",
      empty: `No skill yet: it needs resolved ${source} forecasts.`,
    });
    setStatus(
      `${summary.model}, ${source} forecasts: ${summary.resolved} resolved of ${summary.predictions} logged; ` +
        `figures computed at ${summary.generated_at}.`,
    );
    document.body.dataset.state = "ready";
  } catch (error) {
    setStatus(`Cannot load the performance of ${model}: ${messageOf(error)}`, true);
    document.body.dataset.state = "error";
  }
  await loadLog();
  await loadRollout();
}

/** The admin panel's rollout: the running one's live comparison, when a token is set. */
async function loadRollout() {
  const panel = byId("rollout");
  const t = token();
  if (!t) {
    state.rollout = undefined;
    panel.replaceChildren(
      el("p", { className: "no-data", text: "Enter the admin token to see the model's rollout." }),
    );
    panel.dataset.state = "locked";
    return;
  }
  const { model } = state;
  try {
    const status = await fetchRollout(model, t);
    if (model !== state.model) return;
    state.rollout = status;
    panel.replaceChildren(
      ...(status
        ? rolloutPanel(status)
        : [
            el("p", {
              className: "no-data",
              text: `No rollout of ${model} is running: start one with POST /api/ml/models/${model}/rollout or npm run cli -- rollout start.`,
            }),
          ]),
    );
    panel.dataset.state = status ? "ready" : "none";
  } catch (error) {
    panel.replaceChildren(
      el("p", { className: "notice error", text: `Cannot read the rollout: ${messageOf(error)}` }),
    );
    panel.dataset.state = "error";
  }
}

/** The admin panel: the prediction log, when a token is set. */
async function loadLog(cursor = "") {
  const log = byId("log");
  const t = token();
  tokenInput.value = "";
  tokenInput.placeholder = t ? "a token is set for this tab" : "ADMIN_TOKEN";
  if (!t) {
    state.log = undefined;
    log.replaceChildren(
      el("p", { className: "no-data", text: "Enter the admin token to list the prediction log." }),
    );
    log.dataset.state = "locked";
    return;
  }
  try {
    const page = await fetchPredictions(state.model, state.source, t, cursor || undefined);
    state.log = cursor ? [...(state.log ?? []), ...page.items] : page.items;
    const more = el("button", { text: "More" });
    more.addEventListener("click", () => loadLog(page.next_cursor));
    log.replaceChildren(
      el("p", {
        className: "hint",
        text: `${state.log.length} ${state.source} forecast(s) of ${state.model}, newest target first.`,
      }),
      logTable(state.log),
      ...(page.next_cursor ? [more] : []),
    );
    log.dataset.state = "ready";
  } catch (error) {
    const refused = error instanceof ApiError && (error.status === 401 || error.status === 403);
    // A refused token is not kept: it would be sent again with every later request of this tab.
    if (refused) sessionStorage.removeItem(TOKEN_KEY);
    log.replaceChildren(
      el("p", {
        className: "notice error",
        text: refused
          ? `The token was refused, and forgotten: ${messageOf(error)}`
          : `Cannot list the log: ${messageOf(error)}`,
      }),
    );
    log.dataset.state = "error";
  }
}

modelSelect.addEventListener("change", () => {
  state.model = modelSelect.value;
  syncUrl();
  void loadPerformance();
});
for (const radio of document.querySelectorAll('input[name="source"]')) {
  const input = /** @type {HTMLInputElement} */ (radio);
  input.checked = input.value === state.source;
  input.addEventListener("change", () => {
    if (!input.checked) return;
    state.source = input.value === "backfill" ? "backfill" : "live";
    syncUrl();
    void loadPerformance();
  });
}
byId("reload").addEventListener("click", () => void loadPerformance());
byId("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = tokenInput.value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  void loadModels()
    .then(() => loadLog())
    .then(() => loadRollout());
});
byId("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  void loadLog().then(() => loadRollout());
});
window.addEventListener("resize", () => {
  for (const [chart, id] of /** @type {const} */ ([
    [state.charts.price, "price-chart"],
    [state.charts.skill, "skill-chart"],
  ])) {
    chart?.setSize({ width: Math.max(320, byId(id).clientWidth), height: chart.height });
  }
});

syncUrl();
await loadModels();
await loadPerformance();
