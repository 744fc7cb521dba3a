/**
 * The one entry point of training: bars in, an ONNX forecaster and its evaluation out. Every reported metric comes
 * from running exported ONNX bytes in onnxruntime-web, and the run fails unless ORT reproduces the in-memory model
 * bit for bit on every row it scores.
 *
 * The shipped model is fitted on the train split and tuned (GBDT early stopping, ridge alpha) on the validation split
 * that follows it; the test split after that is held out: the report's `test` scores the shipped bytes on rows they
 * never saw, chooses nothing, and leaves rows for calibration. Refitting on the test rows too would make that score
 * in-sample. The recipe itself is judged by walk-forward (walk-forward.ts): six calendar folds, each refitted and tuned
 * on its own past only, with a Diebold–Mariano test against naive; that, not the test split, is what selection reads.
 */

import { FEATURE_NAMES, FEATURE_SET, type FeatureSet, featureMatrix } from "../features/index.js";
import { barStep, INTERVAL_MS, isoTime } from "../market/symbols.js";
import type { Bar, Interval } from "../market/types.js";
import type { IntervalCalibration } from "../registry/metadata.js";
import { sha256Hex } from "../util/hash.js";
import { TrainingError } from "./errors.js";
import { type ForecastMetrics, forecastMetrics, rankImportance } from "./evaluate.js";
import { planWalkForward, WALK_FORWARD_DEFAULTS, type WalkForwardOptions } from "./folds.js";
import { type Dataset, GBDT_DEFAULTS, type GbdtParams, predictGbdt, trainGbdt } from "./gbdt.js";
import { calibrate, type IntervalReport, type IntervalRows, intervalReport } from "./intervals.js";
import { exportGbdt, exportNaive, exportRidge } from "./onnx/export.js";
import { ortVersion, runForecaster } from "./onnx/runtime.js";
import { predictRidge, RIDGE_DEFAULTS, type RidgeParams, trainRidge } from "./ridge.js";
import { type ChronologicalSplit, chronologicalSplit, type RowRange, type SplitOptions } from "./split.js";
import { type WalkForwardReport, type WalkForwardResult, walkForward } from "./walk-forward.js";

export type ModelFamily = "gbdt" | "ridge";

export interface TrainForecasterInput {
  /** Contiguous bars at `interval`, ascending (e.g. from a MarketDataSource). */
  bars: readonly Bar[];
  symbol: string;
  interval: Interval;
  /** Forecast horizon in bars (24 for 24h on hourly bars, 1 on daily bars). */
  horizonBars: number;
  family: ModelFamily;
  /** Seeds row subsampling (GBDT); same bars + seed + params = byte-identical ONNX. */
  seed: number;
  /** Overrides of GBDT_DEFAULTS or RIDGE_DEFAULTS, by family; a key of the other family is rejected. */
  params?: Partial<Omit<GbdtParams, "seed">> | Partial<RidgeParams>;
  /** Split fractions and embargo; defaults 70/15/15 with an embargo of the horizon. */
  split?: SplitOptions;
  /** Walk-forward folds; default WALK_FORWARD_DEFAULTS of the interval (6 quarters of daily bars, 6 months of hourly). */
  walkForward?: Partial<WalkForwardOptions>;
}

export interface SplitSummary {
  rows: number;
  /** As-of time of the first and last row (ISO 8601). */
  first: string;
  last: string;
}

export interface EvaluationReport {
  symbol: string;
  interval: Interval;
  horizonBars: number;
  family: ModelFamily;
  seed: number;
  /** Every parameter in force (defaults included), the seed aside: pass it back as `params` to retrain the same model. */
  params: Omit<GbdtParams, "seed"> | RidgeParams;
  featureSet: FeatureSet;
  target: "log_return";
  /** The bars trained on: count and open time of the first and last. */
  data: { bars: number; first: string; last: string };
  splits: { train: SplitSummary; validation: SplitSummary; test: SplitSummary; embargoRows: number };
  /**
   * Metrics of the shipped model on the held-out test split, computed from the exported ONNX model's outputs. A
   * report only: nothing is chosen on it (the model's tuning uses the validation split, selection the walk-forward).
   */
  test: ForecastMetrics;
  /** The recipe refitted and scored on calendar folds, with a Diebold–Mariano test against naive (walk-forward.ts). */
  walk_forward: WalkForwardReport;
  /**
   * Prediction intervals (intervals.ts): the calibration that serves (split-conformal on the test split) and the
   * method's cross-conformal coverage, width and pinball loss on the walk-forward folds, beside a naive interval's.
   */
  intervals: IntervalReport;
  /** Gain importance (GBDT) or |standardised coefficient| (ridge), summing to 1, largest first. */
  featureImportance: { feature: string; importance: number }[];
  importanceKind: "gain" | "abs_standardized_coefficient";
  /** What early stopping / validation chose, and the validation MSE of the kept model. */
  model: { trees?: number; alpha?: number; validationLoss: number };
  /** Wall time of fitting the model (not features, export or evaluation). */
  trainingTimeMs: number;
  /** The runtime that produced the test metrics and the parity check. */
  evaluatedWith: string;
  parity: { rows: number; bitExact: true };
}

