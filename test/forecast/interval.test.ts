import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { featureMatrix } from "../../src/features/index.js";
import {
  conformalQuantile,
  conformityScore,
  forecastInterval,
  INTERVAL_LEVELS,
  intervalLevelOf,
  intervalScale,
  levelKey,
  logReturnBounds,
  priceBounds,
} from "../../src/forecast/interval.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { INTERVAL_MS } from "../../src/market/symbols.js";
import { sameCalibration } from "../../src/registry/duplicates.js";
import { type VersionMetadata, VersionMetadataSchema } from "../../src/registry/metadata.js";
import type { EvaluationReport } from "../../src/training/forecaster.js";
import { calibrate, intervalReport } from "../../src/training/intervals.js";
import { runForecaster } from "../../src/training/onnx/runtime.js";
import { MARKET_DATA, REPO_ROOT } from "../support/paths.js";

/** The interval arithmetic training and serving share (src/forecast/interval.ts), and its calibration on real rows. */

describe("conformalQuantile(scores, L): the ⌈(n + 1)·L⌉-th smallest score", () => {
  const scores = [9, 1, 8, 2, 7, 3, 6, 4, 5]; // n = 9, unsorted
  it.each([
    [0.5, 5], // ⌈10 · 0.5⌉ = 5
    [0.8, 8], // ⌈10 · 0.8⌉ = 8
    [0.85, 9], // ⌈8.5⌉ = 9
    [0.9, 9], // ⌈9⌉ = 9
  ])("at L = %s it is %s", (level, expected) => {
    expect(conformalQuantile(scores, level)).toBe(expected);
  });
  it("is +∞ when n is too small for L (⌈(n + 1)·L⌉ > n)", () => {
    expect(conformalQuantile(scores, 0.95)).toBe(Number.POSITIVE_INFINITY);
    expect(conformalQuantile([], 0.5)).toBe(Number.POSITIVE_INFINITY);
  });
  it("does not reorder the caller's scores", () => {
    const copy = [...scores];
    conformalQuantile(copy, 0.8);
    expect(copy).toEqual(scores);
  });
});

describe("scores and bounds", () => {
  it("score = |y − ŷ| / σ; NaN when σ is not positive (such a row is not scored)", () => {
    expect(conformityScore(0.03, 0.01, 0.04)).toBeCloseTo(0.5, 15);
    expect(conformityScore(-0.03, 0.01, 0.04)).toBeCloseTo(1, 15);
    expect(conformityScore(0.03, 0.01, 0)).toBeNaN();
    expect(conformityScore(0.03, 0.01, Number.NaN)).toBeNaN();
  });
  it("bounds are ŷ ∓ q·σ in log return, close·exp of them in price", () => {
    expect(logReturnBounds(0.01, 0.02, 1.5)).toEqual({ lower: 0.01 - 1.5 * 0.02, upper: 0.01 + 1.5 * 0.02 });
    const { lower, upper } = priceBounds(100, 0.01, 0.02, 1.5);
    expect(lower).toBe(100 * Math.exp(0.01 - 0.03));
    expect(upper).toBe(100 * Math.exp(0.01 + 0.03));
  });
  it("σ = vol_20 · sqrt(horizon bars), vol_20 read from its column of the feature vector", () => {
    const features = new Float64Array(30);
    features[9] = 0.02; // vol_20 in crypto-ohlcv@1
    expect(intervalScale(features, 1)).toBe(0.02);
    expect(intervalScale(features, 24)).toBe(0.02 * Math.sqrt(24));
  });
  it("a forecast's interval is null without calibration or without a positive σ", () => {
    const calibration = { quantiles: { "0.5": 0.6, "0.8": 1.3, "0.9": 1.7, "0.95": 2.4 } };
    expect(forecastInterval(undefined, 0.8, 100, 0, 0.02)).toBeNull();
    expect(forecastInterval(calibration, 0.8, 100, 0, 0)).toBeNull();
    expect(forecastInterval(calibration, 0.9, 100, 0, 0.02)).toEqual({
      level: 0.9,
      ...priceBounds(100, 0, 0.02, 1.7),
    });
  });
  it("a level that is not calibrated is 400 invalid_request naming the levels", () => {
    expect(intervalLevelOf(undefined, 0.8)).toBe(0.8);
    expect(intervalLevelOf(0.95, 0.8)).toBe(0.95);
    expect(() => intervalLevelOf(0.7, 0.8)).toThrow(
      expect.objectContaining({
        code: "invalid_request",
        message: expect.stringContaining("0.5, 0.8, 0.9, 0.95"),
      }),
    );
  });
});

