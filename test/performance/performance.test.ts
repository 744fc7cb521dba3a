import { cp } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App, type AppDeps, createApp } from "../../src/app.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { Bar, MarketDataSource } from "../../src/market/types.js";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { openSqlitePredictionLog } from "../../src/storage/node/sqlite-prediction-log.js";
import type { PredictionLog, PredictionRecord } from "../../src/storage/prediction-log.js";
import { createUpstashCache } from "../../src/storage/upstash-cache.js";
import { createUpstashPredictionLog } from "../../src/storage/upstash-prediction-log.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "../storage/support/upstash.js";
import { ADMIN_TOKEN, testEngine } from "../support/app.js";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

const upstash = useLocalUpstash();

/** The stores under test: every prediction-log adapter, with the cache it is deployed with. */
const STORES: [string, (dir: string) => Pick<AppDeps, "predictionLog" | "cache">][] = [
  ["process memory", () => ({ predictionLog: createMemoryPredictionLog(), cache: createMemoryCache() })],
  [
    "node:sqlite",
    (dir) => ({
      predictionLog: openSqlitePredictionLog(join(dir, "predictions.sqlite")),
      cache: createMemoryCache(),
    }),
  ],
  [
    "Upstash Redis",
    () => {
      const options = { prefix: upstash.freshPrefix(), timeoutMs: TEST_STORE_TIMEOUT_MS };
      return {
        predictionLog: createUpstashPredictionLog(upstash.client(), options),
        cache: createUpstashCache(upstash.client(), options),
      };
    },
  ],
];

const DAY = 86_400_000;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The CSV source, counting its calls: how a test sees what a request cost the market. */
function countingMarket(): MarketDataSource & { calls: number } {
  const csv = createCsvMarketData({ dir: MARKET_DATA });
  const market = {
    name: csv.name,
    calls: 0,
    getBars(...args: Parameters<MarketDataSource["getBars"]>) {
      market.calls += 1;
      return csv.getBars(...args);
    },
  };
  return market;
}

/** The shipped models (a copy), the CSVs as the market, an injected clock, and side effects the test can await. */
async function performanceApp(stores: (dir: string) => Pick<AppDeps, "predictionLog" | "cache">) {
  const dir = await tempDir();
  await cp(join(REPO_ROOT, "models"), join(dir.path, "models"), { recursive: true });
  const clock = { now: new Date("2026-03-01T00:05:00Z") };
  const pending: Promise<unknown>[] = [];
  const market = countingMarket();
  const { predictionLog, cache } = stores(dir.path);
  const app: App = createApp({
    artifacts: createFsArtifactStore(join(dir.path, "models")),
    pointers: createJsonFilePointerStore(join(dir.path, "pointers.json")),
    engine: testEngine(),
    market,
    cache,
    predictionLog,
    config: { adminToken: ADMIN_TOKEN },
    logger: silentLogger,
    now: () => clock.now,
    waitUntil: (work) => {
      pending.push(work);
    },
  });
  const request = (path: string, init: RequestInit = {}) => app.app.request(path, init);
  const admin = (path: string, init: RequestInit = {}) =>
    request(path, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...init.headers } });
  const post = (path: string, body: unknown, auth = true) =>
    (auth ? admin : request)(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  return {
    app,
    clock,
    market,
    log: predictionLog as PredictionLog,
    request,
    admin,
    post,
    settled: async () => {
      await Promise.all(pending.splice(0));
    },
    cleanup: dir.cleanup,
  };
}
type PerfApp = Awaited<ReturnType<typeof performanceApp>>;

/** Every record of a model through the admin listing, following next_cursor. */
async function listing(t: PerfApp, query = ""): Promise<PredictionRecord[]> {
  const items: PredictionRecord[] = [];
  let cursor = "";
  do {
    const res = await t.admin(`/api/ml/performance/BTC/predictions?limit=7${query}${cursor}`);
    expect(res.status).toBe(200);
    const page = await res.json();
    items.push(...page.items);
    cursor = page.next_cursor ? `&cursor=${page.next_cursor}` : "";
  } while (cursor);
  return items;
}

