import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { featureMatrix } from "../../src/features/index.js";
import { registrationOf, trainSymbol, UntilSchema } from "../../src/forecast/training.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { INTERVAL_MS } from "../../src/market/symbols.js";
import type { Bar } from "../../src/market/types.js";
import { RegistrationInputSchema } from "../../src/registry/metadata.js";
import { FOLD_VALIDATION_SHARE, periodStart, planWalkForward } from "../../src/training/folds.js";
import { type TrainedForecaster, trainForecaster } from "../../src/training/forecaster.js";
import { predictRidge, trainRidge } from "../../src/training/ridge.js";
import { lossDifferentials, walkForward } from "../../src/training/walk-forward.js";
import { type TestApp, testApp } from "../support/app.js";
import { MARKET_DATA } from "../support/paths.js";
import { realBars } from "./data.js";

const DAY = INTERVAL_MS["1d"];
const HOUR = INTERVAL_MS["1h"];
const QUARTERS = { folds: 6, period: "quarter" } as const;

/** Bars whose close is at or before the end of `date` (the daily bar dated `date` is the last). */
const barsUntil = (bars: readonly Bar[], date: string) =>
  bars.filter((bar) => bar.time <= Date.parse(`${date}T00:00:00Z`));
const rowTimes = (bars: readonly Bar[], horizon: number) => featureMatrix(bars, horizon).times;

let btc: Bar[];
beforeAll(async () => {
  btc = await realBars("BTC", "1d");
});

describe("periodStart(ms, period)", () => {
  it.each([
    ["2025-12-27T13:00:00Z", "quarter", "2025-10-01T00:00:00.000Z"],
    ["2025-10-01T00:00:00Z", "quarter", "2025-10-01T00:00:00.000Z"],
    ["2025-09-30T23:59:59Z", "quarter", "2025-07-01T00:00:00.000Z"],
    ["2024-02-29T12:00:00Z", "month", "2024-02-01T00:00:00.000Z"],
  ] as const)("%s, %s → %s", (at, period, start) => {
    expect(new Date(periodStart(Date.parse(at), period)).toISOString()).toBe(start);
  });
});