describe("calibrate and intervalReport", () => {
  // 200 rows: y alternates ±k·σ around ŷ, σ = 0.01 everywhere, so every score is k.
  const n = 200;
  const X = Array.from({ length: n }, () => {
    const x = new Float64Array(30);
    x[9] = 0.01;
    return x;
  });
  const k = (i: number) => (i % 100) / 50; // 0 .. 1.98, each value twice
  const rows = {
    y: Float64Array.from({ length: n }, (_, i) => 0.001 + (i % 2 ? 1 : -1) * k(i) * 0.01),
    predictions: new Float64Array(n).fill(0.001),
    X,
    times: Array.from({ length: n }, (_, i) => Date.UTC(2024, 0, 1) + i * 86_400_000),
  };
  it("stores one quantile per level, the rows and their span", () => {
    const calibration = calibrate(rows, 1, "test_split");
    expect(calibration).toMatchObject({
      method: "split_conformal_vol_scaled",
      scale: "vol_20*sqrt(horizon_bars)",
      window: "test_split",
      rows: n,
      from: "2024-01-01T00:00:00.000Z",
    });
    const scores = Array.from({ length: n }, (_, i) => conformityScore(rows.y[i] as number, 0.001, 0.01));
    for (const level of INTERVAL_LEVELS) {
      expect(calibration.quantiles[levelKey(level)]).toBe(conformalQuantile(scores, level));
    }
  });
  it("refuses too few rows for the widest level", () => {
    const few = { ...rows, y: rows.y.slice(0, 10), predictions: rows.predictions.slice(0, 10) };
    expect(() => calibrate({ ...few, X: X.slice(0, 10), times: rows.times.slice(0, 10) }, 1, "x")).toThrow(
      /too few/,
    );
  });
  it("scores each fold with the quantile of the other folds' scores", () => {
    const folds = [
      { from: "a", to: "b", rows: 100 },
      { from: "b", to: "c", rows: 100 },
    ];
    const report = intervalReport(rows, folds, 1, calibrate(rows, 1, "test_split"));
    const first = report.walk_forward.folds[0];
    const otherScores = Array.from({ length: 100 }, (_, j) => k(100 + j));
    expect(first?.quantile).toBe(conformalQuantile(otherScores, 0.8));
    expect(report.walk_forward.rows).toBe(n);
    expect(report.walk_forward.coverage).toBeGreaterThanOrEqual(0.8);
    expect(report.walk_forward.naive.z).toBeCloseTo(1.2815515655446004, 12);
  });
});

describe("the calibration is part of what makes a version the same version", () => {
  const base = { sha256: "a".repeat(64), golden: undefined, forecast: undefined, feature_set: undefined };
  const calibration = {
    method: "split_conformal_vol_scaled" as const,
    scale: "vol_20*sqrt(horizon_bars)" as const,
    window: "test_split",
    rows: 100,
    from: "2024-01-01T00:00:00.000Z",
    to: "2024-04-09T00:00:00.000Z",
    quantiles: { "0.5": 0.6, "0.8": 1.3, "0.9": 1.7, "0.95": 2.4 },
  };
  it("same bytes, same calibration: the same version", () => {
    expect(
      sameCalibration({ ...base, calibration }, { ...base, calibration: structuredClone(calibration) }),
    ).toBe(true);
  });
  it("same bytes, other quantiles or none: another version", () => {
    const other = { ...calibration, quantiles: { ...calibration.quantiles, "0.8": 1.31 } };
    expect(sameCalibration({ ...base, calibration }, { ...base, calibration: other })).toBe(false);
    expect(sameCalibration({ ...base, calibration }, base)).toBe(false);
  });
});

