/**
 * Walk-forward evaluation (DESIGN.md, "Honest evaluation"): the recipe is refitted once per fold on an expanding
 * window of the past and scored on the calendar period that follows (the folds: folds.ts), then the loss differential
 * against naive over all fold rows is tested with Diebold–Mariano (diebold-mariano.ts).
 */

import type { FeatureMatrix } from "../features/index.js";
import { isoTime } from "../market/symbols.js";
import { dieboldMariano } from "./diebold-mariano.js";
import { forecastMetrics } from "./evaluate.js";
import {
  type FoldPeriod,
  type FoldPlan,
  foldRule,
  planWalkForward,
  type WalkForwardOptions,
} from "./folds.js";
import type { Dataset } from "./gbdt.js";
import type { RowRange } from "./split.js";

/** What one fold's fit gives back: its test predictions (from the model as evaluated) and what tuning chose. */
export interface FoldFit {
  predictions: ArrayLike<number>;
  model: { trees?: number; alpha?: number };
}

export interface WalkForwardFold {
  /** The calendar period, start inclusive and end exclusive (ISO 8601 UTC). */
  from: string;
  to: string;
  /** Test rows in the fold. */
  rows: number;
  /** 1 − mape / naive_mape on the fold's rows. */
  skill: number;
  mape: number;
  naive_mape: number;
  train_rows: number;
  validation_rows: number;
  /** As-of time (bar open) of the last training and the last validation row. */
  train_last: string;
  validation_last: string;
  /** What the fold's tuning chose (GBDT trees kept by early stopping, or the ridge alpha). */
  trees?: number;
  alpha?: number;
}

export interface WalkForwardReport {
  fold_rule: string;
  period: FoldPeriod;
  embargo_rows: number;
  folds: WalkForwardFold[];
  /** All fold test rows. */
  rows: number;
  /** Mean and sample standard deviation (n − 1) of the per-fold skills. */
  mean_skill: number;
  std_skill: number;
  /** Skill, MAPE and naive MAPE over all fold rows pooled. */
  pooled_skill: number;
  mape: number;
  naive_mape: number;
  /**
   * The DM loss: absolute percentage error of the price forecast, the loss whose mean is MAPE, so that "beats naive
   * significantly" is a statement about the same quantity as skill (a squared log-return loss could call a model
   * significant whose MAPE is worse than naive's).
   */
  loss: "absolute_percentage_error";
  /** HLN-corrected DM statistic of d_t = APE_model − APE_naive over all fold rows (negative: model better). */
  dm_statistic: number;
  /** One-sided p-value of "the model's expected APE is lower than naive's" (Student t, T − 1 df). */
  dm_p_value: number;
  dm_alternative: "model_beats_naive";
  /** Newey–West lag of the DM variance: horizon − 1. */
  dm_hac_lag: number;
  /** What produced the fold predictions. */
  evaluated_with: string;
  /** Wall time of fitting and evaluating every fold. */
  time_ms: number;
}

export interface WalkForwardResult {
  report: WalkForwardReport;
  /** The folds' out-of-sample predictions, in row order over `rows` (the fold test rows are contiguous). */
  predictions: Float64Array;
  rows: RowRange;
}

type Matrix = Pick<FeatureMatrix, "X" | "y" | "times" | "closes" | "targetCloses">;

/** Fits and scores every fold with `fit`, then tests the pooled loss differential against naive. */
export async function walkForward(input: {
  matrix: Matrix;
  stepMs: number;
  horizonBars: number;
  embargoRows: number;
  options: WalkForwardOptions;
  fit: (train: Dataset, validation: Dataset, testX: Float64Array[]) => Promise<FoldFit>;
  evaluatedWith: string;
}): Promise<WalkForwardResult> {
  const { matrix, horizonBars, embargoRows, options } = input;
  const started = performance.now();
  const plans = planWalkForward(matrix.times, input.stepMs, embargoRows, options);
  const rows: RowRange = {
    start: (plans[0] as FoldPlan).test.start,
    end: (plans[plans.length - 1] as FoldPlan).test.end,
  };
  const predictions = new Float64Array(rows.end - rows.start);
  const take = (range: RowRange): Dataset => ({
    X: matrix.X.slice(range.start, range.end),
    y: matrix.y.slice(range.start, range.end),
  });
  const folds: WalkForwardFold[] = [];
  for (const plan of plans) {
    const { predictions: outputs, model } = await input.fit(
      take(plan.train),
      take(plan.validation),
      matrix.X.slice(plan.test.start, plan.test.end),
    );
    predictions.set(Array.from(outputs), plan.test.start - rows.start);
    const metrics = forecastMetrics(outputs, {
      y: matrix.y.slice(plan.test.start, plan.test.end),
      closes: matrix.closes.slice(plan.test.start, plan.test.end),
      targetCloses: matrix.targetCloses.slice(plan.test.start, plan.test.end),
    });
    folds.push({
      from: isoTime(plan.from),
      to: isoTime(plan.to),
      rows: metrics.rows,
      skill: metrics.skill,
      mape: metrics.mape,
      naive_mape: metrics.naiveMape,
      train_rows: plan.train.end - plan.train.start,
      validation_rows: plan.validation.end - plan.validation.start,
      train_last: isoTime(matrix.times[plan.train.end - 1] as number),
      validation_last: isoTime(matrix.times[plan.validation.end - 1] as number),
      ...model,
    });
  }

  const pooled = forecastMetrics(predictions, {
    y: matrix.y.slice(rows.start, rows.end),
    closes: matrix.closes.slice(rows.start, rows.end),
    targetCloses: matrix.targetCloses.slice(rows.start, rows.end),
  });
  const dm = dieboldMariano(
    lossDifferentials(
      predictions,
      matrix.closes.slice(rows.start, rows.end),
      matrix.targetCloses.slice(rows.start, rows.end),
    ),
    horizonBars,
  );
  const skills = folds.map((fold) => fold.skill);
  const mean = skills.reduce((sum, s) => sum + s, 0) / skills.length;
  const std = Math.sqrt(skills.reduce((sum, s) => sum + (s - mean) ** 2, 0) / (skills.length - 1));
  return {
    report: {
      fold_rule: foldRule(options, embargoRows),
      period: options.period,
      embargo_rows: embargoRows,
      folds,
      rows: pooled.rows,
      mean_skill: mean,
      std_skill: std,
      pooled_skill: pooled.skill,
      mape: pooled.mape,
      naive_mape: pooled.naiveMape,
      loss: "absolute_percentage_error",
      dm_statistic: dm.statistic,
      dm_p_value: dm.pValue,
      dm_alternative: "model_beats_naive",
      dm_hac_lag: dm.lag,
      evaluated_with: input.evaluatedWith,
      time_ms: performance.now() - started,
    },
    predictions,
    rows,
  };
}

/**
 * d_t = APE of the model's price forecast close·exp(pred) − APE of the naive forecast close, both against the
 * realised close: the per-row terms of MAPE − naive MAPE (as fractions, not percent).
 */
export function lossDifferentials(
  predicted: ArrayLike<number>,
  closes: ArrayLike<number>,
  targetCloses: ArrayLike<number>,
): Float64Array {
  const d = new Float64Array(predicted.length);
  for (let i = 0; i < d.length; i++) {
    const close = closes[i] as number;
    const actual = targetCloses[i] as number;
    d[i] =
      Math.abs(close * Math.exp(predicted[i] as number) - actual) / actual -
      Math.abs(close - actual) / actual;
  }
  return d;
}
