/**
 * The feature set of the crypto forecasters: one vector per bar, from that bar and the bars before it only. Training
 * (featureMatrix) and serving (computeFeatures on the last bar) call the same function, so a model sees at serving
 * time exactly the numbers it was trained on, bit for bit.
 *
 * Every feature is scale-free (log returns, ratios, bounded oscillators, calendar cycles): no raw price or volume
 * level, so a model trained on 2017's prices still applies at 2026's. Windows are counted in bars, so the same
 * definitions serve daily and hourly bars. Changing any definition, window or the order of FEATURE_NAMES changes
 * what a model means: bump FEATURE_SET.version, and keep serving the old version for the models trained on it.
 */
import type { Bar } from "../market/types.js";

/**
 * Why features cannot be computed. The API maps each kind once (`asEdgeMLError` in src/errors.ts): too little
 * history is the market data's fault (503), a bad horizon the caller's (400).
 */
export class FeatureError extends Error {
  readonly kind: "insufficient_history" | "invalid_horizon";

  constructor(kind: FeatureError["kind"], message: string) {
    super(message);
    this.name = "FeatureError";
    this.kind = kind;
  }
}

export const FEATURE_SET = { name: "crypto-ohlcv", version: 1 } as const;

export type FeatureSet = { readonly name: string; readonly version: number };

/** Column order of the model input. Each name says its window in bars. */
export const FEATURE_NAMES: readonly string[] = Object.freeze([
  // Log return of the close over the last k bars, and the one-bar returns before the last.
  "logret_1",
  "logret_2",
  "logret_3",
  "logret_5",
  "logret_10",
  "logret_20",
  "logret_1_lag1",
  "logret_1_lag2",
  // Realised volatility: sample standard deviation of one-bar log returns.
  "vol_5",
  "vol_20",
  "vol_60",
  "vol_ratio_5_20",
  // Distance of the close from its simple moving averages, log scale.
  "close_sma_5",
  "close_sma_10",
  "close_sma_20",
  "close_sma_50",
  "sma_5_sma_20",
  // Cutler's RSI over 14 bars, centred: gains / (gains + losses) - 0.5.
  "rsi_14",
  // Volume relative to its recent mean; log1p because Yahoo reports zero volume for some hourly crypto bars.
  "volume_1_20",
  "volume_5_20",
  // Bar shape: high-low range (log), its 14-bar mean, where the close sits in the range, the body.
  "range_1",
  "range_14",
  "close_location",
  "body",
  // Distance from the 20-bar high and low.
  "close_high_20",
  "close_low_20",
  // Calendar cycles (UTC) of the bar's open time; the hour is constant for daily bars, which the models ignore.
  "dow_sin",
  "dow_cos",
  "hour_sin",
  "hour_cos",
]);

/** Bars needed before the first feature vector: vol_60 needs 60 one-bar returns, so 61 closes. */
export const MIN_HISTORY = 61;

export function knownFeatureSet(name: string, version: number): boolean {
  return name === FEATURE_SET.name && version === FEATURE_SET.version;
}

/**
 * The feature vector of bar `t`, from bars[t - MIN_HISTORY + 1 .. t] only. Serving calls it with
 * `t = bars.length - 1`. Throws `market_data_unavailable` when fewer than MIN_HISTORY bars end at `t`.
 */