export interface TrainedForecaster {
  onnx: Uint8Array;
  /** Hex sha256 of `onnx`, for the registry's integrity check. */
  sha256: string;
  report: EvaluationReport;
  /** Eight test rows and the ONNX outputs for them, to check a loaded artifact against. */
  golden: { inputs: number[][]; outputs: number[] };
  featureSet: FeatureSet;
  featureNames: readonly string[];
  /**
   * The walk-forward folds' predictions, each from a model fitted before its fold: out-of-sample residuals for
   * anything calibrated on them. `start` is the index, in `featureMatrix(bars, horizonBars)` rows, of the first one.
   */
  outOfSample: { start: number; predictions: Float64Array };
  /** The interval calibration to store with the version (the report's `intervals.calibration`). */
  calibration: IntervalCalibration;
  /**
   * The naive baseline's calibration and interval report on the same rows (its predictions are 0): naive fits
   * nothing, so the test split and the walk-forward folds are out of sample for it too. The naive version takes them.
   */
  naive: { calibration: IntervalCalibration; intervals: IntervalReport };
}

const GOLDEN_ROWS = 8;

export async function trainForecaster(input: TrainForecasterInput): Promise<TrainedForecaster> {
  const { bars, symbol, interval, horizonBars, family, seed } = input;
  checkBars(bars, interval);
  if (family !== "gbdt" && family !== "ridge") {
    throw new TrainingError(
      "invalid_parameters",
      `unknown model family ${JSON.stringify(family)}; use "gbdt" or "ridge"`,
    );
  }
  if (!Number.isInteger(seed))
    throw new TrainingError("invalid_parameters", `seed must be an integer, got ${seed}`);
  const overrides = checkParams(family, input.params ?? {});

  const matrix = featureMatrix(bars, horizonBars);
  const split = chronologicalSplit(matrix.X.length, horizonBars, input.split);
  // Planned before any fit: a history too short for the folds fails at once, not after the final model.
  const walkForwardOptions = { ...WALK_FORWARD_DEFAULTS[interval], ...input.walkForward };
  planWalkForward(matrix.times, INTERVAL_MS[interval], split.embargoRows, walkForwardOptions);
  const rowsOf = (range: RowRange) => ({
    X: matrix.X.slice(range.start, range.end),
    y: matrix.y.slice(range.start, range.end),
  });
  const train = rowsOf(split.train);
  const validation = rowsOf(split.validation);
  const test = rowsOf(split.test);

  const meta = {
    featureSet: FEATURE_SET,
    featureNames: FEATURE_NAMES,
    symbol,
    interval,
    horizonBars,
    description: `${symbol} ${interval} log-return forecaster, ${horizonBars}-bar horizon (${family}), trained on ${isoTime(matrix.times[split.train.start] as number)} .. ${isoTime(matrix.times[split.train.end - 1] as number)}`,
  };
  const started = performance.now();
  const final = fitModel(family, train, validation, overrides, seed);
  const trainingTimeMs = performance.now() - started;
  const onnx = final.export(meta);
  const outputs = await runChecked(onnx, final.predict, test.X, family, "test row");

  // Every fold refits the same recipe (family, parameters, seed) on its own past; the fold models are exported and
  // run in onnxruntime-web like the final one, so the walk-forward numbers are what such a model would serve.
  const walk = await walkForward({
    matrix,
    stepMs: INTERVAL_MS[interval],
    horizonBars,
    embargoRows: split.embargoRows,
    options: walkForwardOptions,
    evaluatedWith: `onnxruntime-web ${ortVersion()} (wasm, 1 thread): each fold's model exported to ONNX, checked bit-exact against the trained one on the fold's rows, and evaluated there; fold models are not registered`,
    fit: async (foldTrain, foldValidation, testX) => {
      const fold = fitModel(family, foldTrain, foldValidation, overrides, seed);
      const foldOnnx = fold.export({ ...meta, description: `${meta.description} (walk-forward fold)` });
      const predictions = await runChecked(foldOnnx, fold.predict, testX, family, "walk-forward row");
      const { validationLoss: _loss, ...chosen } = fold.summary;
      return { predictions, model: chosen };
    },
  });
  const { params, importance, summary: modelSummary } = final;
  const intervals = intervalsOf(matrix, split, outputs, walk, horizonBars);

  const metrics = forecastMetrics(outputs, {
    y: test.y,
    closes: matrix.closes.slice(split.test.start, split.test.end),
    targetCloses: matrix.targetCloses.slice(split.test.start, split.test.end),
  });
  const summary = (range: RowRange): SplitSummary => ({
    rows: range.end - range.start,
    first: isoTime(matrix.times[range.start] as number),
    last: isoTime(matrix.times[range.end - 1] as number),
  });
  const goldenIndex = Array.from({ length: Math.min(GOLDEN_ROWS, test.X.length) }, (_, k) =>
    Math.round((k * (test.X.length - 1)) / Math.max(1, GOLDEN_ROWS - 1)),
  );

  const report: EvaluationReport = {
    symbol,
    interval,
    horizonBars,
    family,
    seed,
    params,
    featureSet: FEATURE_SET,
    target: "log_return",
    data: {
      bars: bars.length,
      first: isoTime((bars[0] as Bar).time),
      last: isoTime((bars[bars.length - 1] as Bar).time),
    },
    splits: {
      train: summary(split.train),
      validation: summary(split.validation),
      test: summary(split.test),
      embargoRows: split.embargoRows,
    },
    test: metrics,
    featureImportance: rankImportance(FEATURE_NAMES, importance),
    importanceKind: family === "gbdt" ? "gain" : "abs_standardized_coefficient",
    model: modelSummary,
    trainingTimeMs,
    evaluatedWith: `onnxruntime-web ${ortVersion()} (wasm, 1 thread)`,
    parity: { rows: outputs.length, bitExact: true },
    walk_forward: walk.report,
    intervals: intervals.model,
  };
  return {
    onnx,
    sha256: await sha256Hex(onnx),
    report,
    golden: {
      inputs: goldenIndex.map((i) => Array.from(test.X[i] as Float64Array)),
      outputs: goldenIndex.map((i) => outputs[i] as number),
    },
    featureSet: FEATURE_SET,
    featureNames: FEATURE_NAMES,
    outOfSample: { start: walk.rows.start, predictions: walk.predictions },
    calibration: intervals.model.calibration,
    naive: { calibration: intervals.naive.calibration, intervals: intervals.naive },
  };
}

