import { TrainingError } from "./errors.js";

/** A half-open range of row indices [start, end). */
export interface RowRange {
  start: number;
  end: number;
}

export interface ChronologicalSplit {
  train: RowRange;
  validation: RowRange;
  test: RowRange;
  /** Rows dropped between train and validation, and again between validation and test. */
  embargoRows: number;
}

export interface SplitOptions {
  /** Share of the usable rows (after both embargoes) for validation and test. Default 0.15 each. */
  validationFraction?: number;
  testFraction?: number;
  /** Rows dropped at each boundary; at least the horizon. Default: the horizon. */
  embargoRows?: number;
}

/** Fewest rows a split may have: below this the metrics are noise. */
const MIN_SPLIT_ROWS = 30;

/**
 * Train, validation and test in time order, separated by an embargo. Rows are consecutive bars and the target of row
 * i ends at bar i + horizon, so dropping `horizonBars` rows at each boundary means no target of an earlier split
 * reaches into the first bar of the next one: no label of the test period leaks into training.
 */
export function chronologicalSplit(
  rows: number,
  horizonBars: number,
  options: SplitOptions = {},
): ChronologicalSplit {
  const validationFraction = options.validationFraction ?? 0.15;
  const testFraction = options.testFraction ?? 0.15;
  const embargoRows = options.embargoRows ?? horizonBars;
  if (!(embargoRows >= horizonBars && Number.isInteger(embargoRows))) {
    throw new TrainingError(
      "invalid_parameters",
      `embargo (${embargoRows} rows) must be a whole number >= the horizon (${horizonBars} bars)`,
    );
  }
  if (!(validationFraction > 0 && testFraction > 0 && validationFraction + testFraction < 1)) {
    throw new TrainingError("invalid_parameters", "validation and test fractions must be > 0 and sum to < 1");
  }
  const usable = rows - 2 * embargoRows;
  const testRows = Math.round(usable * testFraction);
  const validationRows = Math.round(usable * validationFraction);
  const trainRows = usable - testRows - validationRows;
  if (Math.min(trainRows, validationRows, testRows) < MIN_SPLIT_ROWS) {
    throw new TrainingError(
      "insufficient_data",
      `${rows} rows are too few for a train/validation/test split with a ${embargoRows}-row embargo; use a longer history`,
    );
  }
  const validationStart = trainRows + embargoRows;
  const testStart = validationStart + validationRows + embargoRows;
  return {
    train: { start: 0, end: trainRows },
    validation: { start: validationStart, end: validationStart + validationRows },
    test: { start: testStart, end: rows },
    embargoRows,
  };
}
