import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { INTERVAL_MS } from "../../src/market/symbols.js";
import { VersionMetadataSchema } from "../../src/registry/metadata.js";
import { naiveExportInputOf } from "../../src/selection/naive.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { type EvaluationReport, trainForecaster } from "../../src/training/forecaster.js";
import { exportNaive } from "../../src/training/onnx/export.js";
import { MARKET_DATA, REPO_ROOT } from "../support/paths.js";

/**
 * The models that ship in models/ are exactly what the trainer produces: retraining each from its report (same
 * bars, family, seed and parameters) gives the same bytes, and trainForecaster itself fails unless onnxruntime-web
 * reproduces the in-memory model bit for bit on the whole test split.
 */
const modelsDir = join(REPO_ROOT, "models");
const store = createFsArtifactStore(modelsDir);
const shipped = readdirSync(modelsDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(join(modelsDir, d.name))
      .filter((v) => /^\d+$/.test(v))
      .map((v) => [d.name, v] as const),
  );
const familyOf = (name: string, version: string) =>
  JSON.parse(readFileSync(join(modelsDir, name, version, "metadata.json"), "utf8")).tags?.family as string;
/** Versions a trainer fitted; the naive baseline (fitted on nothing) is checked apart, below. */
const trained = shipped.filter(([name, version]) => familyOf(name, version) !== "naive");
const naive = shipped.filter(([name, version]) => familyOf(name, version) === "naive");

