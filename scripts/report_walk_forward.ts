/**
 * `npm run report:walk-forward [-- --until 2025-12-27] [--seed 42] [--hourly]`: trains (without registering anything)
 * what `npm run train` trains, BTC and ETH × gbdt and ridge with the same seed and defaults, and prints the
 * docs/forecasting.md tables in markdown: the walk-forward folds with the Diebold–Mariano test against naive, and the
 * held-out test split, and the prediction intervals of the daily models: cross-conformal coverage, width and pinball
 * loss per fold and pooled against the naive Gaussian and a constant-width interval, and the coverage over the
 * source's last 90 days (after the cutoff: out of sample), computed as serving computes it (src/forecast/interval.ts
 * on the ONNX outputs). The defaults reproduce the shipped versions (`--until 2025-12-27`, seed 42); `--hourly` adds
 * the hourly CSVs (all their bars: they end in 2022). Market data as for `npm run train` (MARKET_DATA_DIR or Yahoo).
 */
import { parseArgs } from "node:util";
import normalQuantile from "@stdlib/stats-base-dists-normal-quantile";
import { z } from "zod";
import { featureMatrix } from "../src/features/index.js";
import { forecastInterval, INTERVAL_LEVELS, intervalScale } from "../src/forecast/interval.js";
import { DEFAULT_PLAN, trainingBars, UntilSchema } from "../src/forecast/training.js";
import type { Interval } from "../src/market/types.js";
import type { IntervalCalibration } from "../src/registry/metadata.js";
import { nodeDeps } from "../src/runtime/node/deps.js";
import {
  type EvaluationReport,
  type ModelFamily,
  type TrainedForecaster,
  trainForecaster,
} from "../src/training/forecaster.js";
import type { IntervalReport, IntervalScores } from "../src/training/intervals.js";
import { runForecaster } from "../src/training/onnx/runtime.js";

/** Significance level of "beats naive" in the tables: one-sided, 5 %. */
const LEVEL = 0.05;

const { values } = parseArgs({
  options: {
    until: { type: "string", default: "2025-12-27" },
    seed: { type: "string", default: String(DEFAULT_PLAN.seed) },
    hourly: { type: "boolean", default: false },
  },
});
const until = UntilSchema.safeParse(values.until);
if (!until.success) {
  console.error(`error: --until: ${z.prettifyError(until.error)}`);
  process.exit(1);
}
const seed = Number(values.seed);
const market = nodeDeps().market;
const symbols = ["BTC", "ETH"] as const;
const families: ModelFamily[] = ["gbdt", "ridge"];

interface Run {
  label: string;
  symbol: string;
  report: EvaluationReport;
  trained: TrainedForecaster;
  wallMs: number;
}

async function runAll(interval: Interval, horizonBars: number, untilDate?: Date): Promise<Run[]> {
  const runs: Run[] = [];
  for (const symbol of symbols) {
    const bars = await trainingBars(market, symbol, interval, untilDate);
    for (const family of families) {
      const started = performance.now();
      const trained = await trainForecaster({ bars, symbol, interval, horizonBars, family, seed });
      const wallMs = performance.now() - started;
      runs.push({ label: `${symbol} ${family}`, symbol, report: trained.report, trained, wallMs });
    }
  }
  return runs;
}