export function computeFeatures(bars: readonly Bar[], t: number): Float64Array {
  if (!Number.isInteger(t) || t < 0 || t >= bars.length) {
    throw new RangeError(`computeFeatures: bar index ${t} outside 0..${bars.length - 1}`);
  }
  if (t < MIN_HISTORY - 1) {
    throw new FeatureError(
      "insufficient_history",
      `features need ${MIN_HISTORY} bars of history, only ${t + 1} available; fetch a longer history`,
    );
  }
  const bar = bars[t] as Bar;
  const close = (i: number) => (bars[i] as Bar).close;
  const c = bar.close;
  const ret = (i: number) => Math.log(close(i) / close(i - 1));

  const out = new Float64Array(FEATURE_NAMES.length);
  let k = 0;
  for (const lag of [1, 2, 3, 5, 10, 20]) out[k++] = Math.log(c / close(t - lag));
  out[k++] = ret(t - 1);
  out[k++] = ret(t - 2);

  const vol5 = volatility(bars, t, 5);
  const vol20 = volatility(bars, t, 20);
  out[k++] = vol5;
  out[k++] = vol20;
  out[k++] = volatility(bars, t, 60);
  out[k++] = vol20 > 0 ? vol5 / vol20 : 1;

  const sma5 = mean(bars, t, 5, "close");
  const sma20 = mean(bars, t, 20, "close");
  out[k++] = Math.log(c / sma5);
  out[k++] = Math.log(c / mean(bars, t, 10, "close"));
  out[k++] = Math.log(c / sma20);
  out[k++] = Math.log(c / mean(bars, t, 50, "close"));
  out[k++] = Math.log(sma5 / sma20);

  out[k++] = rsi(bars, t, 14);

  const volume20 = mean(bars, t, 20, "volume");
  out[k++] = volume20 > 0 ? Math.log1p(bar.volume / volume20) : Math.LN2;
  out[k++] = volume20 > 0 ? Math.log1p(mean(bars, t, 5, "volume") / volume20) : Math.LN2;

  out[k++] = Math.log(bar.high / bar.low);
  let range14 = 0;
  for (let i = t - 13; i <= t; i++) range14 += Math.log((bars[i] as Bar).high / (bars[i] as Bar).low);
  out[k++] = range14 / 14;
  out[k++] = bar.high > bar.low ? (c - bar.low) / (bar.high - bar.low) - 0.5 : 0;
  out[k++] = Math.log(c / bar.open);

  let high20 = bar.high;
  let low20 = bar.low;
  for (let i = t - 19; i < t; i++) {
    high20 = Math.max(high20, (bars[i] as Bar).high);
    low20 = Math.min(low20, (bars[i] as Bar).low);
  }
  out[k++] = Math.log(c / high20);
  out[k++] = Math.log(c / low20);

  const date = new Date(bar.time);
  const dow = (2 * Math.PI * date.getUTCDay()) / 7;
  const hour = (2 * Math.PI * date.getUTCHours()) / 24;
  out[k++] = Math.sin(dow);
  out[k++] = Math.cos(dow);
  out[k++] = Math.sin(hour);
  out[k++] = Math.cos(hour);
  return out;
}

export interface FeatureMatrix {
  /** One feature vector per usable bar t, ascending. */
  X: Float64Array[];
  /** Target: log return close[t + h] / close[t]. */
  y: Float64Array;
  /** Open time of bar t (the as-of bar). */
  times: number[];
  /** close[t], the price the forecast starts from. */
  closes: number[];
  /** close[t + h], the price the forecast aims at. */
  targetCloses: number[];
}

/**
 * Training rows: every bar t with a full history and a known target `horizonBars` ahead, i.e.
 * t = MIN_HISTORY - 1 .. bars.length - 1 - horizonBars. Bars must be contiguous at one interval.
 */
export function featureMatrix(bars: readonly Bar[], horizonBars: number): FeatureMatrix {
  if (!Number.isInteger(horizonBars) || horizonBars < 1) {
    throw new FeatureError(
      "invalid_horizon",
      `horizon must be a whole number of bars >= 1, got ${horizonBars}`,
    );
  }
  const rows = bars.length - horizonBars - (MIN_HISTORY - 1);
  if (rows <= 0) {
    throw new FeatureError(
      "insufficient_history",
      `${bars.length} bars are too few to train at a ${horizonBars}-bar horizon (need more than ${MIN_HISTORY - 1 + horizonBars})`,
    );
  }
  const X: Float64Array[] = new Array(rows);
  const y = new Float64Array(rows);
  const times: number[] = new Array(rows);
  const closes: number[] = new Array(rows);
  const targetCloses: number[] = new Array(rows);
  for (let r = 0; r < rows; r++) {
    const t = r + MIN_HISTORY - 1;
    const c = (bars[t] as Bar).close;
    const future = (bars[t + horizonBars] as Bar).close;
    X[r] = computeFeatures(bars, t);
    y[r] = Math.log(future / c);
    times[r] = (bars[t] as Bar).time;
    closes[r] = c;
    targetCloses[r] = future;
  }
  return { X, y, times, closes, targetCloses };
}

function mean(bars: readonly Bar[], t: number, window: number, field: "close" | "volume"): number {
  let sum = 0;
  for (let i = t - window + 1; i <= t; i++) sum += (bars[i] as Bar)[field];
  return sum / window;
}

/** Sample standard deviation of the `window` one-bar log returns ending at t. */
function volatility(bars: readonly Bar[], t: number, window: number): number {
  const returns = new Float64Array(window);
  let sum = 0;
  for (let j = 0; j < window; j++) {
    const i = t - window + 1 + j;
    const r = Math.log((bars[i] as Bar).close / (bars[i - 1] as Bar).close);
    returns[j] = r;
    sum += r;
  }
  const m = sum / window;
  let squares = 0;
  for (const r of returns) squares += (r - m) * (r - m);
  return Math.sqrt(squares / (window - 1));
}

function rsi(bars: readonly Bar[], t: number, window: number): number {
  let gains = 0;
  let losses = 0;
  for (let i = t - window + 1; i <= t; i++) {
    const change = (bars[i] as Bar).close - (bars[i - 1] as Bar).close;
    if (change > 0) gains += change;
    else losses -= change;
  }
  return gains + losses > 0 ? gains / (gains + losses) - 0.5 : 0;
}
