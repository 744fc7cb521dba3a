import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppDeps, createApp } from "../../src/app.js";
import { EdgeMLError } from "../../src/errors.js";
import { trainSymbol } from "../../src/forecast/training.js";
import type { Logger } from "../../src/logger.js";
import { nodeDeps } from "../../src/runtime/node/deps.js";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { sqlitePredictionLogAt } from "../../src/storage/node/sqlite-prediction-log.js";
import type { PredictionLog } from "../../src/storage/prediction-log.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { postJson, type TestApp, testApp } from "../support/app.js";
import { tempDir } from "../support/paths.js";

/** Side effects handed to waitUntil, awaited by the tests: what is recorded is known without waiting on a clock. */
function deferred() {
  const pending: Promise<unknown>[] = [];
  return {
    waitUntil: (work: Promise<unknown>) => {
      pending.push(work);
    },
    settled: async () => {
      await Promise.all(pending.splice(0));
    },
  };
}

/**
 * The clock of the suite's live forecasts: inside the shipped data (its last bar closes 2026-03-28T00:00Z), so that
 * they are current forecasts, recorded as live, and not 503 market_data_stale.
 */
const LIVE_NOW = new Date("2026-03-27T06:00:00Z");

/** An app on the suite's trained models with a cache and a log of its own. */
function appWith(t: TestApp, overrides: Partial<AppDeps>) {
  const app = createApp({ ...t.deps, cache: createMemoryCache(), now: () => LIVE_NOW, ...overrides });
  const call = { request: async (path: string, init?: RequestInit) => app.app.request(path, init) };
  return {
    app,
    serve: (body: unknown) => postJson(call, "/api/ml/serve", body),
    batch: (body: unknown) => postJson(call, "/api/ml/batch", body),
  };
}

describe("the prediction log: every forecast served is recorded off the response path", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
    for (const symbol of ["BTC", "ETH"]) {
      await trainSymbol({
        trainer: trainForecaster,
        symbol,
        market: t.deps.market,
        registry: t.app.registry,
      });
    }
  }, 300_000);
  afterAll(() => t.cleanup());

  it("a served forecast is recorded with its fields, how its version was chosen and source live", async () => {
    const log = createMemoryPredictionLog();
    const work = deferred();
    const { serve } = appWith(t, { predictionLog: log, waitUntil: work.waitUntil });
    const res = await serve({ symbol: "BTC", horizon: "24h" });
    expect(res.status).toBe(200);
    const body = await res.json();
    await work.settled();
    const { items } = await log.list("BTC-24h");
    expect(items).toEqual([
      {
        prediction_id: body.prediction_id,
        model: "BTC-24h",
        version: body.model_version,
        symbol: "BTC",
        horizon: "24h",
        as_of: body.as_of,
        target_time: body.target_time,
        last_close: body.last_close,
        predicted_price: body.predicted_price,
        predicted_log_return: body.predicted_log_return,
        served_at: expect.any(String),
        chosen_via: (await t.app.registry.resolve("BTC-24h")).via,
        source: "live",
      },
    ]);
  });

  it("a cached answer carries the same prediction id and adds no record", async () => {
    const log = createMemoryPredictionLog();
    const work = deferred();
    const { serve } = appWith(t, { predictionLog: log, waitUntil: work.waitUntil });
    const first = await (await serve({ symbol: "BTC" })).json();
    await work.settled();
    const again = await serve({ symbol: "BTC" });
    expect(again.headers.get("x-cache")).toBe("HIT");
    expect((await again.json()).prediction_id).toBe(first.prediction_id);
    await work.settled();
    const { items } = await log.list("BTC-24h");
    expect(items.map((r) => r.prediction_id)).toEqual([first.prediction_id]);
  });

  it("a batch records each symbol's forecast", async () => {
    const log = createMemoryPredictionLog();
    const work = deferred();
    const { batch } = appWith(t, { predictionLog: log, waitUntil: work.waitUntil });
    const res = await batch({ symbols: ["BTC", "ETH"] });
    expect(res.status).toBe(200);
    const text = await res.text();
    await work.settled();
    for (const symbol of ["BTC", "ETH"]) {
      const { items } = await log.list(`${symbol}-24h`);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ symbol, source: "live" });
      expect(text).toContain(items[0]?.prediction_id);
    }
  });

  it("a log whose writes fail changes nothing in the answer, and the outage is warned about once", async () => {
    const healthy = appWith(t, {});
    const expected = await (await healthy.serve({ symbol: "BTC" })).json();

    const warnings: string[] = [];
    const logger: Logger = { info: () => {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
    const broken: PredictionLog = {
      ...createMemoryPredictionLog(),
      kind: "broken",
      record: async () => {
        throw new EdgeMLError("not_ready", "the prediction log is unavailable (injected)");
      },
    };
    const work = deferred();
    const { serve } = appWith(t, { predictionLog: broken, logger, waitUntil: work.waitUntil });
    const res = await serve({ symbol: "BTC" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-cache")).toBe("MISS");
    const body = await res.json();
    expect(body).toEqual({ ...expected, prediction_id: body.prediction_id, created_at: body.created_at });
    const again = await serve({ symbol: "BTC" });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ ...body, cached: true });
    await work.settled();
    expect(warnings.filter((w) => w.includes("prediction log"))).toEqual([
      "prediction log (broken) unavailable; forecasts are served but not recorded; further failures are counted until it recovers",
    ]);
  });

  it("npm start's SQLite log (PREDICTION_LOG_FILE) keeps a forecast across a restart", async () => {
    const dir = await tempDir();
    try {
      const file = join(dir.path, "data", "predictions.sqlite");
      const env = { MODELS_DIR: join(dir.path, "models"), PREDICTION_LOG_FILE: file };
      const before = nodeDeps(env).predictionLog;
      expect(before?.kind).toBe("sqlite");
      const work = deferred();
      const first = appWith(t, { predictionLog: before, waitUntil: work.waitUntil });
      const body = await (await first.serve({ symbol: "BTC" })).json();
      await work.settled();
      expect(existsSync(file)).toBe(true);

      // A new process: a fresh app on a fresh connection to the same file.
      const restarted = appWith(t, { predictionLog: sqlitePredictionLogAt(file) });
      const { items } = await restarted.app.services.predictionLog.list("BTC-24h");
      expect(items).toMatchObject([
        { prediction_id: body.prediction_id, version: body.model_version, source: "live" },
      ]);
    } finally {
      await dir.cleanup();
    }
  });
});
