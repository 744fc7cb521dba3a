import { beforeAll, describe, expect, it } from "vitest";
import { FEATURE_NAMES, FEATURE_SET, featureMatrix } from "../../src/features/index.js";
import { INTERVAL_MS } from "../../src/market/symbols.js";
import type { Bar } from "../../src/market/types.js";
import { type TrainedForecaster, trainForecaster } from "../../src/training/forecaster.js";
import { runForecaster } from "../../src/training/onnx/runtime.js";
import { realBars } from "./data.js";

const bars: Record<string, Bar[]> = {};
/** Trained once per symbol and family, shared by the behaviour tables below. */
const trained: Record<string, TrainedForecaster> = {};
/** Few rounds: parity and the report do not depend on the number of trees. */
const GBDT_TEST_PARAMS = { nTrees: 60 };

beforeAll(async () => {
  for (const symbol of ["BTC", "ETH"] as const) {
    bars[symbol] = await realBars(symbol, "1d");
    for (const family of ["gbdt", "ridge"] as const) {
      trained[`${symbol} ${family}`] = await trainForecaster({
        bars: bars[symbol] as Bar[],
        symbol,
        interval: "1d",
        horizonBars: 1,
        family,
        seed: 42,
        ...(family === "gbdt" ? { params: GBDT_TEST_PARAMS } : {}),
      });
    }
  }
});

const DAY = INTERVAL_MS["1d"];
const cases = ["BTC gbdt", "BTC ridge", "ETH gbdt", "ETH ridge"] as const;

