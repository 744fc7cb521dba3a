/**
 * The folds of walk-forward evaluation (walk-forward.ts): the recipe is refitted once per fold on an expanding window
 * of the past and scored on the calendar period that follows, so the evaluation covers several market regimes instead
 * of one 15 % window, and every version whose data covers a period is scored on exactly the same rows there. Kept
 * apart from the runner so that request-time code (checking an `until`) can plan folds without the statistics.
 *
 * Fold rule. Folds are whole UTC calendar periods (quarters for daily bars, months for hourly bars). A row belongs to
 * the period that contains the open time of its as-of bar (for a daily bar, its date). The folds are the last K
 * periods all of whose rows are in the data, counted back from the data's end: a period counts once the row of its
 * last bar exists, i.e. that bar's target has closed. So the folds depend only on the calendar and on which period
 * the data ends in: two versions trained on different days of the same period have the same K folds, and a version
 * trained one period later shares K − 1 of them, with the same rows, targets and (same seed) the same scores, because
 * each fold's training window starts at the first row and ends at the fold, whatever came after. The rows of the
 * unfinished period at the end take part in no fold.
 *
 * Within a fold: the training rows are every row before the fold's first test row less an embargo of the horizon
 * (the target of the last training row closes no later than the first test bar opens); early stopping (GBDT) and the
 * ridge penalty are chosen on a validation slice carved from the end of those training rows, behind its own embargo,
 * never on the fold's test rows.
 */

import { isoTime } from "../market/symbols.js";
import type { Interval } from "../market/types.js";
import { TrainingError } from "./errors.js";
import type { RowRange } from "./split.js";

export type FoldPeriod = "month" | "quarter";

export interface WalkForwardOptions {
  /** Number of folds, at least 6. */
  folds: number;
  /** Calendar length of one fold. */
  period: FoldPeriod;
}

/** Fewest folds: with fewer, the spread across folds says little and the DM test has few rows. */
export const MIN_FOLDS = 6;

/**
 * Per interval: daily bars get quarters (6 quarters = 1.5 years, ~90 test rows a fold, with 8+ years of history
 * before them on the shipped CSVs); hourly bars get months, since Yahoo keeps only 730 days of them (6 months of
 * test rows, ~720 a fold, and a year or more of training before the first).
 */
export const WALK_FORWARD_DEFAULTS: Readonly<Record<Interval, Readonly<WalkForwardOptions>>> = {
  "1d": { folds: MIN_FOLDS, period: "quarter" },
  "1h": { folds: MIN_FOLDS, period: "month" },
};

/**
 * Validation share of a fold's training rows: 15/85, the ratio of the final model's validation split to its
 * train + validation rows (70 % : 15 %), so each fold tunes the way the shipped model is tuned.
 */
export const FOLD_VALIDATION_SHARE = 0.15 / 0.85;

/** Fewest rows a fold's train or validation slice may have (as in split.ts). */
const MIN_ROWS = 30;

export interface FoldPlan {
  /** Start and end (exclusive) of the calendar period, epoch ms. */
  from: number;
  to: number;
  train: RowRange;
  validation: RowRange;
  test: RowRange;
}

const MONTHS: Record<FoldPeriod, number> = { month: 1, quarter: 3 };

/** UTC start of the month or quarter that contains `ms`. */
export function periodStart(ms: number, period: FoldPeriod): number {
  const date = new Date(ms);
  const months = MONTHS[period];
  const month = Math.floor(date.getUTCMonth() / months) * months;
  return Date.UTC(date.getUTCFullYear(), month, 1);
}

/** Start of the period `count` periods after the one starting at `start` (negative: before). */
function shiftPeriod(start: number, period: FoldPeriod, count: number): number {
  const date = new Date(start);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + count * MONTHS[period], 1);
}

/** The fold rule in words, as the report states it. */
export function foldRule(options: WalkForwardOptions, embargoRows: number): string {
  return (
    `expanding window; folds = the last ${options.folds} whole UTC calendar ${options.period}s whose rows are all in the data ` +
    `(a row belongs to the ${options.period} of its as-of bar's open time; the unfinished ${options.period} at the end is in no fold); ` +
    `each fold trains on every earlier row but the last ${embargoRows} (embargo = horizon) and tunes on the last ` +
    `${(FOLD_VALIDATION_SHARE * 100).toFixed(1)} % of them behind a second embargo; its ${options.period} is the test`
  );
}

/** First index i with times[i] >= value (times ascending). */
function lowerBound(times: readonly number[], value: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The folds of rows whose as-of bars opened at `times` (ascending, one per bar at `stepMs`). Throws
 * insufficient_data when the history cannot hold the folds with enough training rows before the first.
 */
export function planWalkForward(
  times: readonly number[],
  stepMs: number,
  embargoRows: number,
  options: WalkForwardOptions,
): FoldPlan[] {
  const { folds, period } = options;
  if (!(Number.isInteger(folds) && folds >= MIN_FOLDS)) {
    throw new TrainingError(
      "invalid_parameters",
      `walk-forward needs a whole number of at least ${MIN_FOLDS} folds, got ${folds}`,
    );
  }
  if (MONTHS[period] === undefined) {
    throw new TrainingError(
      "invalid_parameters",
      `walk-forward period must be "month" or "quarter", got ${JSON.stringify(period)}`,
    );
  }
  if (times.length === 0) throw new TrainingError("insufficient_data", "no rows to evaluate");
  // Periods ending at or before the end of the last row's bar are whole: every bar in them has a row.
  const end = periodStart((times[times.length - 1] as number) + stepMs, period);
  const first = shiftPeriod(end, period, -folds);
  const tooShort = () =>
    new TrainingError(
      "insufficient_data",
      `walk-forward over the last ${folds} whole ${period}s (from ${isoTime(first)}) needs at least ${2 * MIN_ROWS} training rows before the first of them, behind ${embargoRows}-row embargoes; the data's rows start ${isoTime(times[0] as number)}: use a longer history`,
    );
  if ((times[0] as number) > first) throw tooShort();
  const plans: FoldPlan[] = [];
  for (let k = 0; k < folds; k++) {
    const from = shiftPeriod(first, period, k);
    const to = shiftPeriod(first, period, k + 1);
    const start = lowerBound(times, from);
    const stop = lowerBound(times, to);
    const trainable = start - embargoRows;
    const usable = trainable - embargoRows;
    const validationRows = Math.round(usable * FOLD_VALIDATION_SHARE);
    const trainRows = usable - validationRows;
    if (Math.min(trainRows, validationRows) < MIN_ROWS) throw tooShort();
    plans.push({
      from,
      to,
      train: { start: 0, end: trainRows },
      validation: { start: trainRows + embargoRows, end: trainable },
      test: { start, end: stop },
    });
  }
  return plans;
}
