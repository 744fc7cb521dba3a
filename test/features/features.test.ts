import { beforeAll, describe, expect, it } from "vitest";
import {
  computeFeatures,
  FEATURE_NAMES,
  FEATURE_SET,
  featureMatrix,
  knownFeatureSet,
  MIN_HISTORY,
} from "../../src/features/index.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { Bar, Interval } from "../../src/market/types.js";
import { mulberry32 } from "../../src/training/prng.js";
import { MARKET_DATA } from "../support/paths.js";

const source = createCsvMarketData({ dir: MARKET_DATA });
const series: Record<string, Bar[]> = {};

beforeAll(async () => {
  for (const symbol of ["BTC", "ETH"]) {
    for (const interval of ["1d", "1h"] as Interval[])
      series[`${symbol} ${interval}`] = await source.getBars(symbol, interval);
  }
});

const column = (name: string) => {
  const index = FEATURE_NAMES.indexOf(name);
  if (index < 0) throw new Error(`no feature ${name}`);
  return index;
};

function expectBitIdentical(actual: Float64Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      throw new Error(`feature ${FEATURE_NAMES[i]} differs: ${actual[i]} vs ${expected[i]}`);
    }
  }
}

describe("feature set crypto-ohlcv@1", () => {
  it("names one column per value, each once", () => {
    expect(FEATURE_SET).toEqual({ name: "crypto-ohlcv", version: 1 });
    expect(new Set(FEATURE_NAMES).size).toBe(FEATURE_NAMES.length);
    expect(FEATURE_NAMES.length).toBeGreaterThanOrEqual(20);
    expect(FEATURE_NAMES.length).toBeLessThanOrEqual(30);
    expect(computeFeatures(series["BTC 1d"] as Bar[], MIN_HISTORY - 1)).toHaveLength(FEATURE_NAMES.length);
  });

  it.each([
    ["crypto-ohlcv", 1, true],
    ["crypto-ohlcv", 2, false],
    ["crypto-ohlcv", 0, false],
    ["other", 1, false],
  ] as const)("knownFeatureSet(%s, %i) is %s", (name, version, known) => {
    expect(knownFeatureSet(name, version)).toBe(known);
  });

  describe("computeFeatures(bars, t)", () => {
    it("needs MIN_HISTORY bars ending at t", () => {
      const bars = series["BTC 1d"] as Bar[];
      expect(() => computeFeatures(bars, MIN_HISTORY - 2)).toThrow(
        expect.objectContaining({ kind: "insufficient_history" }),
      );
      expect(() => computeFeatures(bars, MIN_HISTORY - 2)).toThrow(
        /features need 61 bars of history, only 60 available/,
      );
      expect(computeFeatures(bars.slice(0, MIN_HISTORY), MIN_HISTORY - 1).every(Number.isFinite)).toBe(true);
    });

    it.each([-1, 1.5, 5000])("rejects bar index %s outside the series", (t) => {
      expect(() => computeFeatures(series["BTC 1d"] as Bar[], t)).toThrow(RangeError);
    });

    it.each(["BTC 1d", "ETH 1d", "BTC 1h", "ETH 1h"])("is finite for every bar of %s", (key) => {
      const bars = series[key] as Bar[];
      for (let t = MIN_HISTORY - 1; t < bars.length; t++) {
        const x = computeFeatures(bars, t);
        if (!x.every(Number.isFinite)) throw new Error(`${key} bar ${t}: ${Array.from(x)}`);
      }
    });

    it("matches the definitions, recomputed here by hand on real bars", () => {
      const bars = series["BTC 1d"] as Bar[];
      const t = 3000;
      const x = computeFeatures(bars, t);
      const close = (i: number) => (bars[i] as Bar).close;
      const returns = Array.from({ length: 5 }, (_, j) => Math.log(close(t - 4 + j) / close(t - 5 + j)));
      const m = returns.reduce((a, b) => a + b) / 5;
      const vol5 = Math.sqrt(returns.reduce((a, r) => a + (r - m) ** 2, 0) / 4);
      const sma20 = Array.from({ length: 20 }, (_, j) => close(t - j)).reduce((a, b) => a + b) / 20;
      const day = new Date((bars[t] as Bar).time).getUTCDay();
      expect(x[column("logret_1")]).toBeCloseTo(Math.log(close(t) / close(t - 1)), 14);
      expect(x[column("logret_20")]).toBeCloseTo(Math.log(close(t) / close(t - 20)), 14);
      expect(x[column("logret_1_lag2")]).toBeCloseTo(Math.log(close(t - 2) / close(t - 3)), 14);
      expect(x[column("vol_5")]).toBeCloseTo(vol5, 14);
      expect(x[column("close_sma_20")]).toBeCloseTo(Math.log(close(t) / sma20), 14);
      expect(x[column("range_1")]).toBeCloseTo(Math.log((bars[t] as Bar).high / (bars[t] as Bar).low), 14);
      expect(x[column("dow_sin")]).toBeCloseTo(Math.sin((2 * Math.PI * day) / 7), 14);
      expect(x[column("hour_cos")]).toBe(1);
      expect(x[column("rsi_14")]).toBeGreaterThanOrEqual(-0.5);
      expect(x[column("rsi_14")]).toBeLessThanOrEqual(0.5);
      expect(x[column("close_location")]).toBeGreaterThanOrEqual(-0.5);
      expect(x[column("close_location")]).toBeLessThanOrEqual(0.5);
    });

    it("is scale-free: the same (to rounding) when prices are in cents and volume in another unit", () => {
      const bars = series["ETH 1d"] as Bar[];
      const scaled = bars.map((b) => ({
        ...b,
        open: b.open * 100,
        high: b.high * 100,
        low: b.low * 100,
        close: b.close * 100,
        volume: b.volume * 7,
      }));
      for (const t of [100, 1000, 3000]) {
        const a = computeFeatures(bars, t);
        const b = computeFeatures(scaled, t);
        a.forEach((value, i) => {
          expect(b[i]).toBeCloseTo(value, 9);
        });
      }
    });
  });

  describe("no look-ahead", () => {
    it.each(["BTC 1d", "ETH 1d", "BTC 1h", "ETH 1h"])(
      "%s: rewriting every bar after t (prices, volumes) or cutting them off leaves the features at t bit-identical",
      (key) => {
        const bars = series[key] as Bar[];
        const random = mulberry32(key.length * 7919);
        for (let trial = 0; trial < 40; trial++) {
          const t = MIN_HISTORY - 1 + Math.floor(random() * (bars.length - MIN_HISTORY - 1));
          const before = computeFeatures(bars, t);
          // Later bars from another stretch of the same series, shuffled: real prices, a different future.
          const future = bars.slice(t + 1).map((_, j) => {
            const donor = bars[Math.floor(random() * bars.length)] as Bar;
            return { ...donor, time: (bars[t + 1 + j] as Bar).time, volume: donor.volume * (1 + random()) };
          });
          expectBitIdentical(computeFeatures([...bars.slice(0, t + 1), ...future], t), before);
          expectBitIdentical(computeFeatures(bars.slice(0, t + 1), t), before);
        }
      },
    );

    it("uses only MIN_HISTORY bars: history before the window does not matter either", () => {
      const bars = series["BTC 1h"] as Bar[];
      const t = 9000;
      expectBitIdentical(
        computeFeatures(bars.slice(t - MIN_HISTORY + 1, t + 1), MIN_HISTORY - 1),
        computeFeatures(bars, t),
      );
    });
  });

  describe("featureMatrix(bars, horizonBars)", () => {
    it.each([
      ["BTC 1d", 1],
      ["ETH 1h", 24],
    ] as const)("%s at %i bars: one row per bar with history and a known target", (key, h) => {
      const bars = series[key] as Bar[];
      const m = featureMatrix(bars, h);
      expect(m.X).toHaveLength(bars.length - h - (MIN_HISTORY - 1));
      for (const r of [0, 500, m.X.length - 1]) {
        const t = r + MIN_HISTORY - 1;
        expectBitIdentical(m.X[r] as Float64Array, computeFeatures(bars, t));
        expect(m.y[r]).toBe(Math.log((bars[t + h] as Bar).close / (bars[t] as Bar).close));
        expect(m.times[r]).toBe((bars[t] as Bar).time);
        expect(m.closes[r]).toBe((bars[t] as Bar).close);
        expect(m.targetCloses[r]).toBe((bars[t + h] as Bar).close);
      }
      expect(m.times.at(-1)).toBe((bars[bars.length - 1 - h] as Bar).time);
    });

    it("gives serving the row training saw: the last bar's features equal that bar's training row", () => {
      const bars = series["BTC 1d"] as Bar[];
      const asOf = 3500;
      const served = computeFeatures(bars.slice(0, asOf + 1), asOf);
      expectBitIdentical(featureMatrix(bars, 1).X[asOf - (MIN_HISTORY - 1)] as Float64Array, served);
    });

    it.each([0, -1, 1.5])("rejects horizon %s", (h) => {
      expect(() => featureMatrix(series["BTC 1d"] as Bar[], h)).toThrow(
        /horizon must be a whole number of bars/,
      );
    });

    it("rejects a history too short for any row", () => {
      expect(() => featureMatrix((series["BTC 1d"] as Bar[]).slice(0, MIN_HISTORY), 1)).toThrow(
        /too few to train/,
      );
    });
  });
});