describe("planWalkForward(times, step, embargo, {folds, period}): the fold rule", () => {
  it("daily BTC to 2025-12-27: the six whole quarters before the unfinished one, Q2 2024 .. Q3 2025", () => {
    const plans = planWalkForward(rowTimes(barsUntil(btc, "2025-12-27"), 1), DAY, 1, QUARTERS);
    expect(plans.map((p) => [new Date(p.from).toISOString(), new Date(p.to).toISOString()])).toEqual([
      ["2024-04-01T00:00:00.000Z", "2024-07-01T00:00:00.000Z"],
      ["2024-07-01T00:00:00.000Z", "2024-10-01T00:00:00.000Z"],
      ["2024-10-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"],
      ["2025-01-01T00:00:00.000Z", "2025-04-01T00:00:00.000Z"],
      ["2025-04-01T00:00:00.000Z", "2025-07-01T00:00:00.000Z"],
      ["2025-07-01T00:00:00.000Z", "2025-10-01T00:00:00.000Z"],
    ]);
    // One row per day of each quarter.
    expect(plans.map((p) => p.test.end - p.test.start)).toEqual([91, 92, 92, 90, 91, 92]);
  });

  it("versions trained on different days of the same quarter get the same folds, row for row", () => {
    const a = planWalkForward(rowTimes(barsUntil(btc, "2025-12-27"), 1), DAY, 1, QUARTERS);
    const b = planWalkForward(rowTimes(barsUntil(btc, "2025-10-02"), 1), DAY, 1, QUARTERS);
    expect(b).toEqual(a);
  });

  it("a version trained a quarter later shares five of its six folds, on the same rows", () => {
    const before = planWalkForward(rowTimes(barsUntil(btc, "2025-12-27"), 1), DAY, 1, QUARTERS);
    const after = planWalkForward(rowTimes(barsUntil(btc, "2026-01-10"), 1), DAY, 1, QUARTERS);
    expect(after.slice(0, 5)).toEqual(before.slice(1));
    expect(new Date((after[5] as { from: number }).from).toISOString()).toBe("2025-10-01T00:00:00.000Z");
  });

  it("a quarter counts once the row of its last day exists: its target closed", () => {
    // Bars to 2025-12-31: the row of 2025-12-31 needs the close of 2026-01-01, so Q4 is not whole yet.
    const lastDayMissing = planWalkForward(rowTimes(barsUntil(btc, "2025-12-31"), 1), DAY, 1, QUARTERS);
    expect(new Date((lastDayMissing.at(-1) as { from: number }).from).toISOString()).toBe(
      "2025-07-01T00:00:00.000Z",
    );
    const whole = planWalkForward(rowTimes(barsUntil(btc, "2026-01-01"), 1), DAY, 1, QUARTERS);
    expect(new Date((whole.at(-1) as { from: number }).from).toISOString()).toBe("2025-10-01T00:00:00.000Z");
    expect((whole.at(-1) as { test: { start: number; end: number } }).test.end).toBe(
      rowTimes(barsUntil(btc, "2026-01-01"), 1).length,
    );
  });

  it("each fold trains before its test rows, behind an embargo of the horizon, and tunes on its own training rows", async () => {
    const hourly = await realBars("ETH", "1h");
    const times = rowTimes(hourly, 24);
    const plans = planWalkForward(times, HOUR, 24, { folds: 6, period: "month" });
    expect(plans).toHaveLength(6);
    for (const plan of plans) {
      expect(plan.train.start).toBe(0);
      expect(plan.validation.start).toBe(plan.train.end + 24);
      expect(plan.test.start).toBe(plan.validation.end + 24);
      // The last validation row's target (the close of the bar 24 on) is no later than the first test bar's open.
      expect((times[plan.validation.end - 1] as number) + 25 * HOUR).toBeLessThanOrEqual(
        times[plan.test.start] as number,
      );
      const usable = plan.test.start - 2 * 24;
      expect(plan.validation.end - plan.validation.start).toBe(Math.round(usable * FOLD_VALIDATION_SHARE));
      expect(new Date(plan.from).getUTCDate()).toBe(1);
      expect(times[plan.test.start]).toBe(plan.from);
      expect((times[plan.test.end - 1] as number) + HOUR).toBe(plan.to);
    }
  });

  describe("refuses", () => {
    it("fewer than six folds", () => {
      expect(() => planWalkForward(rowTimes(btc, 1), DAY, 1, { folds: 5, period: "quarter" })).toThrow(
        expect.objectContaining({
          kind: "invalid_parameters",
          message: expect.stringMatching(/at least 6 folds/),
        }),
      );
    });
    it("an unknown period", () => {
      expect(() =>
        planWalkForward(rowTimes(btc, 1), DAY, 1, { folds: 6, period: "week" as "month" }),
      ).toThrow(expect.objectContaining({ kind: "invalid_parameters" }));
    });
    it("a history that cannot hold the folds with training rows before them, as insufficient_data", () => {
      // BTC from 2014-09-17 to 2016-03-31: six quarters back reach before the first row.
      expect(() => planWalkForward(rowTimes(barsUntil(btc, "2016-03-31"), 1), DAY, 1, QUARTERS)).toThrow(
        expect.objectContaining({
          kind: "insufficient_data",
          message: expect.stringMatching(/longer history/),
        }),
      );
    });
  });
});