describe("trainForecaster({ bars, symbol, interval, horizonBars, family, seed })", () => {
  describe.each(cases)("%s, daily bars, 24h (1-bar) horizon", (key) => {
    const symbol = key.slice(0, 3);

    it("checked the exported model against the trained one on the whole test split, bit for bit", () => {
      const { report } = trained[key] as TrainedForecaster;
      expect(report.parity).toEqual({ rows: report.splits.test.rows, bitExact: true });
      expect(report.evaluatedWith).toMatch(/^onnxruntime-web 1\.30\.0/);
    });

    it("walks forward over six quarters, each fold's model run in onnxruntime-web", () => {
      const wf = (trained[key] as TrainedForecaster).report.walk_forward;
      expect(wf.folds).toHaveLength(6);
      expect(wf.period).toBe("quarter");
      expect(wf.evaluated_with).toMatch(/^onnxruntime-web 1\.30\.0 .*checked bit-exact/);
      expect(wf.rows).toBe(wf.folds.reduce((sum, f) => sum + f.rows, 0));
      expect(Number.isFinite(wf.dm_statistic)).toBe(true);
    });

    it("reports metrics that recomputing them here from the bars and the ONNX model reproduces", async () => {
      const { report, onnx } = trained[key] as TrainedForecaster;
      const series = bars[symbol] as Bar[];
      const index = new Map(series.map((b, i) => [b.time, i]));
      const first = index.get(Date.parse(report.splits.test.first)) as number;
      const last = index.get(Date.parse(report.splits.test.last)) as number;
      expect(last - first + 1).toBe(report.splits.test.rows);

      // Naive "no change" MAPE straight from the closes.
      let naive = 0;
      for (let t = first; t <= last; t++) {
        const now = (series[t] as Bar).close;
        const next = (series[t + 1] as Bar).close;
        naive += Math.abs(now - next) / next;
      }
      expect(report.test.naiveMape).toBeCloseTo((100 * naive) / report.splits.test.rows, 10);

      // The model's MAPE and direction accuracy from its own ONNX outputs.
      const m = featureMatrix(series, 1);
      const offset = m.times.indexOf(Date.parse(report.splits.test.first));
      const X = m.X.slice(offset, offset + report.splits.test.rows);
      const predicted = await runForecaster(onnx, X, FEATURE_NAMES.length);
      let ape = 0;
      let hits = 0;
      predicted.forEach((p, i) => {
        const close = (series[first + i] as Bar).close;
        const next = (series[first + i + 1] as Bar).close;
        ape += Math.abs(close * Math.exp(p) - next) / next;
        if (p > 0 === next > close) hits++;
      });
      expect(report.test.mape).toBeCloseTo((100 * ape) / predicted.length, 10);
      expect(report.test.directionAccuracy).toBeCloseTo(hits / predicted.length, 12);
      expect(report.test.skill).toBeCloseTo(1 - report.test.mape / report.test.naiveMape, 12);
    });

    it("reports honest magnitudes: R² on price near 1 for the model and naive alike, R² on returns near 0", () => {
      const { test } = (trained[key] as TrainedForecaster).report;
      expect(test.r2Price).toBeGreaterThan(0.95);
      expect(test.naiveR2Price).toBeGreaterThan(0.95);
      expect(Math.abs(test.r2LogReturn)).toBeLessThan(0.1);
      expect(test.mape).toBeGreaterThan(0.5);
      expect(Math.abs(test.skill)).toBeLessThan(0.1);
      expect(test.directionAccuracy).toBeGreaterThan(0.35);
      expect(test.directionAccuracy).toBeLessThan(0.65);
    });

    it("splits in time order with an embargo of at least the horizon between the splits", () => {
      const { splits, data } = (trained[key] as TrainedForecaster).report;
      expect(splits.embargoRows).toBeGreaterThanOrEqual(1);
      expect(Date.parse(splits.train.first)).toBeGreaterThan(Date.parse(data.first));
      // The last training target (close one bar after train.last) lies before the first validation bar.
      expect(Date.parse(splits.train.last) + 1 * DAY).toBeLessThan(Date.parse(splits.validation.first));
      expect(Date.parse(splits.validation.last) + 1 * DAY).toBeLessThan(Date.parse(splits.test.first));
      expect(Date.parse(splits.test.last) + 1 * DAY).toBe(Date.parse(data.last));
      expect(splits.train.rows + splits.validation.rows + splits.test.rows + 2 * splits.embargoRows).toBe(
        (bars[symbol] as Bar[]).length - 60 - 1,
      );
    });

    it("describes the data, the feature set and the importance of every feature", () => {
      const result = trained[key] as TrainedForecaster;
      const { report } = result;
      expect(report.data).toEqual({
        bars: (bars[symbol] as Bar[]).length,
        first: new Date(((bars[symbol] as Bar[])[0] as Bar).time).toISOString(),
        last: "2026-03-27T00:00:00.000Z",
      });
      expect(result.featureSet).toEqual(FEATURE_SET);
      expect(result.featureNames).toEqual(FEATURE_NAMES);
      expect(report.featureImportance.map((f) => f.feature).sort()).toEqual([...FEATURE_NAMES].sort());
      expect(report.featureImportance.reduce((a, f) => a + f.importance, 0)).toBeCloseTo(1, 12);
      expect(report.importanceKind).toBe(key.endsWith("gbdt") ? "gain" : "abs_standardized_coefficient");
      expect(report.trainingTimeMs).toBeGreaterThan(0);
    });

    it("returns 8 golden test rows that the ONNX model reproduces", async () => {
      const { golden, onnx } = trained[key] as TrainedForecaster;
      expect(golden.inputs).toHaveLength(8);
      const out = await runForecaster(onnx, golden.inputs, FEATURE_NAMES.length);
      expect(Array.from(out)).toEqual(golden.outputs);
    });

    it("returns the sha256 of the ONNX bytes", async () => {
      const { onnx, sha256 } = trained[key] as TrainedForecaster;
      const digest = Buffer.from(await crypto.subtle.digest("SHA-256", new Uint8Array(onnx))).toString("hex");
      expect(sha256).toBe(digest);
    });
  });

  describe("determinism", () => {
    it.each(["gbdt", "ridge"] as const)(
      "%s: the same bars and seed give the same ONNX bytes",
      async (family) => {
        const again = await trainForecaster({
          bars: bars.BTC as Bar[],
          symbol: "BTC",
          interval: "1d",
          horizonBars: 1,
          family,
          seed: 42,
          ...(family === "gbdt" ? { params: GBDT_TEST_PARAMS } : {}),
        });
        expect(again.sha256).toBe(trained[`BTC ${family}`]?.sha256);
      },
    );

    it.each(["gbdt", "ridge"] as const)(
      "%s: the report's seed and params, passed back, retrain the same bytes",
      async (family) => {
        const { report, sha256 } = trained[`ETH ${family}`] as TrainedForecaster;
        expect(report.params).not.toHaveProperty("seed");
        const again = await trainForecaster({
          bars: bars.ETH as Bar[],
          symbol: report.symbol,
          interval: report.interval,
          horizonBars: report.horizonBars,
          family: report.family,
          seed: report.seed,
          params: report.params,
        });
        expect(again.sha256).toBe(sha256);
        expect(again.report.test).toEqual(report.test);
      },
    );

    it("gbdt: another seed subsamples other rows and gives another model", async () => {
      const other = await trainForecaster({
        bars: bars.BTC as Bar[],
        symbol: "BTC",
        interval: "1d",
        horizonBars: 1,
        family: "gbdt",
        seed: 43,
        params: { ...GBDT_TEST_PARAMS, earlyStoppingRounds: 0 },
      });
      const same = await trainForecaster({
        bars: bars.BTC as Bar[],
        symbol: "BTC",
        interval: "1d",
        horizonBars: 1,
        family: "gbdt",
        seed: 42,
        params: { ...GBDT_TEST_PARAMS, earlyStoppingRounds: 0 },
      });
      expect(other.sha256).not.toBe(same.sha256);
    });
  });

  it("hourly bars, 24-bar horizon: embargo of 24 rows, bit-exact, evaluated on the hourly test split", async () => {
    const hourly = await realBars("ETH", "1h");
    const { report } = await trainForecaster({
      bars: hourly,
      symbol: "ETH",
      interval: "1h",
      horizonBars: 24,
      family: "gbdt",
      seed: 1,
      params: { nTrees: 30 },
    });
    const hour = INTERVAL_MS["1h"];
    expect(report.splits.embargoRows).toBe(24);
    expect(Date.parse(report.splits.train.last) + 24 * hour).toBeLessThan(
      Date.parse(report.splits.validation.first),
    );
    expect(Date.parse(report.splits.validation.last) + 24 * hour).toBeLessThan(
      Date.parse(report.splits.test.first),
    );
    expect(report.parity.rows).toBe(report.splits.test.rows);
    expect(report.splits.test.rows).toBeGreaterThan(2000);
    // Walk-forward on hourly bars: six whole months, a 24-row embargo, and DM with Newey–West lag 23 for the
    // overlapping 24-bar targets.
    const wf = report.walk_forward;
    expect(wf.period).toBe("month");
    expect(wf.folds).toHaveLength(6);
    expect(wf.embargo_rows).toBe(24);
    expect(wf.dm_hac_lag).toBe(23);
    for (const fold of wf.folds) {
      expect(fold.from.slice(8)).toBe("01T00:00:00.000Z");
      expect(fold.rows).toBe((Date.parse(fold.to) - Date.parse(fold.from)) / hour);
      expect(Date.parse(fold.validation_last) + 25 * hour).toBeLessThanOrEqual(Date.parse(fold.from));
    }
  });

  describe("refuses", () => {
    const base = () => ({
      bars: bars.BTC as Bar[],
      symbol: "BTC",
      interval: "1d" as const,
      horizonBars: 1,
      seed: 1,
    });

    it("bars with a gap, naming it", async () => {
      const gapped = (bars.BTC as Bar[]).filter((_, i) => i !== 2000);
      await expect(trainForecaster({ ...base(), bars: gapped, family: "ridge" })).rejects.toThrow(
        expect.objectContaining({
          kind: "invalid_data",
          message: expect.stringMatching(/contiguous at 1d: .* is followed by/),
        }),
      );
    });

    it.each([
      ["an unknown family", { family: "forest" }, /unknown model family "forest"/],
      [
        "a parameter of the other family",
        { family: "ridge", params: { nTrees: 3 } },
        /unknown ridge parameter\(s\) nTrees; allowed: alphas/,
      ],
      [
        "the seed among the parameters",
        { family: "gbdt", params: { seed: 3 } },
        /unknown gbdt parameter\(s\) seed/,
      ],
      ["a fractional seed", { family: "gbdt", seed: 1.5 }, /seed must be an integer/],
    ])("%s as invalid_parameters", async (_, overrides, message) => {
      const input = { ...base(), ...overrides } as Parameters<typeof trainForecaster>[0];
      await expect(trainForecaster(input)).rejects.toThrow(
        expect.objectContaining({ kind: "invalid_parameters", message: expect.stringMatching(message) }),
      );
    });

    it("a zero horizon, as the feature module's invalid_horizon", async () => {
      await expect(trainForecaster({ ...base(), family: "gbdt", horizonBars: 0 })).rejects.toThrow(
        expect.objectContaining({
          kind: "invalid_horizon",
          message: expect.stringMatching(/horizon must be a whole number/),
        }),
      );
    });

    it("a history too short to split", async () => {
      await expect(
        trainForecaster({ ...base(), bars: (bars.BTC as Bar[]).slice(0, 150), family: "ridge" }),
      ).rejects.toThrow(expect.objectContaining({ kind: "insufficient_data" }));
    });
  });
});