/**
 * The interval calibration and report of the model and of the naive baseline: calibrated on the test split (the
 * shipped bytes never fitted or tuned on it), evaluated cross-conformally on the walk-forward folds' out-of-sample
 * predictions (intervals.ts).
 */
function intervalsOf(
  matrix: ReturnType<typeof featureMatrix>,
  split: ChronologicalSplit,
  testOutputs: Float64Array,
  walk: WalkForwardResult,
  horizonBars: number,
): { model: IntervalReport; naive: IntervalReport } {
  const rowsOf = (range: RowRange, predictions: ArrayLike<number>): IntervalRows => ({
    y: matrix.y.subarray(range.start, range.end),
    predictions,
    X: matrix.X.slice(range.start, range.end),
    times: matrix.times.slice(range.start, range.end),
  });
  const reportFor = (test: ArrayLike<number>, folds: ArrayLike<number>) =>
    intervalReport(
      rowsOf(walk.rows, folds),
      walk.report.folds,
      horizonBars,
      calibrate(rowsOf(split.test, test), horizonBars, "test_split"),
    );
  const zeros = (range: RowRange) => new Float64Array(range.end - range.start);
  return {
    model: reportFor(testOutputs, walk.predictions),
    naive: reportFor(zeros(split.test), zeros(walk.rows)),
  };
}

/**
 * The naive baseline's export travels with the trainer (the Trainer port's `exportNaive`): where no trainer is wired
 * (the edge), no ONNX export is bundled either.
 */
trainForecaster.exportNaive = exportNaive;

