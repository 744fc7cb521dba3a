/**
 * The Diebold–Mariano test of equal predictive accuracy (Diebold & Mariano 1995) with the Harvey–Leybourne–Newbold
 * small-sample correction (HLN 1997), one-sided: does the model have a lower expected loss than the benchmark?
 * Hand-written because it is a dozen lines of arithmetic on top of the Student-t CDF, which comes from stdlib; no
 * maintained npm package implements DM with HAC variance.
 */

import tCdf from "@stdlib/stats-base-dists-t-cdf";
import { TrainingError } from "./errors.js";

export interface DieboldMarianoResult {
  /** T: the number of loss differentials. */
  rows: number;
  /** Mean of d_t = loss_model − loss_benchmark: negative when the model's loss is lower. */
  meanDifferential: number;
  /** Newey–West truncation lag: h − 1 (autocovariances beyond it are taken as zero). */
  lag: number;
  /** HLN-corrected statistic, mean(d) / sqrt(var_HAC(d) / T) · sqrt((T + 1 − 2h + h(h − 1)/T) / T). */
  statistic: number;
  /** One-sided p-value of "the model's expected loss is lower", P(t_{T−1} ≤ statistic). */
  pValue: number;
}

/**
 * `differentials` are d_t = loss_model,t − loss_benchmark,t in time order; `horizon` is the forecast horizon h in
 * rows. Consecutive h-step targets overlap by h − 1 rows, so d_t is autocorrelated up to lag h − 1 even for optimal
 * forecasts: the variance of the mean is the Newey–West (Bartlett-weighted, hence never negative) long-run variance
 * up to that lag. With h = 1 it is the plain variance and the corrected statistic is the one-sample t statistic.
 *
 * Degenerate case: all d_t equal (e.g. the model is the benchmark), the variance is 0 and the statistic undefined; it
 * is reported as 0 with p = 1 unless every d_t is negative (then p = 0: the model is better on every row).
 */
export function dieboldMariano(differentials: ArrayLike<number>, horizon: number): DieboldMarianoResult {
  const T = differentials.length;
  if (!(Number.isInteger(horizon) && horizon >= 1)) {
    throw new TrainingError(
      "invalid_parameters",
      `Diebold–Mariano horizon must be a whole number >= 1, got ${horizon}`,
    );
  }
  if (T < 2 || T <= 2 * horizon) {
    throw new TrainingError(
      "insufficient_data",
      `a Diebold–Mariano test at horizon ${horizon} needs more than ${2 * horizon} loss differentials, got ${T}`,
    );
  }
  let mean = 0;
  for (let t = 0; t < T; t++) {
    const d = differentials[t] as number;
    if (!Number.isFinite(d)) throw new TrainingError("invalid_data", `loss differential ${t} is ${d}`);
    mean += d;
  }
  mean /= T;
  const lag = horizon - 1;
  const autocovariance = (k: number): number => {
    let sum = 0;
    for (let t = k; t < T; t++) {
      sum += ((differentials[t] as number) - mean) * ((differentials[t - k] as number) - mean);
    }
    return sum / T;
  };
  let variance = autocovariance(0);
  for (let k = 1; k <= lag; k++) variance += 2 * (1 - k / (lag + 1)) * autocovariance(k);

  if (!(variance > 0)) {
    return { rows: T, meanDifferential: mean, lag, statistic: 0, pValue: mean < 0 ? 0 : 1 };
  }
  const dm = mean / Math.sqrt(variance / T);
  const h = horizon;
  const hln = Math.sqrt((T + 1 - 2 * h + (h * (h - 1)) / T) / T);
  const statistic = dm * hln;
  return { rows: T, meanDifferential: mean, lag, statistic, pValue: tCdf(statistic, T - 1) };
}
