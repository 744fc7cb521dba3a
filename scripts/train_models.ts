/**
 * `npm run train [-- BTC ETH] [--families gbdt,ridge] [--seed 42] [--until 2025-12-27]`: trains the forecasters of
 * the given symbols (default BTC and ETH) from the configured market data — Yahoo Finance, or the CSV directory in
 * MARKET_DATA_DIR — registers each as a new version in the local registry (MODELS_DIR, default models/), and prints
 * the evaluation. `--until` trains only on bars closed by then (a date includes that UTC day): the bars after it stay
 * out of sample, for backfill.
 */
import { parseArgs } from "node:util";
import { SingleBar } from "cli-progress";
import { z } from "zod";
import { table } from "../src/cli/table.js";
import {
  DEFAULT_PLAN,
  dataCutoffOf,
  type TrainedVersion,
  trainSymbol,
  UntilSchema,
} from "../src/forecast/training.js";
import { SUPPORTED_SYMBOLS } from "../src/market/symbols.js";
import { nodeDeps } from "../src/runtime/node/deps.js";
import { createServices } from "../src/services/index.js";
import { type ModelFamily, trainForecaster } from "../src/training/forecaster.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    families: { type: "string", default: DEFAULT_PLAN.families.join(",") },
    seed: { type: "string", default: String(DEFAULT_PLAN.seed) },
    until: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "usage: npm run train -- [SYMBOL ...] [--families gbdt,ridge] [--seed 42] [--until YYYY-MM-DD|ISO date-time]",
  );
  console.log(
    `symbols: ${Object.keys(SUPPORTED_SYMBOLS).join(", ")}; market data: MARKET_DATA_DIR or Yahoo Finance`,
  );
  process.exit(0);
}
const symbols =
  positionals.length > 0 ? positionals.map((s) => s.toUpperCase()) : Object.keys(SUPPORTED_SYMBOLS);
const families = (values.families ?? "").split(",").filter(Boolean) as ModelFamily[];
const seed = Number(values.seed);
const untilArg = UntilSchema.optional().safeParse(values.until);
if (!untilArg.success) {
  console.error(`error: --until: ${z.prettifyError(untilArg.error)}`);
  process.exit(1);
}
const until = untilArg.data;

const deps = nodeDeps();
// The services alone: the registry registers what is trained, with no HTTP app around it.
const { registry } = createServices(deps, deps);
console.log(
  `market data: ${deps.market.name}; registry: ${deps.artifacts.kind} (${process.env.MODELS_DIR || "models/"})${until ? `; bars closed by ${until.toISOString()}` : ""}`,
);

const steps = symbols.length * (1 + 2 * families.length);
const bar = new SingleBar({
  format: "{bar} {value}/{total} {step}",
  hideCursor: true,
  clearOnComplete: true,
});
bar.start(steps, 0, { step: "" });
const results: TrainedVersion[] = [];
try {
  for (const symbol of symbols) {
    results.push(
      ...(await trainSymbol({
        symbol,
        trainer: deps.trainer ?? trainForecaster,
        market: deps.market,
        registry,
        plan: { families, seed },
        until,
        onProgress: (step) => bar.increment(1, { step }),
      })),
    );
  }
} catch (error) {
  bar.stop();
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
bar.stop();

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const rows = results.map(({ name, version, family, report, duplicate_of, archived }) => ({
  model: `${name}@${version}`,
  family,
  // A retrain whose bytes and calibration equal an existing version registers nothing: say so, never "new".
  registered:
    duplicate_of === undefined
      ? `new${archived ? ` (archived ${archived.join(",")})` : ""}`
      : `nothing: equal to version ${duplicate_of}`,
  "test rows": report.test.rows,
  "R² return": report.test.r2LogReturn.toFixed(4),
  MAPE: `${report.test.mape.toFixed(3)}%`,
  "naive MAPE": `${report.test.naiveMape.toFixed(3)}%`,
  skill: pct(report.test.skill),
  direction: pct(report.test.directionAccuracy),
  "R² price*": report.test.r2Price.toFixed(4),
  "train ms": Math.round(report.trainingTimeMs),
  // Walk-forward (report.walk_forward): mean ± std of the per-fold skills, and the one-sided DM p of "beats naive".
  "wf folds": report.walk_forward.folds.length,
  "wf skill": `${pct(report.walk_forward.mean_skill)} ± ${pct(report.walk_forward.std_skill)}`,
  "DM p": report.walk_forward.dm_p_value.toFixed(3),
  "wf ms": Math.round(report.walk_forward.time_ms),
  // Prediction interval (report.intervals): the served 80 % quantile, and its cross-conformal walk-forward coverage.
  "q 80%": report.intervals.calibration.quantiles["0.8"].toFixed(3),
  "wf cover 80%": pct(report.intervals.walk_forward.coverage),
  "data cutoff": dataCutoffOf(report),
}));
console.log(table(rows));
const unchanged = results.filter((r) => r.duplicate_of !== undefined).length;
if (unchanged > 0) {
  console.log(
    `${unchanged} of ${results.length} trained models equal an existing version (same bytes and calibration): nothing registered for them.`,
  );
}
console.log(
  "* R² on the price level is ~0.99 for any forecast, naive included: read skill (1 − MAPE / naive MAPE).",
);
for (const symbol of symbols) {
  const summary = await registry.getModel(`${symbol}-${DEFAULT_PLAN.horizon}`);
  console.log(`${summary.name}: serving version ${summary.serving?.version} (${summary.serving?.via})`);
}

// onnxruntime-web's start-up probes thread support with a MessageChannel (`ls()` in ort.wasm.bundle.min.mjs, run
// whatever numThreads is) whose port stays referenced in Node: with nothing else pending, the process would never
// end. Everything is written; flush stdout (a pipe writes asynchronously) and end here.
await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
process.exit(0);