describe("shipped models", () => {
  it("ship BTC and ETH 24h forecasters", () => {
    const names = new Set(shipped.map(([name]) => name));
    expect(names).toEqual(new Set(["BTC-24h", "ETH-24h"]));
  });

  it("ship one naive baseline per model beside the trained versions", () => {
    expect(naive.map(([name]) => name).sort()).toEqual(["BTC-24h", "ETH-24h"]);
    expect(trained.length).toBeGreaterThanOrEqual(4);
  });

  it.each(naive)("%s@%s is exactly what exportNaive builds from a trained sibling", async (name, version) => {
    const [, siblingVersion] = trained.find(([n]) => n === name) as readonly [string, string];
    const sibling = VersionMetadataSchema.parse(
      JSON.parse((await store.getMetadata(name, siblingVersion)) ?? "null"),
    );
    const bytes = await store.getModel(name, version);
    expect(Buffer.from(bytes ?? []).equals(Buffer.from(exportNaive(naiveExportInputOf(sibling))))).toBe(true);
  });

  it.each(shipped)(
    "%s@%s carries an interval calibration on its test split, and pooled walk-forward coverage of 0.80 ± 0.03",
    async (name, version) => {
      const meta = VersionMetadataSchema.parse(
        JSON.parse((await store.getMetadata(name, version)) ?? "null"),
      );
      const calibration = meta.calibration;
      expect(calibration?.method).toBe("split_conformal_vol_scaled");
      expect(calibration?.window).toBe("test_split");
      const intervals = meta.report?.intervals as EvaluationReport["intervals"];
      // The naive version's: the same test split and folds as the sibling it was registered with, with ŷ = 0.
      expect(intervals.calibration).toEqual(calibration);
      const wf = intervals.walk_forward;
      expect(wf.folds.length).toBeGreaterThanOrEqual(6);
      expect(wf.rows).toBe(wf.folds.reduce((sum, f) => sum + f.rows, 0));
      expect(intervals.level).toBe(0.8);
      expect(wf.coverage).toBeGreaterThanOrEqual(0.77);
      expect(wf.coverage).toBeLessThanOrEqual(0.83);
      // Pooled coverage is the row-weighted mean of the folds'.
      const pooled = wf.folds.reduce((sum, f) => sum + f.coverage * f.rows, 0) / wf.rows;
      expect(pooled).toBeCloseTo(wf.coverage, 12);
      expect(wf.naive.method).toBe("gaussian_trailing_volatility");
      expect(wf.levels.map((l) => l.level)).toEqual([0.5, 0.8, 0.9, 0.95]);
    },
  );

  it.each(naive)(
    "%s@%s (naive) is calibrated like its trained siblings' runs would calibrate it: the same rows, ŷ = 0",
    async (name, version) => {
      const meta = VersionMetadataSchema.parse(
        JSON.parse((await store.getMetadata(name, version)) ?? "null"),
      );
      const [, siblingVersion] = trained.find(([n]) => n === name) as readonly [string, string];
      const sibling = VersionMetadataSchema.parse(
        JSON.parse((await store.getMetadata(name, siblingVersion)) ?? "null"),
      );
      const report = sibling.report as unknown as EvaluationReport;
      const market = createCsvMarketData({ dir: MARKET_DATA });
      const bars = await market.getBars(report.symbol, report.interval, {
        end: new Date(Date.parse(report.data.last) + INTERVAL_MS[report.interval]),
      });
      const retrained = await trainForecaster({
        bars,
        symbol: report.symbol,
        interval: report.interval,
        horizonBars: report.horizonBars,
        family: report.family,
        seed: report.seed,
        params: report.params,
      });
      expect(retrained.naive.calibration).toEqual(meta.calibration);
      expect(retrained.naive.intervals).toEqual(meta.report?.intervals);
    },
  );

  it.each(trained)(
    "%s@%s has a data_cutoff with the last 90 days of its CSV after it (out of sample, for backfill)",
    async (name, version) => {
      const meta = VersionMetadataSchema.parse(
        JSON.parse((await store.getMetadata(name, version)) ?? "null"),
      );
      const report = meta.report as unknown as EvaluationReport;
      // The close of the last bar read: every split ends there (the last test target is that bar's close).
      expect(meta.data_cutoff).toBe(
        new Date(Date.parse(report.data.last) + INTERVAL_MS[report.interval]).toISOString(),
      );
      expect(Date.parse(report.splits.test.last)).toBeLessThan(Date.parse(meta.data_cutoff ?? ""));
      const market = createCsvMarketData({ dir: MARKET_DATA });
      const last90 = await market.getBars(report.symbol, report.interval, { limit: 90 });
      expect(last90).toHaveLength(90);
      // A daily bar dated D closes at D + 1 day; the first of the 90 closes strictly after the cutoff, and so
      // does every forecast made at its close or later.
      const firstClose = (last90[0]?.time ?? 0) + INTERVAL_MS[report.interval];
      expect(firstClose).toBeGreaterThan(Date.parse(meta.data_cutoff ?? ""));
    },
  );

  it.each(trained)(
    "%s@%s is reproduced bit for bit by the trainer from real market data",
    async (name, version) => {
      const meta = VersionMetadataSchema.parse(
        JSON.parse((await store.getMetadata(name, version)) ?? "null"),
      );
      const report = meta.report as unknown as EvaluationReport;
      const market = createCsvMarketData({ dir: MARKET_DATA });
      const bars = await market.getBars(report.symbol, report.interval, {
        end: new Date(Date.parse(report.data.last) + INTERVAL_MS[report.interval]),
      });
      expect(bars.length).toBe(report.data.bars);
      const retrained = await trainForecaster({
        bars,
        symbol: report.symbol,
        interval: report.interval,
        horizonBars: report.horizonBars,
        family: report.family,
        seed: report.seed,
        params: report.params,
      });
      expect(retrained.report.parity).toEqual({ rows: report.test.rows, bitExact: true });
      expect(retrained.sha256).toBe(meta.sha256);
      expect(retrained.report.test).toEqual(report.test);
      // The interval calibration that serves, and the walk-forward interval report, reproduced number for number.
      expect(retrained.calibration).toEqual(meta.calibration);
      expect(retrained.report.intervals).toEqual(report.intervals);
      const bytes = await store.getModel(name, version);
      expect(Buffer.from(bytes ?? []).equals(Buffer.from(retrained.onnx))).toBe(true);
    },
  );
});