describe("walkForward({ matrix, fit, ... }): fitting and scoring the folds", () => {
  const ridgeFit = async (
    train: Parameters<typeof trainRidge>[0],
    validation: Parameters<typeof trainRidge>[0],
    testX: Float64Array[],
  ) => {
    const model = trainRidge(train, {}, validation);
    return { predictions: testX.map((x) => predictRidge(model, x)), model: { alpha: model.alpha } };
  };
  const run = (matrix: ReturnType<typeof featureMatrix>, fit = ridgeFit) =>
    walkForward({
      matrix,
      stepMs: DAY,
      horizonBars: 1,
      embargoRows: 1,
      options: QUARTERS,
      fit,
      evaluatedWith: "test",
    });

  it("fits each fold on rows before its test period only, tuning on a slice of those rows", async () => {
    const matrix = featureMatrix(barsUntil(btc, "2025-12-27"), 1);
    const seen: { train: number[]; validation: number[]; test: number[] }[] = [];
    const rowOf = (x: Float64Array) => matrix.X.indexOf(x);
    await run(matrix, async (train, validation, testX) => {
      seen.push({ train: train.X.map(rowOf), validation: validation.X.map(rowOf), test: testX.map(rowOf) });
      return ridgeFit(train, validation, testX);
    });
    expect(seen).toHaveLength(6);
    for (const fold of seen) {
      const firstTest = fold.test[0] as number;
      expect(Math.max(...fold.train)).toBeLessThan(Math.min(...fold.validation) - 1);
      expect(Math.max(...fold.validation)).toBe(firstTest - 2); // one row of embargo
      expect(fold.train[0]).toBe(0);
    }
  });

  it("gives a fold the same predictions whatever the targets of its test period and embargo are", async () => {
    const matrix = featureMatrix(barsUntil(btc, "2025-12-27"), 1);
    const clean = await run(matrix);
    const plans = planWalkForward(matrix.times, DAY, 1, QUARTERS);
    const k = 3;
    const from = (plans[k] as { test: { start: number } }).test.start - 1;
    const scrambled = { ...matrix, y: matrix.y.map((v, i) => (i >= from ? -v * 7 + 0.01 : v)) };
    const other = await run(scrambled);
    const rows = (r: typeof clean, fold: number) => {
      const plan = plans[fold] as { test: { start: number; end: number } };
      return Array.from(r.predictions.slice(plan.test.start - r.rows.start, plan.test.end - r.rows.start));
    };
    expect(rows(other, k)).toEqual(rows(clean, k));
    // A later fold trains on the scrambled rows, so the check above is not vacuous.
    expect(rows(other, k + 1)).not.toEqual(rows(clean, k + 1));
  });

  it("reports per-fold skill against naive, their mean and sample std, and DM over all fold rows", async () => {
    const matrix = featureMatrix(barsUntil(btc, "2025-12-27"), 1);
    const { report, predictions, rows } = await run(matrix);
    expect(report.folds).toHaveLength(6);
    for (const fold of report.folds) expect(fold.skill).toBeCloseTo(1 - fold.mape / fold.naive_mape, 12);
    const skills = report.folds.map((f) => f.skill);
    const mean = skills.reduce((a, b) => a + b, 0) / 6;
    expect(report.mean_skill).toBeCloseTo(mean, 14);
    expect(report.std_skill).toBeCloseTo(Math.sqrt(skills.reduce((a, s) => a + (s - mean) ** 2, 0) / 5), 14);
    expect(report.rows).toBe(report.folds.reduce((a, f) => a + f.rows, 0));
    expect(rows.end - rows.start).toBe(report.rows);
    // The DM loss differential is the per-row term of MAPE − naive MAPE.
    const d = lossDifferentials(
      predictions,
      matrix.closes.slice(rows.start, rows.end),
      matrix.targetCloses.slice(rows.start, rows.end),
    );
    const meanD = d.reduce((a, b) => a + b, 0) / d.length;
    expect(100 * meanD).toBeCloseTo(report.mape - report.naive_mape, 10);
    expect(report.loss).toBe("absolute_percentage_error");
    expect(report.dm_hac_lag).toBe(0);
    expect(Math.sign(report.dm_statistic)).toBe(Math.sign(meanD));
    expect(report.dm_p_value).toBeGreaterThan(0);
    expect(report.dm_p_value).toBeLessThan(1);
  });
});

