/**
 * `npm run report:walk-forward [-- --until 2025-12-27] [--seed 42] [--hourly]`: trains (without registering anything)
 * what `npm run train` trains, BTC and ETH × gbdt and ridge with the same seed and defaults, and prints the
 * docs/forecasting.md tables in markdown: the walk-forward folds with the Diebold–Mariano test against naive, and the
 * held-out test split. The defaults reproduce the shipped versions (`--until 2025-12-27`, seed 42); `--hourly` adds the
 * hourly CSVs (all their bars: they end in 2022). Market data as for `npm run train` (MARKET_DATA_DIR or Yahoo).
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { DEFAULT_PLAN, trainingBars, UntilSchema } from "../src/forecast/training.js";
import type { Interval } from "../src/market/types.js";
import { nodeDeps } from "../src/runtime/node/deps.js";
import { type EvaluationReport, type ModelFamily, trainForecaster } from "../src/training/forecaster.js";

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
  report: EvaluationReport;
  wallMs: number;
}

async function runAll(interval: Interval, horizonBars: number, untilDate?: Date): Promise<Run[]> {
  const runs: Run[] = [];
  for (const symbol of symbols) {
    const bars = await trainingBars(market, symbol, interval, untilDate);
    for (const family of families) {
      const started = performance.now();
      const { report } = await trainForecaster({ bars, symbol, interval, horizonBars, family, seed });
      runs.push({ label: `${symbol} ${family}`, report, wallMs: performance.now() - started });
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

const out: string[] = [];
const dailyTitle = `Daily bars to ${values.until}, 24h = 1 bar, seed ${seed}`;
const daily = await runAll("1d", 1, until.data);
out.push(walkForwardTables(dailyTitle, daily), testTable(dailyTitle, daily));
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
