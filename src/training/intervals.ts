/**
 * Calibration and evaluation of the forecasters' prediction intervals, on top of the arithmetic serving uses
 * (src/forecast/interval.ts): the scores, quantiles and bounds are those functions, so the evaluated intervals are
 * the served ones by construction.
 *
 * - Calibration (what serves): split-conformal quantiles of the scores on rows the model was never fitted or tuned
 *   on (the final model's held-out test split), one per stored level.
 * - Walk-forward report (what the docs show): cross-conformal, leave one fold out. Fold k's interval uses the
 *   quantile of the out-of-sample scores of every other fold (each from a model fitted before its own fold) and is
 *   scored on fold k's rows: coverage, mean width and pinball loss. Beside it the naive interval everyone can build
 *   without a model: centre 0 (no change), ± z_L·σ with the same σ and z_L the normal quantile — a Gaussian
 *   trailing-volatility interval. Both share σ, so any difference between them comes from the centre (the model's
 *   ŷ against 0) and from q_L (the empirical quantile of the scores against the Gaussian z_L). And the same conformal
 *   method without the scale (σ = 1, a constant width): what scaling by trailing volatility is worth.
 */

import normalQuantile from "@stdlib/stats-base-dists-normal-quantile";
import {
  conformalQuantile,
  conformityScore,
  DEFAULT_INTERVAL_LEVEL,
  INTERVAL_LEVELS,
  INTERVAL_METHOD,
  INTERVAL_SCALE,
  type IntervalLevel,
  intervalScale,
  levelKey,
  logReturnBounds,
} from "../forecast/interval.js";
import { isoTime } from "../market/symbols.js";
import type { IntervalCalibration } from "../registry/metadata.js";
import { TrainingError } from "./errors.js";

/** Rows to calibrate or score intervals on: realised log returns, predictions, feature vectors (for σ), times. */
export interface IntervalRows {
  y: ArrayLike<number>;
  predictions: ArrayLike<number>;
  X: readonly ArrayLike<number>[];
  /** Open time of each row's as-of bar (epoch ms). */
  times: readonly number[];
}

/** How an interval did on a set of rows. */
export interface IntervalScores {
  /** Share of rows whose realised log return lies inside the interval (bounds included). */
  coverage: number;
  /** Mean of (upper − lower) price / close, in percent. */
  mean_width_pct: number;
  /**
   * Mean pinball loss of the two bounds read as quantiles (1 − L)/2 and (1 + L)/2 of the log return, averaged over
   * both: lower is better; it rewards coverage and punishes width, so it ranks intervals of different widths.
   */
  pinball_loss: number;
}

export interface IntervalFold extends IntervalScores {
  from: string;
  to: string;
  rows: number;
  /** The conformal quantile applied to this fold: from the scores of every other fold. */
  quantile: number;
  naive: IntervalScores;
  constant_width: IntervalScores;
}

export interface IntervalLevelSummary extends IntervalScores {
  level: IntervalLevel;
  naive: IntervalScores;
  constant_width: IntervalScores;
}

export interface IntervalReport {
  level: IntervalLevel;
  method: typeof INTERVAL_METHOD;
  scale: typeof INTERVAL_SCALE;
  /** What serves: the calibration stored in the version's metadata. */
  calibration: IntervalCalibration;
  walk_forward: IntervalScores & {
    method: "cross_conformal_leave_one_fold_out";
    rows: number;
    naive: IntervalScores & { method: "gaussian_trailing_volatility"; z: number };
    /** The model's conformal interval without the volatility scale: ŷ ∓ q_L, q_L of |y − ŷ|. */
    constant_width: IntervalScores;
    folds: IntervalFold[];
    /** Pooled figures at every stored level, the model's and the naive interval's. */
    levels: IntervalLevelSummary[];
  };
}

/** σ of row i; 1 for every row when `horizonBars` is null (the constant-width comparison). */
const scaleOf = (rows: IntervalRows, horizonBars: number | null, i: number) =>
  horizonBars === null ? 1 : intervalScale(rows.X[i] as ArrayLike<number>, horizonBars);

/** Conformity scores of `rows[start, end)`; rows without a positive σ are left out (they cannot be scored). */
function scoresOf(rows: IntervalRows, horizonBars: number | null, start: number, end: number): number[] {
  const scores: number[] = [];
  for (let i = start; i < end; i++) {
    const s = conformityScore(
      rows.y[i] as number,
      rows.predictions[i] as number,
      scaleOf(rows, horizonBars, i),
    );
    if (!Number.isNaN(s)) scores.push(s);
  }
  return scores;
}

/**
 * The split-conformal calibration of a model on `rows` (rows it was never fitted or tuned on), as the version's
 * metadata stores it. `window` says which rows those are.
 */
export function calibrate(rows: IntervalRows, horizonBars: number, window: string): IntervalCalibration {
  const scores = scoresOf(rows, horizonBars, 0, rows.y.length);
  const quantiles = Object.fromEntries(
    INTERVAL_LEVELS.map((level) => [levelKey(level), conformalQuantile(scores, level)]),
  ) as IntervalCalibration["quantiles"];
  const widest = INTERVAL_LEVELS[INTERVAL_LEVELS.length - 1] as IntervalLevel;
  if (!Number.isFinite(quantiles[levelKey(widest)])) {
    throw new TrainingError(
      "insufficient_data",
      `${scores.length} calibration rows are too few for a ${widest * 100} % conformal interval (it needs ${Math.ceil(widest / (1 - widest))}); use a longer history`,
    );
  }
  return {
    method: INTERVAL_METHOD,
    scale: INTERVAL_SCALE,
    window,
    rows: scores.length,
    from: isoTime(rows.times[0] as number),
    to: isoTime(rows.times[rows.times.length - 1] as number),
    quantiles,
  };
}