const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits).replace("-", "−")} %`;
const p = (x: number) => (x < 0.001 ? "< 0.001" : x.toFixed(3));
const tuned = (r: EvaluationReport) =>
  r.model.trees !== undefined
    ? `${r.model.trees} tree${r.model.trees === 1 ? "" : "s"}`
    : `α ${r.model.alpha}`;
const foldTuned = (f: EvaluationReport["walk_forward"]["folds"][number]) =>
  f.trees !== undefined ? `${f.trees}` : `${f.alpha}`;
const day = (iso: string) => iso.slice(0, 10);
const lastDay = (iso: string) => new Date(Date.parse(iso) - 86_400_000).toISOString().slice(0, 10);

function walkForwardTables(title: string, runs: Run[]): string {
  const first = (runs[0] as Run).report.walk_forward;
  const lines = [`**${title}: walk-forward skill per fold** (fold rows; tuned trees or α in brackets)`, ""];
  lines.push(`| fold | rows | ${runs.map((r) => r.label).join(" | ")} |`);
  lines.push(`|---|---|${runs.map(() => "---").join("|")}|`);
  first.folds.forEach((fold, k) => {
    const cells = runs.map((r) => {
      const f = r.report.walk_forward.folds[k] as (typeof first.folds)[number];
      return `${pct(f.skill)} (${foldTuned(f)})`;
    });
    lines.push(`| ${day(fold.from)} .. ${lastDay(fold.to)} | ${fold.rows} | ${cells.join(" | ")} |`);
  });
  const row = (name: string, cell: (w: EvaluationReport["walk_forward"]) => string) =>
    lines.push(`| **${name}** | | ${runs.map((r) => cell(r.report.walk_forward)).join(" | ")} |`);
  row("mean skill", (w) => pct(w.mean_skill));
  row("std across folds", (w) => pct(w.std_skill));
  row("pooled: MAPE / naive", (w) => `${w.mape.toFixed(3)} % / ${w.naive_mape.toFixed(3)} %`);
  row("pooled skill", (w) => pct(w.pooled_skill));
  row("DM statistic (HLN)", (w) => w.dm_statistic.toFixed(2).replace("-", "−"));
  row("DM p (one-sided)", (w) => p(w.dm_p_value));
  row(`beats naive at ${LEVEL * 100} %`, (w) => (w.dm_p_value < LEVEL ? "**yes**" : "no"));
  lines.push("");
  return lines.join("\n");
}

function testTable(title: string, runs: Run[]): string {
  const lines = [
    `**${title}: held-out test split** (a report only: nothing is chosen on it)`,
    "",
    "| model | tuned | test split (rows) | R² log return | MAPE | naive MAPE | skill | direction | R² price (naive) |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const { label, report: r } of runs) {
    const t = r.test;
    lines.push(
      `| ${label} | ${tuned(r)} | ${day(r.splits.test.first)} .. ${day(r.splits.test.last)} (${t.rows}) | ${t.r2LogReturn.toFixed(4).replace("-", "−")} | ${t.mape.toFixed(3)} % | ${t.naiveMape.toFixed(3)} % | ${pct(t.skill)} | ${pct(t.directionAccuracy, 1)} | ${t.r2Price.toFixed(4)} (${t.naiveR2Price.toFixed(4)}) |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

/** A version's interval evidence: each trained version's, and each symbol's naive version's (ŷ = 0, same rows). */
interface IntervalRun {
  label: string;
  symbol: string;
  intervals: IntervalReport;
  calibration: IntervalCalibration;
  /** The ONNX bytes (null: the naive version, whose output is 0). */
  onnx: Uint8Array | null;
}

function intervalRuns(runs: Run[]): IntervalRun[] {
  const out: IntervalRun[] = [];
  for (const symbol of symbols) {
    const ofSymbol = runs.filter((r) => r.symbol === symbol);
    for (const r of ofSymbol) {
      const { intervals } = r.report;
      out.push({
        label: r.label,
        symbol,
        intervals,
        calibration: r.trained.calibration,
        onnx: r.trained.onnx,
      });
    }
    // The naive version takes the first trained run's (npm run train registers it from the gbdt run).
    const first = ofSymbol[0] as Run;
    const { naive } = first.trained;
    out.push({ label: `${symbol} naive`, symbol, ...naive, onnx: null });
  }
  return out;
}

const q = (x: number) => x.toFixed(3);
const cover = (s: IntervalScores) => pct(s.coverage, 1);
const pinballE3 = (x: number) => (x * 1000).toFixed(3);

function intervalTables(title: string, runs: IntervalRun[]): string {
  const first = (runs[0] as IntervalRun).intervals.walk_forward;
  const lines = [
    `**${title}: 80 % interval, cross-conformal coverage per walk-forward fold** (each fold's q from the other folds' out-of-sample scores; naive Gaussian interval in brackets)`,
    "",
    `| fold | rows | ${runs.map((r) => r.label).join(" | ")} |`,
    `|---|---|${runs.map(() => "---").join("|")}|`,
  ];
  first.folds.forEach((fold, k) => {
    const cells = runs.map((r) => {
      const f = r.intervals.walk_forward.folds[k] as (typeof first.folds)[number];
      return `${cover(f)} (${cover(f.naive)})`;
    });
    lines.push(`| ${day(fold.from)} .. ${lastDay(fold.to)} | ${fold.rows} | ${cells.join(" | ")} |`);
  });
  const row = (name: string, cell: (r: IntervalRun) => string) =>
    lines.push(`| **${name}** | | ${runs.map(cell).join(" | ")} |`);
  const wf = (r: IntervalRun) => r.intervals.walk_forward;
  row("pooled coverage", (r) => `${cover(wf(r))} (${cover(wf(r).naive)})`);
  row("mean width, % of close", (r) => `${q(wf(r).mean_width_pct)} (${q(wf(r).naive.mean_width_pct)})`);
  row(
    "pinball loss ×1000",
    (r) => `${pinballE3(wf(r).pinball_loss)} (${pinballE3(wf(r).naive.pinball_loss)})`,
  );
  row(
    "constant width: coverage, width, pinball",
    (r) =>
      `${cover(wf(r).constant_width)}, ${q(wf(r).constant_width.mean_width_pct)}, ${pinballE3(wf(r).constant_width.pinball_loss)}`,
  );
  row("served q (test split)", (r) => q(r.calibration.quantiles["0.8"]));
  lines.push("");
  lines.push(
    `**${title}: pooled walk-forward coverage and pinball loss ×1000 by level** (conformal / naive Gaussian)`,
    "",
    `| level | ${runs.map((r) => r.label).join(" | ")} |`,
    `|---|${runs.map(() => "---").join("|")}|`,
  );
  for (const level of INTERVAL_LEVELS) {
    const cells = runs.map((r) => {
      const l = wf(r).levels.find((x) => x.level === level) as (typeof first.levels)[number];
      return `${cover(l)} / ${cover(l.naive)}; ${pinballE3(l.pinball_loss)} / ${pinballE3(l.naive.pinball_loss)}`;
    });
    lines.push(`| ${level} | ${cells.join(" | ")} |`);
  }
  lines.push("");
  return lines.join("\n");
}