describe.each(STORES)(
  "performance on %s: live forecasts resolved against the market, figures computed from the log",
  (_store, stores) => {
    let t: PerfApp;
    let closes: Map<number, Bar>;
    const served: { prediction_id: string; as_of: string; target_time: string }[] = [];

    beforeAll(async () => {
      t = await performanceApp(stores);
      const bars = await createCsvMarketData({ dir: MARKET_DATA }).getBars("BTC", "1d");
      closes = new Map(bars.map((bar) => [bar.time + DAY, bar]));
      // One forecast a day, from 2026-03-01 to 2026-03-28 (the CSV's last row is dated 2026-03-27).
      for (
        let day = Date.parse("2026-03-01T00:05:00Z");
        day <= Date.parse("2026-03-28T00:05:00Z");
        day += DAY
      ) {
        t.clock.now = new Date(day);
        const res = await t.post("/api/ml/serve", { symbol: "BTC" }, false);
        expect(res.status, await res.clone().text()).toBe(200);
        served.push(await res.json());
      }
      await t.settled();
    }, 120_000);
    afterAll(() => t.cleanup());

    it("counts every forecast served, unresolved until its target time has passed", async () => {
      t.clock.now = new Date("2026-03-01T12:00:00Z");
      const res = await t.request("/api/ml/performance/BTC");
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({ model: "BTC-24h", source: "live", predictions: 28 });
      // Only the first forecast (target 2026-03-02T00:00) could be due; at noon on 03-01 none is.
      expect(body.resolved).toBe(0);
      expect(body.mape).toBeNull();
      expect(body.skill).toBeNull();
      expect(body.resolution).toMatchObject({ pending: 0, open: 28 });
    });

    it("resolves what is due on a read: the actual is the CSV close of the bar closing at target_time", async () => {
      t.clock.now = new Date("2026-04-10T00:00:00Z");
      const body = await (await t.request("/api/ml/performance/BTC-24h")).json();
      // The forecast as of 2026-03-28 targets the close of the row dated 2026-03-28: not in the CSV.
      expect(body.predictions).toBe(28);
      expect(body.resolved).toBe(27);
      expect(body.resolution).toMatchObject({ pending: 1, open: 0 });
      expect(body.resolution.last_run).toMatchObject({ resolved: 27, pending: 1 });
      const items = await listing(t);
      expect(items).toHaveLength(28);
      for (const item of items) {
        const bar = closes.get(Date.parse(item.target_time));
        if (!bar) {
          expect(item.target_time).toBe("2026-03-29T00:00:00.000Z");
          expect(item.actual_price).toBeUndefined();
          continue;
        }
        // The bar that closes at target_time is the row dated target_time − 1 day.
        expect(new Date(bar.time).toISOString()).toBe(
          new Date(Date.parse(item.target_time) - DAY).toISOString(),
        );
        expect(item.actual_price).toBe(bar.close);
        expect(item.actual_time).toBe(item.target_time);
        expect(item.error_pct).toBeCloseTo((100 * (item.predicted_price - bar.close)) / bar.close, 12);
        expect(item.naive_error_pct).toBeCloseTo((100 * (item.last_close - bar.close)) / bar.close, 12);
      }
    });

    it("the figures equal a recomputation from the listing, for the model, each window and each version", async () => {
      const body = await (await t.request("/api/ml/performance/BTC")).json();
      const items = await listing(t);
      const figures = (records: PredictionRecord[], from: number) => {
        const inWindow = records.filter((r) => Date.parse(r.target_time) > from);
        const resolved = inWindow.filter((r) => r.actual_price !== undefined);
        const mape = mean(resolved.map((r) => Math.abs(r.error_pct as number)));
        const naive = mean(resolved.map((r) => Math.abs(r.naive_error_pct as number)));
        return {
          predictions: inWindow.length,
          resolved: resolved.length,
          mape,
          naive_mape: naive,
          avg_error_pct: mape,
          skill: 1 - mape / naive,
          direction_accuracy: resolved.filter((r) => r.direction_hit).length / resolved.length,
        };
      };
      const close = (actual: Record<string, unknown>, expected: Record<string, number>) => {
        for (const [key, value] of Object.entries(expected)) {
          if (Number.isNaN(value)) expect(actual[key], key).toBeNull();
          else expect(actual[key], key).toBeCloseTo(value, 10);
        }
      };
      const now = Date.parse("2026-04-10T00:00:00Z");
      close(body, figures(items, Number.NEGATIVE_INFINITY));
      close(body.windows.all, figures(items, Number.NEGATIVE_INFINITY));
      close(body.windows["30d"], figures(items, now - 30 * DAY));
      close(body.windows["7d"], { predictions: 0, resolved: 0 });
      expect(body.windows["7d"].mape).toBeNull();
      for (const v of body.versions) {
        close(
          v.windows.all,
          figures(
            items.filter((r) => r.version === v.version),
            Number.NEGATIVE_INFINITY,
          ),
        );
      }
      expect(body.versions.map((v: { version: string }) => v.version)).toEqual([
        ...new Set(items.map((r) => r.version)),
      ]);
    });

    it("resolves at most once per model per minute, whatever the number of reads", async () => {
      const before = t.market.calls;
      for (let i = 0; i < 5; i++) await t.request("/api/ml/performance/BTC");
      await t.request("/api/ml/performance/BTC/series");
      expect(t.market.calls).toBe(before);
      // A minute later the one pending forecast is tried again: one market call.
      t.clock.now = new Date(t.clock.now.getTime() + 60_000);
      await Promise.all([t.request("/api/ml/performance/BTC"), t.request("/api/ml/performance/BTC")]);
      expect(t.market.calls).toBe(before + 1);
    });

    it("the series has every resolved forecast, oldest first, and rolling skill at each target time", async () => {
      const body = await (await t.request("/api/ml/performance/BTC/series")).json();
      const resolved = (await listing(t, "&resolved=true")).reverse();
      expect(body.points).toEqual(
        resolved.map(
          ({ prediction_id, version, as_of, target_time, last_close, predicted_price, actual_price }) => ({
            prediction_id,
            version,
            as_of,
            target_time,
            last_close,
            predicted_price,
            actual_price,
          }),
        ),
      );
      expect(body.skill).toHaveLength(27);
      const last = body.skill.at(-1);
      const window = resolved.filter(
        (r) => Date.parse(r.target_time) > Date.parse(last.target_time) - 30 * DAY,
      );
      const mape = mean(window.map((r) => Math.abs(r.error_pct as number)));
      const naive = mean(window.map((r) => Math.abs(r.naive_error_pct as number)));
      expect(last.skill).toBeCloseTo(1 - mape / naive, 10);
      expect(last.resolved).toBe(window.length);
      const limited = await (await t.request("/api/ml/performance/BTC/series?limit=5")).json();
      expect(limited.points).toEqual(body.points.slice(-5));
    });

    it("keeps sources apart: backfill figures are empty while only live forecasts exist", async () => {
      const body = await (await t.request("/api/ml/performance/BTC?source=backfill")).json();
      expect(body).toMatchObject({
        source: "backfill",
        predictions: 0,
        resolved: 0,
        mape: null,
        skill: null,
      });
      const live = await listing(t, "&source=live");
      expect(live).toHaveLength(28);
    });

    it("stores a manual report beside the market outcome, never over it", async () => {
      const [item] = await listing(t, "&resolved=true");
      const target = item as PredictionRecord;
      const res = await t.post("/api/ml/performance/track", {
        model_id: "BTC",
        prediction_id: target.prediction_id,
        predicted_value: target.predicted_price,
        actual_value: 1,
      });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.records).toHaveLength(1);
      expect(body.records[0]).toMatchObject({
        actual_price: target.actual_price,
        manual: { predicted_value: target.predicted_price, actual_value: 1 },
      });
      const again = await listing(t, "&resolved=true");
      expect(again.find((r) => r.prediction_id === target.prediction_id)?.actual_price).toBe(
        target.actual_price,
      );
    });

    it.each([
      ["an unknown prediction id", { prediction_id: "nope" }, 404, "prediction_not_found"],
      ["an unknown model", { model_id: "DOGE" }, 404, "model_not_found"],
      ["a missing value", { actual_value: undefined }, 400, "invalid_request"],
      ["a value that is not a number", { predicted_value: "1" }, 400, "invalid_request"],
      ["a model id that is a path", { model_id: "../BTC" }, 400, "invalid_request"],
    ])("track with %s answers %i", async (_case, patch, status, code) => {
      const body = { model_id: "BTC", prediction_id: "x", predicted_value: 1, actual_value: 2, ...patch };
      const res = await t.post("/api/ml/performance/track", body);
      expect(res.status).toBe(status);
      expect((await res.json()).code).toBe(code);
    });

    it.each([
      ["GET", "/api/ml/performance/BTC/predictions"],
      ["POST", "/api/ml/performance/track"],
    ])("%s %s is admin: 401 without the token", async (method, path) => {
      const res = await t.request(path, {
        method,
        headers: { "content-type": "application/json" },
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      expect(res.status).toBe(401);
    });

    it.each([
      ["/api/ml/performance/DOGE", 404, "model_not_found"],
      ["/api/ml/performance/BTC-1h", 404, "model_not_found"],
      ["/api/ml/performance/BTC?source=everything", 400, "invalid_request"],
      ["/api/ml/performance/BTC/series?limit=0", 400, "invalid_request"],
      ["/api/ml/performance/BTC/series?limit=100000", 400, "invalid_request"],
      ["/api/ml/performance/constructor", 404, "model_not_found"],
      ["/api/ml/performance/__proto__", 400, "invalid_request"],
    ])("GET %s answers %i", async (path, status, code) => {
      const res = await t.request(path);
      expect(res.status).toBe(status);
      expect((await res.json()).code).toBe(code);
    });

    it.each([
      ["?resolved=maybe", 400],
      ["?from=yesterday", 400],
      ["?limit=5000", 400],
      ["?cursor=garbage", 400],
      ["?source=live&resolved=false", 200],
    ])("the listing with %s answers %i", async (query, status) => {
      expect((await t.admin(`/api/ml/performance/BTC/predictions${query}`)).status).toBe(status);
    });

    it("a backfill over the CSVs' last 60 days: every forecast resolved to the CSV close, figures equal the listing's", async () => {
      for (const version of ["1", "2"]) {
        const res = await t.post("/api/ml/models/BTC-24h/backfill", {
          from: "2026-01-27",
          to: "2026-03-27",
          version,
        });
        expect(res.status, await res.clone().text()).toBe(200);
        expect(await res.json()).toMatchObject({ forecasts: 60, resolved: 60, unresolved: 0 });
      }
      const items = await listing(t, "&source=backfill");
      expect(items).toHaveLength(120);
      for (const item of items) {
        expect(item.source).toBe("backfill");
        expect(item.actual_price).toBe(closes.get(Date.parse(item.target_time))?.close);
      }
      const body = await (await t.request("/api/ml/performance/BTC?source=backfill")).json();
      // Backfill windows end at the latest resolved target, not now.
      expect(body.window_end).toBe("2026-03-28T00:00:00.000Z");
      const recompute = (records: PredictionRecord[]) => {
        const mape = mean(records.map((r) => Math.abs(r.error_pct as number)));
        const naive = mean(records.map((r) => Math.abs(r.naive_error_pct as number)));
        return {
          resolved: records.length,
          mape,
          naive_mape: naive,
          avg_error_pct: mape,
          skill: 1 - mape / naive,
        };
      };
      const expectClose = (actual: Record<string, number>, expected: Record<string, number>) => {
        for (const [key, value] of Object.entries(expected)) expect(actual[key], key).toBeCloseTo(value, 10);
      };
      expectClose(body, recompute(items));
      const last7 = items.filter((r) => Date.parse(r.target_time) > Date.parse("2026-03-21T00:00:00Z"));
      expectClose(body.windows["7d"], recompute(last7));
      for (const version of ["1", "2"]) {
        const entry = body.versions.find((v: { version: string }) => v.version === version);
        expectClose(entry.windows.all, recompute(items.filter((r) => r.version === version)));
      }
      // Never mixed: the live figures are what they were.
      const live = await (await t.request("/api/ml/performance/BTC")).json();
      expect(live).toMatchObject({ source: "live", predictions: 28, resolved: 27 });
    });

    it("a replay (a past as_of) is resolved at once, off the response path, without a performance read", async () => {
      const before = t.market.calls;
      const res = await t.post("/api/ml/serve", { symbol: "BTC", as_of: "2026-03-10" }, false);
      expect(res.status, await res.clone().text()).toBe(200);
      const forecast = await res.json();
      await t.settled();
      const [record] = await t.log.get("BTC-24h", forecast.prediction_id);
      expect(record).toMatchObject({ source: "replay", target_time: "2026-03-11T00:00:00.000Z" });
      expect(record?.actual_price).toBe(closes.get(Date.parse("2026-03-11T00:00:00Z"))?.close);
      // The forecast's bars and the one bar that resolves it: never a walk of the backlog.
      expect(t.market.calls - before).toBe(2);
      // Never counted as live.
      const live = await (await t.request("/api/ml/performance/BTC")).json();
      expect(live.predictions).toBe(28);
    });

    it("filters the listing by version, resolution and target-time range", async () => {
      const all = await listing(t);
      const from = "2026-03-10T00:00:00.000Z";
      const to = "2026-03-20T00:00:00.000Z";
      const ranged = await listing(t, `&from=${from}&to=${to}`);
      expect(ranged).toEqual(all.filter((r) => r.target_time >= from && r.target_time <= to));
      expect(await listing(t, "&resolved=false")).toEqual(all.filter((r) => r.actual_price === undefined));
      const version = all[0]?.version as string;
      expect(await listing(t, `&version=${version}`)).toEqual(all.filter((r) => r.version === version));
    });
  },
);
