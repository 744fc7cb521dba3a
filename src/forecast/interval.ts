/**
 * Prediction intervals of the forecasters: split-conformal calibration of volatility-scaled residuals (DESIGN.md,
 * "Honest evaluation"). The one place their arithmetic lives: training scores and calibrates with it
 * (src/training/intervals.ts), serving applies the stored quantiles with it, so what serves is what was evaluated.
 *
 * A row's scale is σ = vol_20 · sqrt(horizon bars), with vol_20 read from the row's own feature vector (the sample
 * standard deviation of the last 20 one-bar log returns): serving takes it from exactly the vector it feeds the
 * model. Its score is s = |y − ŷ| / σ, with y the realised and ŷ the predicted log return over the horizon. The
 * interval at level L is ŷ ∓ q_L·σ in log return, close·exp(ŷ ∓ q_L·σ) in price, q_L the split-conformal quantile
 * of the calibration scores: it widens when the market moves.
 */
import { EdgeMLError } from "../errors.js";
import { FEATURE_NAMES } from "../features/index.js";

/**
 * The levels every calibration stores and a request may ask for: the median band, the default 80 %, and the two
 * customary wide ones. More levels would not be better calibrated, only more numbers to keep.
 */
export const INTERVAL_LEVELS = [0.5, 0.8, 0.9, 0.95] as const;
export type IntervalLevel = (typeof INTERVAL_LEVELS)[number];

/** The default: a central 80 % interval. */
export const DEFAULT_INTERVAL_LEVEL: IntervalLevel = 0.8;

export const INTERVAL_METHOD = "split_conformal_vol_scaled";
export const INTERVAL_SCALE = "vol_20*sqrt(horizon_bars)";

const VOL_20 = FEATURE_NAMES.indexOf("vol_20");

export function isIntervalLevel(level: number): level is IntervalLevel {
  return (INTERVAL_LEVELS as readonly number[]).includes(level);
}

/** The level as a calibration's `quantiles` key: "0.8". */
export const levelKey = (level: IntervalLevel) => String(level) as `${IntervalLevel}`;

/** σ of a row: vol_20 of its feature vector (crypto-ohlcv@1 column order) times sqrt(horizon bars). */
export function intervalScale(features: ArrayLike<number>, horizonBars: number): number {
  return (features[VOL_20] as number) * Math.sqrt(horizonBars);
}

/** The conformity score |y − ŷ| / σ; NaN when σ is not a positive number (such a row cannot be scored). */
export function conformityScore(actual: number, predicted: number, scale: number): number {
  return scale > 0 && Number.isFinite(scale) ? Math.abs(actual - predicted) / scale : Number.NaN;
}

/**
 * The split-conformal quantile: the ⌈(n + 1)·L⌉-th smallest of the n scores, which makes a new exchangeable row's
 * score fall at or below it with probability at least L. Infinity when n is too small for L (⌈(n + 1)·L⌉ > n).
 * Written here rather than taken from a statistics package: their quantiles interpolate, which is not this
 * finite-sample rank.
 */
export function conformalQuantile(scores: ArrayLike<number>, level: number): number {
  const sorted = Float64Array.from(scores).sort();
  const rank = Math.ceil((sorted.length + 1) * level);
  return rank > sorted.length ? Number.POSITIVE_INFINITY : (sorted[rank - 1] as number);
}

/** The interval ŷ ∓ q·σ in log return. */
export function logReturnBounds(
  predicted: number,
  scale: number,
  quantile: number,
): { lower: number; upper: number } {
  return { lower: predicted - quantile * scale, upper: predicted + quantile * scale };
}

/** The interval in price: close·exp(ŷ − q·σ) .. close·exp(ŷ + q·σ), from the close the point forecast starts at. */
export function priceBounds(
  close: number,
  predicted: number,
  scale: number,
  quantile: number,
): { lower: number; upper: number } {
  const bounds = logReturnBounds(predicted, scale, quantile);
  return { lower: close * Math.exp(bounds.lower), upper: close * Math.exp(bounds.upper) };
}

/** A forecast's interval as responses carry it: a central interval of the price at `level` (a fraction). */
export interface ForecastInterval {
  level: IntervalLevel;
  lower: number;
  upper: number;
}

/**
 * The interval of a forecast from `close` with predicted log return `predicted` and scale `scale`, at `level`, with
 * the quantile a version's calibration stores; null for a version without calibration (brought models, versions
 * trained before intervals) or a row without a positive scale.
 */
export function forecastInterval(
  calibration: { quantiles: Readonly<Record<string, number>> } | undefined,
  level: IntervalLevel,
  close: number,
  predicted: number,
  scale: number,
): ForecastInterval | null {
  const quantile = calibration?.quantiles[levelKey(level)];
  if (quantile === undefined || !(scale > 0 && Number.isFinite(scale))) return null;
  return { level, ...priceBounds(close, predicted, scale, quantile) };
}

/** The level a caller asked for, checked: 400 naming the levels every calibration stores. */
export function intervalLevelOf(level: number | undefined, fallback: IntervalLevel): IntervalLevel {
  if (level === undefined) return fallback;
  if (isIntervalLevel(level)) return level;
  throw new EdgeMLError(
    "invalid_request",
    `interval_level ${level} is not a calibrated level; ask for one of ${INTERVAL_LEVELS.join(", ")} (a fraction: 0.8 is the central 80 % interval)`,
  );
}