/** ρ_τ(u) = max(τu, (τ − 1)u): the pinball (quantile) loss of a τ-quantile forecast missing by u = y − forecast. */
const pinball = (u: number, tau: number) => Math.max(tau * u, (tau - 1) * u);

/** Scores the interval centre ∓ half (both log returns) on one row: covered?, width in % of close, pinball loss. */
function scoreRow(actual: number, lower: number, upper: number, level: number) {
  return {
    covered: actual >= lower && actual <= upper ? 1 : 0,
    widthPct: 100 * (Math.exp(upper) - Math.exp(lower)),
    pinball: (pinball(actual - lower, (1 - level) / 2) + pinball(actual - upper, (1 + level) / 2)) / 2,
  };
}

/** Running sums of scoreRow over rows, and their means. */
function accumulator() {
  let rows = 0;
  let covered = 0;
  let width = 0;
  let loss = 0;
  return {
    add(row: ReturnType<typeof scoreRow>) {
      rows++;
      covered += row.covered;
      width += row.widthPct;
      loss += row.pinball;
    },
    scores: (): IntervalScores => ({
      coverage: covered / rows,
      mean_width_pct: width / rows,
      pinball_loss: loss / rows,
    }),
  };
}

/** Cross-conformal figures at one level: per fold and pooled, the model's interval and the naive one. */
function evaluateLevel(
  rows: IntervalRows,
  folds: readonly { from: string; to: string; rows: number }[],
  horizonBars: number,
  level: IntervalLevel,
) {
  const z = normalQuantile((1 + level) / 2, 0, 1);
  const pooled = { model: accumulator(), naive: accumulator(), constant: accumulator() };
  const perFold: IntervalFold[] = [];
  const n = rows.y.length;
  // Leave-one-fold-out quantile of the scores at scale `h` (null: σ = 1).
  const quantileWithout = (start: number, end: number, h: number | null) =>
    conformalQuantile([...scoresOf(rows, h, 0, start), ...scoresOf(rows, h, end, n)], level);
  let start = 0;
  for (const fold of folds) {
    const end = start + fold.rows;
    const q = quantileWithout(start, end, horizonBars);
    const qConstant = quantileWithout(start, end, null);
    const model = accumulator();
    const naive = accumulator();
    const constant = accumulator();
    for (let i = start; i < end; i++) {
      const actual = rows.y[i] as number;
      const predicted = rows.predictions[i] as number;
      const scale = scaleOf(rows, horizonBars, i);
      const m = logReturnBounds(predicted, scale, q);
      const g = logReturnBounds(0, scale, z);
      const c = logReturnBounds(predicted, 1, qConstant);
      const scored = {
        model: scoreRow(actual, m.lower, m.upper, level),
        naive: scoreRow(actual, g.lower, g.upper, level),
        constant: scoreRow(actual, c.lower, c.upper, level),
      };
      model.add(scored.model);
      naive.add(scored.naive);
      constant.add(scored.constant);
      pooled.model.add(scored.model);
      pooled.naive.add(scored.naive);
      pooled.constant.add(scored.constant);
    }
    perFold.push({
      from: fold.from,
      to: fold.to,
      rows: fold.rows,
      quantile: q,
      ...model.scores(),
      naive: naive.scores(),
      constant_width: constant.scores(),
    });
    start = end;
  }
  if (start !== n) {
    throw new Error(`interval report: the folds hold ${start} rows, the walk-forward ${n}`);
  }
  return {
    z,
    folds: perFold,
    pooled: pooled.model.scores(),
    naive: pooled.naive.scores(),
    constant: pooled.constant.scores(),
  };
}

/**
 * The interval report of a version: its calibration, and the cross-conformal evaluation of the same method on the
 * walk-forward rows (`rows`: every fold's rows in order, with out-of-sample predictions; `folds` their periods).
 */
export function intervalReport(
  rows: IntervalRows,
  folds: readonly { from: string; to: string; rows: number }[],
  horizonBars: number,
  calibration: IntervalCalibration,
): IntervalReport {
  const main = evaluateLevel(rows, folds, horizonBars, DEFAULT_INTERVAL_LEVEL);
  const levels = INTERVAL_LEVELS.map((level) => {
    const result = level === DEFAULT_INTERVAL_LEVEL ? main : evaluateLevel(rows, folds, horizonBars, level);
    return { level, ...result.pooled, naive: result.naive, constant_width: result.constant };
  });
  return {
    level: DEFAULT_INTERVAL_LEVEL,
    method: INTERVAL_METHOD,
    scale: INTERVAL_SCALE,
    calibration,
    walk_forward: {
      method: "cross_conformal_leave_one_fold_out",
      rows: rows.y.length,
      ...main.pooled,
      naive: { method: "gaussian_trailing_volatility", z: main.z, ...main.naive },
      constant_width: main.constant,
      folds: main.folds,
      levels,
    },
  };
}
