import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppDeps, createApp } from "../../src/app.js";
import { createForecaster } from "../../src/forecast/service.js";
import { trainSymbol } from "../../src/forecast/training.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { MarketDataSource } from "../../src/market/types.js";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { ADMIN_TOKEN, postJson, type TestApp, testApp } from "../support/app.js";
import { MARKET_DATA } from "../support/paths.js";

const DAY = 86_400_000;
const iso = (text: string) => new Date(text).toISOString();

/** The shipped BTC daily closes by bar open date, read here independently of the CSV source. */
async function btcCloses(): Promise<Map<string, number>> {
  const lines = (await readFile(join(MARKET_DATA, "BTC-USD_1d.csv"), "utf8")).trim().split("\n").slice(1);
  return new Map(lines.map((line) => line.split(",")).map((c) => [c[0] as string, Number(c[4])]));
}

/**
 * An app over the suite's trained models with a clock, a cache and a prediction log of its own; side effects
 * (cache and log writes) are handed to waitUntil and awaited by `settled`, so what was recorded is known without
 * waiting on a timer.
 */
function appAt(t: TestApp, clock: { now: number }, overrides: Partial<AppDeps> = {}) {
  const pending: Promise<unknown>[] = [];
  const predictionLog = createMemoryPredictionLog();
  const app = createApp({
    ...t.deps,
    cache: createMemoryCache(),
    predictionLog,
    now: () => new Date(clock.now),
    waitUntil: (work) => {
      pending.push(work);
    },
    ...overrides,
  });
  const call = { request: async (path: string, init?: RequestInit) => app.app.request(path, init) };
  return {
    app,
    predictionLog,
    serve: (body: unknown) => postJson(call, "/api/ml/serve", body),
    batch: (body: unknown) => postJson(call, "/api/ml/batch", body),
    get: (path: string) => app.app.request(path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
    settled: async () => {
      while (pending.length > 0) await Promise.all(pending.splice(0));
    },
  };
}

/** The CSV source with the bars closing after `published()` withheld: a source that publishes late. */
function lagging(published: () => number): MarketDataSource {
  const csv = createCsvMarketData({ dir: MARKET_DATA });
  return {
    name: "lagging csv",
    getBars: (symbol, interval, options = {}) =>
      csv.getBars(symbol, interval, {
        ...options,
        end: new Date(Math.min(options.end?.getTime() ?? published(), published())),
      }),
  };
}

describe("honest forecasts: as_of, data_age_seconds, family and market_data_stale", () => {
  let t: TestApp;
  let closes: Map<string, number>;
  /** The family of the version that serves each symbol (whichever the selection policy chose). */
  const family: Record<string, string | null> = {};
  beforeAll(async () => {
    t = await testApp();
    for (const symbol of ["BTC", "ETH"]) {
      await trainSymbol({
        trainer: trainForecaster,
        symbol,
        market: t.deps.market,
        registry: t.app.registry,
        plan: { families: ["ridge"] },
      });
    }
    closes = await btcCloses();
    for (const symbol of ["BTC", "ETH"]) {
      family[symbol] = (await t.app.registry.resolve(`${symbol}-24h`)).meta.tags.family ?? null;
    }
    expect(family.BTC).toEqual(expect.any(String));
  }, 300_000);
  afterAll(() => t.cleanup());

  describe("as_of: a date is 00:00Z that day; any other instant floors to the last bar closed by then", () => {
    it.each([
      ["a date", "2026-03-20", "2026-03-20T00:00:00.000Z"],
      ["midnight exactly", "2026-03-20T00:00:00Z", "2026-03-20T00:00:00.000Z"],
      ["a millisecond after midnight", "2026-03-20T00:00:00.001Z", "2026-03-20T00:00:00.000Z"],
      ["a millisecond before midnight", "2026-03-19T23:59:59.999Z", "2026-03-19T00:00:00.000Z"],
      ["an instant in minutes", "2026-03-20T12:34Z", "2026-03-20T00:00:00.000Z"],
      ["an instant with an offset (23:30Z)", "2026-03-21T01:30:00+02:00", "2026-03-20T00:00:00.000Z"],
      ["the last bar of the data", "2026-03-28", "2026-03-28T00:00:00.000Z"],
    ])("%s: %s → as_of %s", async (_label, asOf, expected) => {
      const app = appAt(t, { now: Date.parse("2026-12-01T02:00:00Z") });
      const res = await app.serve({ symbol: "BTC", as_of: asOf });
      expect(res.status, await res.clone().text()).toBe(200);
      const body = await res.json();
      const lastBar = new Date(Date.parse(expected) - DAY).toISOString().slice(0, 10);
      expect(body).toMatchObject({
        as_of: expected,
        target_time: new Date(Date.parse(expected) + DAY).toISOString(),
        last_close: closes.get(lastBar),
        family: family.BTC,
      });
      // A response's as_of sent back names the same bar: the same forecast.
      const again = await (await app.serve({ symbol: "BTC", as_of: body.as_of })).json();
      expect(again).toMatchObject({
        as_of: expected,
        prediction_id: body.prediction_id,
        predicted_log_return: body.predicted_log_return,
        cached: true,
      });
    });

    it.each([
      ["not a date", "yesterday"],
      ["a date that does not exist", "2026-02-30"],
      ["an instant without its zone", "2026-03-20T12:00:00"],
      ["a number", 20260320],
    ])("%s is 400 invalid_request", async (_label, asOf) => {
      const res = await appAt(t, { now: Date.parse("2026-12-01T02:00:00Z") }).serve({
        symbol: "BTC",
        as_of: asOf,
      });
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe("invalid_request");
    });

    it("in the future is 400, naming the server's now", async () => {
      const app = appAt(t, { now: Date.parse("2026-03-20T12:00:00Z") });
      const res = await app.serve({ symbol: "BTC", as_of: "2026-03-20T12:00:00.001Z" });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        code: "invalid_request",
        error: expect.stringContaining("in the future (now is 2026-03-20T12:00:00.000Z)"),
      });
      // The present instant itself has passed: served.
      expect((await app.serve({ symbol: "BTC", as_of: "2026-03-20T12:00:00Z" })).status).toBe(200);
    });

    it("before the source has enough bars for the features is 503, naming the earliest as_of it can serve", async () => {
      const app = appAt(t, { now: Date.parse("2026-12-01T02:00:00Z") });
      // BTC starts 2014-09-17: its 61st bar (MIN_HISTORY) closes at 2014-11-17T00:00Z.
      const early = await app.serve({ symbol: "BTC", as_of: "2014-11-16T23:59:59Z" });
      expect(early.status).toBe(503);
      expect(await early.json()).toMatchObject({
        code: "market_data_unavailable",
        error: expect.stringContaining("the earliest as_of it can serve is 2014-11-17"),
      });
      expect((await app.serve({ symbol: "BTC", as_of: "2014-11-17" })).status).toBe(200);
    });

    it("after the source's last bar is 503, naming that bar: never an older forecast passed off as the one asked", async () => {
      const app = appAt(t, { now: Date.parse("2026-12-01T02:00:00Z") });
      const res = await app.serve({ symbol: "BTC", as_of: "2026-06-01" });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({
        code: "market_data_unavailable",
        error: expect.stringContaining("ask for an as_of at or before 2026-03-28"),
      });
    });

    it("is exactly the forecast a live request made at that instant, logged as replay (the live one as live)", async () => {
      const clock = { now: Date.parse("2026-03-20T05:00:00Z") };
      const app = appAt(t, clock);
      const live = await (await app.serve({ symbol: "BTC" })).json();
      clock.now = Date.parse("2026-12-01T02:00:00Z");
      const replayed = await app.serve({ symbol: "BTC", as_of: "2026-03-20T05:00:00Z" });
      // Not the live answer from the cache: a replay is a record of its own.
      expect(replayed.headers.get("x-cache")).toBe("MISS");
      const replay = await replayed.json();
      expect(replay).toMatchObject({
        as_of: live.as_of,
        target_time: live.target_time,
        last_close: live.last_close,
        predicted_log_return: live.predicted_log_return,
        predicted_price: live.predicted_price,
        model_version: live.model_version,
      });
      expect(replay.prediction_id).not.toBe(live.prediction_id);
      // The other way round: a live request at that bar does not get the replay's record either.
      clock.now = Date.parse("2026-03-20T06:00:00Z");
      const liveAgain = await app.serve({ symbol: "BTC" });
      expect(liveAgain.headers.get("x-cache")).toBe("HIT");
      expect((await liveAgain.json()).prediction_id).toBe(live.prediction_id);
      await app.settled();
      const { items } = await app.predictionLog.list("BTC-24h");
      expect(items.map((r) => [r.prediction_id, r.source]).sort()).toEqual(
        [
          [live.prediction_id, "live"],
          [replay.prediction_id, "replay"],
        ].sort(),
      );
    });

    it("replayed forecasts are resolved against the CSV close on the next performance read (?source=replay)", async () => {
      const app = appAt(t, { now: Date.parse("2026-12-01T02:00:00Z") });
      const asOfs = ["2026-03-19", "2026-03-20", "2026-03-21"];
      const served = [];
      for (const as_of of asOfs) served.push(await (await app.serve({ symbol: "BTC", as_of })).json());
      await app.settled();
      const summary = await (await app.get("/api/ml/performance/BTC?source=replay")).json();
      expect(summary).toMatchObject({ source: "replay", predictions: 3, resolved: 3 });
      const live = await (await app.get("/api/ml/performance/BTC?source=live")).json();
      expect(live).toMatchObject({ source: "live", predictions: 0 });
      const { items } = await app.predictionLog.list("BTC-24h");
      for (const forecast of served) {
        const record = items.find((r) => r.prediction_id === forecast.prediction_id);
        // The bar that closes at the target time opened the day of as_of.
        const actual = closes.get(forecast.as_of.slice(0, 10));
        expect(record).toMatchObject({
          source: "replay",
          actual_price: actual,
          actual_time: forecast.target_time,
          error_pct: expect.closeTo(
            (100 * (forecast.predicted_price - (actual as number))) / (actual as number),
            9,
          ),
        });
      }
    });
  });

  describe("data_age_seconds and family", () => {
    it("is now − as_of exactly, and grows on a cached answer", async () => {
      const clock = { now: Date.parse("2026-03-20T05:30:00.250Z") };
      const app = appAt(t, clock);
      const first = await (await app.serve({ symbol: "BTC" })).json();
      expect(first).toMatchObject({
        as_of: iso("2026-03-20"),
        data_age_seconds: 19_800.25,
        family: family.BTC,
      });
      clock.now += 1_000;
      const cached = await app.serve({ symbol: "BTC" });
      expect(cached.headers.get("x-cache")).toBe("HIT");
      expect(await cached.json()).toMatchObject({
        prediction_id: first.prediction_id,
        data_age_seconds: 19_801.25,
      });
      const replay = await (await app.serve({ symbol: "BTC", as_of: "2026-03-01" })).json();
      expect(replay.data_age_seconds).toBe((clock.now - Date.parse("2026-03-01T00:00:00Z")) / 1000);
    });

    it("is in every batch item", async () => {
      const app = appAt(t, { now: Date.parse("2026-03-20T00:00:10Z") });
      const body = await (await app.batch({ symbols: ["BTC", "ETH"] })).json();
      for (const item of body.results) {
        expect(item.forecast).toMatchObject({ data_age_seconds: 10, family: family[item.symbol] });
      }
    });

    it("family is null for a version whose metadata names none", async () => {
      const stub = {
        ...t.app.registry,
        resolve: async (...args: Parameters<typeof t.app.registry.resolve>) => {
          const resolved = await t.app.registry.resolve(...args);
          const { family: _family, ...tags } = resolved.meta.tags;
          return { ...resolved, meta: { ...resolved.meta, tags } };
        },
      };
      // The suite's registry with the tags removed: the forecaster maps what the metadata says, nothing else.
      const forecaster = createForecaster({
        registry: stub,
        market: t.deps.market,
        cache: createMemoryCache(),
        cacheTtlMs: 60_000,
        timeoutMs: 30_000,
        defer: () => {},
        warn: () => {},
        usage: t.app.services.usage,
        predictionLog: createMemoryPredictionLog(),
        staleGraceSeconds: 900,
        now: () => new Date("2026-12-01T00:00:00Z"),
      });
      const { forecast } = await forecaster.forecast("BTC", "24h", { asOf: "2026-03-20" });
      expect(forecast.family).toBeNull();
      // The service checks as_of itself too: a caller past the routes gets the same 400, never local time.
      await expect(forecaster.forecast("BTC", "24h", { asOf: "2026-03-20T12:00:00" })).rejects.toMatchObject({
        code: "invalid_request",
      });
    });
  });

  describe("market_data_stale: a forecast without as_of from a last bar older than one interval + the grace", () => {
    it("on the shipped CSVs months later: 503 naming the last bar and how to ask for a historical forecast", async () => {
      const app = appAt(t, { now: Date.parse("2026-12-01T02:00:00Z") });
      const res = await app.serve({ symbol: "BTC" });
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.code).toBe("market_data_stale");
      expect(body.error).toContain("the 1d bar opened 2026-03-27, which closed at 2026-03-28T00:00:00.000Z");
      expect(body.error).toContain('{"symbol":"BTC","as_of":"2026-03-28"}');
      await app.settled();
      expect((await app.predictionLog.list("BTC-24h")).items).toEqual([]);
    });

    it.each([
      ["within the bar", "2026-03-28T18:00:00Z", 200],
      ["one interval + the grace exactly", "2026-03-29T00:15:00Z", 200],
      ["a millisecond past it", "2026-03-29T00:15:00.001Z", 503],
    ])("last bar closed 2026-03-28T00:00Z, now %s (%s): %i", async (_label, now, status) => {
      const res = await appAt(t, { now: Date.parse(now) }).serve({ symbol: "BTC" });
      expect(res.status).toBe(status);
      if (status === 503) expect((await res.json()).code).toBe("market_data_stale");
    });

    it("honours MARKET_STALE_GRACE_SECONDS (staleGraceSeconds)", async () => {
      const app = appAt(
        t,
        { now: Date.parse("2026-03-29T00:15:00.001Z") },
        { config: { ...t.deps.config, staleGraceSeconds: 3_600 } },
      );
      expect((await app.serve({ symbol: "BTC" })).status).toBe(200);
    });

    it("a cached answer never serves stale: past the grace it is recomputed, whatever the TTL", async () => {
      // The bar closing 2026-03-27T00:00Z is published late: at 00:22.
      let published = Date.parse("2026-03-26T00:00:00Z");
      const clock = { now: Date.parse("2026-03-27T00:10:00Z") };
      const app = appAt(t, clock, {
        market: lagging(() => published),
        config: { ...t.deps.config, cacheTtlMs: 30 * DAY },
      });
      const lagged = await app.serve({ symbol: "BTC" });
      expect(lagged.status).toBe(200);
      expect(await lagged.json()).toMatchObject({ as_of: iso("2026-03-26"), data_age_seconds: 86_400 + 600 });
      clock.now = Date.parse("2026-03-27T00:20:00Z");
      const stale = await app.serve({ symbol: "BTC" });
      expect(stale.status).toBe(503);
      expect((await stale.json()).code).toBe("market_data_stale");
      published = Date.parse("2026-03-27T00:22:00Z");
      clock.now = Date.parse("2026-03-27T00:25:00Z");
      const fresh = await app.serve({ symbol: "BTC" });
      expect(fresh.headers.get("x-cache")).toBe("MISS");
      expect(await fresh.json()).toMatchObject({ as_of: iso("2026-03-27"), data_age_seconds: 1_500 });
    });
  });

  describe("POST /api/ml/batch: as_of for every symbol, staleness per item", () => {
    it("as_of before one symbol's history: that item 503, the other served", async () => {
      const app = appAt(t, { now: Date.parse("2026-12-01T02:00:00Z") });
      const res = await app.batch({ symbols: ["BTC", "ETH"], as_of: "2017-12-01" });
      expect(res.status).toBe(200);
      const { results } = await res.json();
      expect(results[0]).toMatchObject({ symbol: "BTC", ok: true, forecast: { as_of: iso("2017-12-01") } });
      expect(results[1]).toMatchObject({
        symbol: "ETH",
        ok: false,
        error: { code: "market_data_unavailable", status: 503 },
      });
      await app.settled();
      const { items } = await app.predictionLog.list("BTC-24h");
      expect(items.map((r) => r.source)).toEqual(["replay"]);
    });

    it("without as_of, a symbol whose data lags is 503 market_data_stale beside the fresh one", async () => {
      const csv = createCsvMarketData({ dir: MARKET_DATA });
      // ETH's last two bars withheld.
      const market: MarketDataSource = {
        name: "csv",
        getBars: (symbol, interval, options = {}) =>
          symbol === "ETH"
            ? csv.getBars(symbol, interval, {
                ...options,
                end: new Date((options.end?.getTime() ?? Date.now()) - 2 * DAY),
              })
            : csv.getBars(symbol, interval, options),
      };
      const app = appAt(t, { now: Date.parse("2026-03-20T08:00:00Z") }, { market });
      const { results } = await (await app.batch({ symbols: ["BTC", "ETH"] })).json();
      expect(results[0]).toMatchObject({ symbol: "BTC", ok: true });
      expect(results[1]).toMatchObject({
        symbol: "ETH",
        ok: false,
        error: {
          code: "market_data_stale",
          status: 503,
          message: expect.stringContaining('"as_of":"2026-03-18"'),
        },
      });
    });

    it("a future as_of is 400 for the whole request", async () => {
      const app = appAt(t, { now: Date.parse("2026-03-20T08:00:00Z") });
      const res = await app.batch({ symbols: ["BTC", "ETH"], as_of: "2026-03-21" });
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe("invalid_request");
    });
  });
});