/** Every shipped version (models/), with the trained sibling whose run calibrated it. */
const modelsDir = join(REPO_ROOT, "models");
const read = (name: string, version: string): VersionMetadata =>
  VersionMetadataSchema.parse(
    JSON.parse(readFileSync(join(modelsDir, name, version, "metadata.json"), "utf8")),
  );
const shipped = readdirSync(modelsDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(join(modelsDir, d.name))
      .filter((v) => /^\d+$/.test(v))
      .map((v) => [d.name, v] as const),
  );

describe("on real rows: the shipped calibrations recomputed from the CSVs and the shipped ONNX bytes", () => {
  it.each(shipped)(
    "%s@%s: each stored quantile is the conformal quantile of |y − ŷ| / σ over its test split",
    async (name, version) => {
      const meta = read(name, version);
      // The naive version's report has no splits: its rows are those of the trained sibling it was registered with.
      const siblingVersion = meta.tags.family === "naive" ? "1" : version;
      const report = read(name, siblingVersion).report as unknown as EvaluationReport;
      const bars = await createCsvMarketData({ dir: MARKET_DATA }).getBars(report.symbol, report.interval, {
        end: new Date(Date.parse(report.data.last) + INTERVAL_MS[report.interval]),
      });
      const matrix = featureMatrix(bars, report.horizonBars);
      const start = matrix.times.indexOf(Date.parse(report.splits.test.first));
      const end = matrix.times.indexOf(Date.parse(report.splits.test.last)) + 1;
      expect(end - start).toBe(report.splits.test.rows);
      const X = matrix.X.slice(start, end);
      const bytes = readFileSync(join(modelsDir, name, version, "model.onnx"));
      const predictions = await runForecaster(new Uint8Array(bytes), X, X[0]?.length ?? 0);
      if (meta.tags.family === "naive") expect(predictions.every((p) => p === 0)).toBe(true);

      const closes = bars.map((b) => b.close);
      const scores = X.map((x, i) => {
        // σ recomputed here from the closes (sample std of the last 20 one-bar log returns), not read from the row.
        const t = start + i + 60; // row r is bar r + MIN_HISTORY − 1
        const returns = Array.from({ length: 20 }, (_, j) =>
          Math.log((closes[t - j] as number) / (closes[t - j - 1] as number)),
        );
        const mean = returns.reduce((a, b) => a + b, 0) / 20;
        const sd = Math.sqrt(returns.reduce((a, r) => a + (r - mean) ** 2, 0) / 19);
        const sigma = intervalScale(x, report.horizonBars);
        expect(Math.abs(sigma - sd * Math.sqrt(report.horizonBars))).toBeLessThan(1e-15);
        return conformityScore(matrix.y[start + i] as number, predictions[i] as number, sigma);
      });
      expect(meta.calibration?.rows).toBe(scores.length);
      expect(meta.calibration?.from).toBe(report.splits.test.first);
      expect(meta.calibration?.to).toBe(report.splits.test.last);
      for (const level of INTERVAL_LEVELS) {
        expect(
          Object.is(meta.calibration?.quantiles[levelKey(level)], conformalQuantile(scores, level)),
        ).toBe(true);
      }
      // Split-conformal on its own calibration rows covers at least L of them (the finite-sample guarantee's form).
      for (const level of INTERVAL_LEVELS) {
        const q = meta.calibration?.quantiles[levelKey(level)] as number;
        const covered = scores.filter((s) => s <= q).length / scores.length;
        expect(covered).toBeGreaterThanOrEqual(level);
      }
    },
    60_000,
  );
});
