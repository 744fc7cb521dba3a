/**
 * Honest metrics for a price forecaster (DESIGN.md, "Training and model quality"). A 24h crypto forecast is close to
 * a random walk, so the numbers that say anything are the ones against the naive "no change" forecast: R² on the
 * log return (0 = no better than the mean return), MAPE beside the naive MAPE, and the skill between them. R² on the
 * price level is ~0.998 for any forecast, the naive one included; it is reported, labelled, for completeness only.
 */

export interface ForecastMetrics {
  rows: number;
  /** R² of the predicted log return against the realised one. */
  r2LogReturn: number;
  /** Root mean squared error of the log return. */
  rmseLogReturn: number;
  /** Mean absolute percentage error of the predicted price close[t] · exp(pred), in percent. */
  mape: number;
  /** MAPE of the naive forecast price[t + h] = close[t], in percent. */
  naiveMape: number;
  /** 1 − mape / naiveMape: positive when the model beats "no change". */
  skill: number;
  /** Share of rows where the predicted and realised returns have the same sign (a zero counts as "down"). */
  directionAccuracy: number;
  /** R² on the price level: near 1 for every model, naive included. Not a measure of skill. */
  r2Price: number;
  /** The naive forecast's R² on the price level, to read r2Price against. */
  naiveR2Price: number;
}

export interface ForecastRows {
  /** Realised log returns. */
  y: ArrayLike<number>;
  /** close[t] per row. */
  closes: ArrayLike<number>;
  /** close[t + h] per row. */
  targetCloses: ArrayLike<number>;
}

export function forecastMetrics(predicted: ArrayLike<number>, rows: ForecastRows): ForecastMetrics {
  const n = predicted.length;
  if (n === 0 || rows.y.length !== n || rows.closes.length !== n || rows.targetCloses.length !== n) {
    throw new Error(`forecastMetrics: ${n} predictions for ${rows.y.length} rows`);
  }
  let yMean = 0;
  let priceMean = 0;
  for (let i = 0; i < n; i++) {
    yMean += rows.y[i] as number;
    priceMean += rows.targetCloses[i] as number;
  }
  yMean /= n;
  priceMean /= n;

  let ssRes = 0;
  let ssTot = 0;
  let ape = 0;
  let naiveApe = 0;
  let sameSign = 0;
  let priceRes = 0;
  let naivePriceRes = 0;
  let priceTot = 0;
  for (let i = 0; i < n; i++) {
    const pred = predicted[i] as number;
    const y = rows.y[i] as number;
    const close = rows.closes[i] as number;
    const actual = rows.targetCloses[i] as number;
    const price = close * Math.exp(pred);
    ssRes += (y - pred) ** 2;
    ssTot += (y - yMean) ** 2;
    ape += Math.abs(price - actual) / actual;
    naiveApe += Math.abs(close - actual) / actual;
    if (pred > 0 === y > 0) sameSign++;
    priceRes += (actual - price) ** 2;
    naivePriceRes += (actual - close) ** 2;
    priceTot += (actual - priceMean) ** 2;
  }
  const mape = (100 * ape) / n;
  const naiveMape = (100 * naiveApe) / n;
  return {
    rows: n,
    r2LogReturn: 1 - ssRes / ssTot,
    rmseLogReturn: Math.sqrt(ssRes / n),
    mape,
    naiveMape,
    skill: 1 - mape / naiveMape,
    directionAccuracy: sameSign / n,
    r2Price: 1 - priceRes / priceTot,
    naiveR2Price: 1 - naivePriceRes / priceTot,
  };
}

/** Importances scaled to sum to 1, largest first. */
export function rankImportance(
  names: readonly string[],
  raw: ArrayLike<number>,
): { feature: string; importance: number }[] {
  let total = 0;
  for (let i = 0; i < raw.length; i++) total += Math.abs(raw[i] as number);
  return names
    .map((feature, i) => ({ feature, importance: total > 0 ? Math.abs(raw[i] as number) / total : 0 }))
    .sort((a, b) => b.importance - a.importance);
}