describe("trainForecaster: report.walk_forward of what ships (BTC daily to 2025-12-27, seed 42)", () => {
  const trained: Record<string, TrainedForecaster> = {};
  const train = (family: "gbdt" | "ridge", until: string) =>
    trainForecaster({
      bars: barsUntil(btc, until),
      symbol: "BTC",
      interval: "1d",
      horizonBars: 1,
      family,
      seed: 42,
    });
  beforeAll(async () => {
    trained.gbdt = await train("gbdt", "2025-12-27");
    trained.ridge = await train("ridge", "2025-12-27");
  });

  it.each(["gbdt", "ridge"])(
    "%s: six quarterly folds with from, to, rows, skill, mape, naive_mape",
    (family) => {
      const wf = (trained[family] as TrainedForecaster).report.walk_forward;
      expect(wf.folds.map((f) => f.from.slice(0, 10))).toEqual([
        "2024-04-01",
        "2024-07-01",
        "2024-10-01",
        "2025-01-01",
        "2025-04-01",
        "2025-07-01",
      ]);
      expect(wf.folds.map((f) => f.rows)).toEqual([91, 92, 92, 90, 91, 92]);
      for (const fold of wf.folds) {
        expect(Object.keys(fold)).toEqual(
          expect.arrayContaining(["from", "to", "rows", "skill", "mape", "naive_mape"]),
        );
        expect(Date.parse(fold.validation_last) + DAY).toBeLessThan(Date.parse(fold.from));
      }
      expect(wf.embargo_rows).toBe(1);
      expect(wf.fold_rule).toMatch(/last 6 whole UTC calendar quarters/);
      expect(wf.evaluated_with).toMatch(/^onnxruntime-web 1\.30\.0 .*fold models are not registered/);
      expect(wf.dm_p_value).toBeGreaterThanOrEqual(0);
      expect(wf.dm_p_value).toBeLessThanOrEqual(1);
    },
  );

  it("the naive MAPE of every fold is the no-change error straight from the closes", () => {
    const wf = (trained.ridge as TrainedForecaster).report.walk_forward;
    const index = new Map(btc.map((b, i) => [b.time, i]));
    for (const fold of wf.folds) {
      let ape = 0;
      for (let t = index.get(Date.parse(fold.from)) as number, n = 0; n < fold.rows; t++, n++) {
        const next = (btc[t + 1] as Bar).close;
        ape += Math.abs((btc[t] as Bar).close - next) / next;
      }
      expect(fold.naive_mape).toBeCloseTo((100 * ape) / fold.rows, 10);
    }
  });

  it("a version trained on another day of the quarter reports the same folds, number for number", async () => {
    const later = await train("ridge", "2025-11-20");
    const strip = (r: TrainedForecaster) => {
      const { time_ms: _t, ...rest } = r.report.walk_forward;
      return rest;
    };
    expect(strip(later)).toEqual(strip(trained.ridge as TrainedForecaster));
  });

  it("keeps the shipped model's held-out test split and its bit-exact parity, apart from the folds", () => {
    const { report } = trained.gbdt as TrainedForecaster;
    expect(report.parity).toEqual({ rows: report.splits.test.rows, bitExact: true });
    // The shipped BTC-24h@1 numbers (docs/forecasting.md): walk-forward changed nothing of the shipped model.
    expect(report.model.trees).toBe(12);
    expect(report.test.skill).toBeCloseTo(-0.0022, 4);
  });

  it("hands out the folds' out-of-sample predictions, row-aligned with featureMatrix", () => {
    const { outOfSample, report } = trained.ridge as TrainedForecaster;
    const times = rowTimes(barsUntil(btc, "2025-12-27"), 1);
    expect(times[outOfSample.start]).toBe(Date.parse("2024-04-01T00:00:00Z"));
    expect(outOfSample.predictions).toHaveLength(report.walk_forward.rows);
  });

  it("registers wf_skill and dm_p_value among the metrics, and the metadata schema accepts the report", () => {
    const gbdt = trained.gbdt as TrainedForecaster;
    const registration = registrationOf(gbdt, {
      horizon: "24h",
      interval: "1d",
      families: ["gbdt"],
      seed: 42,
    });
    expect(registration.metrics).toMatchObject({
      wf_skill: gbdt.report.walk_forward.mean_skill,
      wf_skill_std: gbdt.report.walk_forward.std_skill,
      wf_folds: 6,
      dm_p_value: gbdt.report.walk_forward.dm_p_value,
    });
    const parsed = RegistrationInputSchema.parse(JSON.parse(JSON.stringify(registration)));
    expect((parsed.report as { walk_forward: { folds: unknown[] } }).walk_forward.folds).toHaveLength(6);
  });
});

describe("trainSymbol with an until that leaves too little history for the folds", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp({}, undefined, { trainingPlan: { families: ["ridge"] } });
  });
  afterAll(() => t.cleanup());

  it("is the caller's 400 invalid_request, though the train/validation/test split alone would fit", async () => {
    // BTC 2014-09-17 .. 2016-03-31: ~500 rows split fine, but six quarters back from Q1 2016 reach before the data.
    const bars = barsUntil(btc, "2016-03-31");
    expect(featureMatrix(bars, 1).X.length).toBeGreaterThan(400);
    await expect(
      trainSymbol({
        symbol: "BTC",
        trainer: trainForecaster,
        market: createCsvMarketData({ dir: MARKET_DATA }),
        registry: t.app.registry,
        plan: { families: ["ridge"] },
        until: UntilSchema.parse("2016-03-31"),
      }),
    ).rejects.toThrow(
      expect.objectContaining({
        code: "invalid_request",
        message: expect.stringMatching(/pass a later until/),
      }),
    );
  });
});
