import { featureMatrix } from "../../src/features/index.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { Bar, Interval } from "../../src/market/types.js";
import type { Dataset } from "../../src/training/gbdt.js";
import { chronologicalSplit } from "../../src/training/split.js";
import { MARKET_DATA } from "../support/paths.js";

const source = createCsvMarketData({ dir: MARKET_DATA });

export function realBars(symbol: "BTC" | "ETH", interval: Interval): Promise<Bar[]> {
  return source.getBars(symbol, interval);
}

/** Real feature rows and log-return targets of a symbol, split the way training splits them. */
export async function realSplits(symbol: "BTC" | "ETH", interval: Interval, horizonBars: number) {
  const m = featureMatrix(await realBars(symbol, interval), horizonBars);
  const split = chronologicalSplit(m.X.length, horizonBars);
  const take = (r: { start: number; end: number }): Dataset => ({
    X: m.X.slice(r.start, r.end),
    y: m.y.slice(r.start, r.end),
  });
  return { train: take(split.train), validation: take(split.validation), test: take(split.test) };
}