/** A fitted model of either family, with what the report needs of it. */
interface FittedModel {
  export(meta: Parameters<typeof exportGbdt>[1]): Uint8Array;
  predict(x: Float64Array): number;
  params: Omit<GbdtParams, "seed"> | RidgeParams;
  importance: ArrayLike<number>;
  summary: EvaluationReport["model"];
}

/** Fits `family` on `train`, tuning (early stopping, alpha) on `validation` only. */
function fitModel(
  family: ModelFamily,
  train: Dataset,
  validation: Dataset,
  overrides: Record<string, unknown>,
  seed: number,
): FittedModel {
  if (family === "gbdt") {
    const model = trainGbdt(train, { ...overrides, seed }, validation);
    const { seed: _seed, ...params } = model.params;
    return {
      export: (meta) => exportGbdt(model, meta),
      predict: (x) => predictGbdt(model, x),
      params,
      importance: model.featureGain,
      summary: {
        trees: model.trees.length,
        validationLoss: model.validationLoss[model.trees.length] as number,
      },
    };
  }
  const model = trainRidge(train, overrides, validation);
  return {
    export: (meta) => exportRidge(model, meta),
    predict: (x) => predictRidge(model, x),
    params: model.params,
    importance: model.standardizedWeights,
    summary: {
      alpha: model.alpha,
      validationLoss: model.validationLoss[model.params.alphas.indexOf(model.alpha)] as number,
    },
  };
}

/** Runs the exported model in onnxruntime-web on `X` and fails unless it reproduces `predict` bit for bit. */
async function runChecked(
  onnx: Uint8Array,
  predict: (x: Float64Array) => number,
  X: readonly Float64Array[],
  family: ModelFamily,
  what: string,
): Promise<Float64Array> {
  const outputs = await runForecaster(onnx, X, FEATURE_NAMES.length);
  for (let i = 0; i < outputs.length; i++) {
    const expected = predict(X[i] as Float64Array);
    if (!Object.is(outputs[i], expected)) {
      throw new TrainingError(
        "export_mismatch",
        `exported ${family} model disagrees with the trained one on ${what} ${i}: onnxruntime ${outputs[i]} vs ${expected}; do not ship it`,
        { details: { row: i, onnxruntime: outputs[i], trained: expected } },
      );
    }
  }
  return outputs;
}

function checkBars(bars: readonly Bar[], interval: Interval): void {
  if (INTERVAL_MS[interval] === undefined)
    throw new TrainingError("invalid_parameters", `unsupported interval ${JSON.stringify(interval)}`);
  for (let i = 0; i < bars.length; i++) {
    const bar = bars[i] as Bar;
    for (const field of ["open", "high", "low", "close"] as const) {
      if (!(bar[field] > 0 && Number.isFinite(bar[field]))) {
        throw new TrainingError(
          "invalid_data",
          `bar ${isoTime(bar.time)} has ${field} ${bar[field]}; prices must be positive numbers`,
        );
      }
    }
    if (!(bar.volume >= 0 && Number.isFinite(bar.volume))) {
      throw new TrainingError("invalid_data", `bar ${isoTime(bar.time)} has volume ${bar.volume}`);
    }
    const prev = bars[i - 1];
    if (prev && barStep(prev.time, bar.time, interval) !== "ok") {
      // Lagged features count bars, not hours: a missing bar would silently stretch every window across it.
      throw new TrainingError(
        "invalid_data",
        `bars must be contiguous at ${interval}: ${isoTime(prev.time)} is followed by ${isoTime(bar.time)}; train on a gap-free range`,
      );
    }
  }
}

const GBDT_KEYS = new Set(Object.keys(GBDT_DEFAULTS).filter((key) => key !== "seed"));
const RIDGE_KEYS = new Set(Object.keys(RIDGE_DEFAULTS));

function checkParams(family: ModelFamily, params: object): Record<string, unknown> {
  const allowed = family === "gbdt" ? GBDT_KEYS : RIDGE_KEYS;
  const unknown = Object.keys(params).filter((key) => !allowed.has(key));
  if (unknown.length > 0) {
    throw new TrainingError(
      "invalid_parameters",
      `unknown ${family} parameter(s) ${unknown.join(", ")}; allowed: ${[...allowed].join(", ")}${family === "gbdt" ? " (the seed is its own argument)" : ""}`,
    );
  }
  return params as Record<string, unknown>;
}
