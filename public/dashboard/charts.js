// @ts-check
/**
 * The two time-series charts, on uPlot (served from node_modules: no CDN). The data functions are pure: they turn the
 * API's series into uPlot's columnar form (one x array of target times in seconds, one y array per line, null where
 * a line has no point), and the page exposes what it plotted so a test can compare it with the API's JSON.
 */
import uPlot from "uplot";

/** @typedef {import("./api.js").SeriesPoint} SeriesPoint */
/** @typedef {import("./api.js").SkillPoint} SkillPoint */
/** @typedef {{ label: string, values: (number | null)[], version?: string }} Line */
/** @typedef {{ x: number[], lines: Line[] }} ChartData */

/** Line colours by version (cycled): distinguishable, and none of them the actual price's near-black. */
const PALETTE = ["#1f6feb", "#d9480f", "#8250df", "#1a7f37", "#bf3989", "#9a6700"];

/** @param {string} iso */
const seconds = (iso) => Date.parse(iso) / 1000;

/** @param {Iterable<string>} versions */
const byVersion = (versions) =>
  [...new Set(versions)].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));

/**
 * Predicted vs actual price: one x per distinct target time, the actual close and the naive forecast (the last close
 * at `as_of`) once per time, and one predicted line per version. A version forecasts a target time once (one
 * prediction id per as-of bar), so every point of the API has exactly one place here.
 * @param {SeriesPoint[]} points
 * @returns {ChartData}
 */
export function priceData(points) {
  const x = [...new Set(points.map((p) => seconds(p.target_time)))].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  /** @returns {(number | null)[]} */
  const empty = () => x.map(() => null);
  const actual = empty();
  const naive = empty();
  const versions = byVersion(points.map((p) => p.version));
  const predicted = new Map(versions.map((v) => [v, empty()]));
  for (const p of points) {
    const i = /** @type {number} */ (index.get(seconds(p.target_time)));
    actual[i] = p.actual_price ?? null;
    naive[i] = p.last_close;
    /** @type {(number | null)[]} */ (predicted.get(p.version))[i] = p.predicted_price;
  }
  return {
    x,
    // Naive last, dashed, so it shows over a forecast that stays close to the last close (most of them do).
    lines: [
      { label: "actual", values: actual },
      ...versions.map((v) => ({
        label: `predicted v${v}`,
        version: v,
        values: /** @type {(number | null)[]} */ (predicted.get(v)),
      })),
      { label: "naive (last close)", values: naive },
    ],
  };
}

/**
 * Rolling skill per version: one x per distinct target time, one line per version (null where that version has no
 * point, or where its skill is undefined because the naive MAPE is 0).
 * @param {SkillPoint[]} skill
 * @returns {ChartData}
 */
export function skillData(skill) {
  const x = [...new Set(skill.map((s) => seconds(s.target_time)))].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const versions = byVersion(skill.map((s) => s.version));
  /** @type {Map<string, (number | null)[]>} */
  const lines = new Map(versions.map((v) => [v, x.map(() => null)]));
  for (const s of skill) {
    /** @type {(number | null)[]} */ (lines.get(s.version))[
      /** @type {number} */ (index.get(seconds(s.target_time)))
    ] = s.skill;
  }
  return {
    x,
    lines: versions.map((v) => ({
      label: `skill v${v}`,
      version: v,
      values: /** @type {(number | null)[]} */ (lines.get(v)),
    })),
  };
}

const price = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const percent = new Intl.NumberFormat("en-US", {
  style: "percent",
  maximumFractionDigits: 1,
  signDisplay: "exceptZero",
});

/**
 * @param {Line} line
 * @param {number} i the line's place among the versions' lines (its colour)
 * @returns {uPlot.Series}
 */
function seriesOf(line, i) {
  const { label } = line;
  if (label === "actual") return { label, stroke: "#1b1f24", width: 2 };
  if (label.startsWith("naive")) return { label, stroke: "#6e7781", width: 1.5, dash: [5, 4] };
  return { label, stroke: PALETTE[i % PALETTE.length], width: 1.5 };
}

/**
 * Draws `data` into `target` (replacing what was there) and returns the chart; `null` and an explanation in the
 * container when there is nothing to draw.
 * @param {HTMLElement} target
 * @param {ChartData} data
 * @param {{ kind: "price" | "skill", empty: string }} options
 * @returns {uPlot | null}
 */
export function drawChart(target, data, options) {
  target.replaceChildren();
  target.dataset.points = String(data.x.length);
  if (data.x.length === 0) {
    const p = document.createElement("p");
    p.className = "no-data";
    p.textContent = options.empty;
    target.append(p);
    return null;
  }
  const isSkill = options.kind === "skill";
  let versionIndex = 0;
  /** @type {uPlot.Series[]} */
  const series = [{}, ...data.lines.map((line) => seriesOf(line, line.version ? versionIndex++ : 0))];
  /** @type {uPlot.AlignedData} */
  const aligned = [data.x, ...data.lines.map((l) => l.values)];
  if (isSkill) {
    // The naive forecast's skill is 0 by definition: the line each version has to stay above.
    series.push({
      label: "naive (skill 0)",
      stroke: "#8c959f",
      width: 1,
      dash: [6, 4],
      points: { show: false },
    });
    aligned.push(data.x.map(() => 0));
  }
  /** @type {uPlot.Options} */
  const opts = {
    width: Math.max(320, target.clientWidth || 900),
    height: isSkill ? 260 : 340,
    series,
    scales: { x: { time: true } },
    // Target times are UTC bar closes (00:00Z for daily bars): label them in UTC, as the tables do, not local time.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    axes: [
      {},
      {
        size: 70,
        values: (_u, ticks) => ticks.map((v) => (isSkill ? percent.format(v) : price.format(v))),
      },
    ],
  };
  return new uPlot(opts, aligned, target);
}