/**
 * Coverage of the served interval over the source's last `days` bars' closes (the forecasts as of each of their opens),
 * computed as serving computes it: the version's ONNX output on the bar's features, σ from the same vector, the
 * calibration's q (src/forecast/interval.ts). test/forecast/intervals-api.test.ts checks the served ones equal it.
 */
async function lastDaysCoverage(runs: IntervalRun[], interval: Interval, days: number): Promise<string> {
  const lines = [
    `**The source's last ${days} daily closes (forecasts as of ${days} consecutive bars after the cutoff: out of sample), served interval coverage** (naive Gaussian interval in brackets)`,
    "",
    `| level | ${runs.map((r) => r.label).join(" | ")} |`,
    `|---|${runs.map(() => "---").join("|")}|`,
  ];
  const cells = new Map<number, string[]>();
  let span = "";
  for (const r of runs) {
    const bars = await market.getBars(r.symbol, interval);
    const matrix = featureMatrix(bars, 1);
    const from = matrix.X.length - days;
    const X = matrix.X.slice(from);
    span = `${day(new Date((matrix.times[from] as number) + 86_400_000).toISOString())} .. ${day(new Date((matrix.times.at(-1) as number) + 86_400_000).toISOString())}`;
    const predictions = r.onnx ? await runForecaster(r.onnx, X, X[0]?.length ?? 0) : new Float64Array(days);
    for (const level of INTERVAL_LEVELS) {
      const z = normalQuantile((1 + level) / 2, 0, 1);
      let inside = 0;
      let insideNaive = 0;
      X.forEach((x, i) => {
        const close = matrix.closes[from + i] as number;
        const actual = matrix.targetCloses[from + i] as number;
        const sigma = intervalScale(x, 1);
        const band = forecastInterval(r.calibration, level, close, predictions[i] as number, sigma);
        if (band && actual >= band.lower && actual <= band.upper) inside++;
        const gaussian = { lower: close * Math.exp(-z * sigma), upper: close * Math.exp(z * sigma) };
        if (actual >= gaussian.lower && actual <= gaussian.upper) insideNaive++;
      });
      const list = cells.get(level) ?? [];
      list.push(`${pct(inside / days, 1)} (${pct(insideNaive / days, 1)})`);
      cells.set(level, list);
    }
  }
  for (const level of INTERVAL_LEVELS) lines.push(`| ${level} | ${(cells.get(level) ?? []).join(" | ")} |`);
  lines.push("", `As-of span: ${span} (${days} forecasts per version).`, "");
  return lines.join("\n");
}

const out: string[] = [];
const dailyTitle = `Daily bars to ${values.until}, 24h = 1 bar, seed ${seed}`;
const daily = await runAll("1d", 1, until.data);
out.push(walkForwardTables(dailyTitle, daily), testTable(dailyTitle, daily));
const dailyIntervals = intervalRuns(daily);
out.push(intervalTables(dailyTitle, dailyIntervals), await lastDaysCoverage(dailyIntervals, "1d", 90));
let all = daily;
if (values.hourly) {
  const hourlyTitle = `Hourly bars (all of the CSVs), 24h = 24 bars, seed ${seed}`;
  const hourly = await runAll("1h", 24);
  out.push(walkForwardTables(hourlyTitle, hourly), testTable(hourlyTitle, hourly));
  all = [...daily, ...hourly];
}
out.push(
  `Reproduce: \`MARKET_DATA_DIR=../shared/data/market npm run report:walk-forward -- --until ${values.until} --seed ${seed}${values.hourly ? " --hourly" : ""}\``,
  "",
  `Wall time per model (final fit, ${(daily[0] as Run).report.walk_forward.folds.length} folds, ONNX checks): ${all.map((r) => `${r.label} ${r.report.interval} ${(r.wallMs / 1000).toFixed(1)} s`).join(", ")}`,
);
console.log(out.join("\n"));
