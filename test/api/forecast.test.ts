import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.js";
import { trainSymbol } from "../../src/forecast/training.js";
import { createOrtEngine, type InferenceEngine } from "../../src/inference/engine.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { MarketDataSource } from "../../src/market/types.js";
import { createYahooMarketData } from "../../src/market/yahoo.js";
import type { PredictionCache } from "../../src/storage/cache.js";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { ADMIN_TOKEN, postJson, type TestApp, testApp, testEngine, upload } from "../support/app.js";
import { DATA_AS_OF, MARKET_DATA, tempDir } from "../support/paths.js";

/** Counts engine runs, to prove coalescing: the behaviour users pay for, not a timing. */
function countingEngine(): InferenceEngine & { runs: number } {
  const inner = testEngine();
  const engine = { ...inner, runs: 0 };
  engine.run = (request) => {
    engine.runs += 1;
    return inner.run(request);
  };
  return engine;
}

const serve = (t: Pick<TestApp, "request">, body: unknown) => postJson(t, "/api/ml/serve", body);

describe("forecasts: POST /api/ml/serve and /api/ml/batch on real market data", () => {
  let t: TestApp;
  let engine: ReturnType<typeof countingEngine>;
  beforeAll(async () => {
    engine = countingEngine();
    t = await testApp({}, engine);
    // BTC is trained (both families), ETH deliberately not.
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: t.deps.market,
      registry: t.app.registry,
    });
  });
  afterAll(() => t.cleanup());

  it("returns a forecast with its id, model, as-of and target time, and says it was computed", async () => {
    const res = await serve(t, { symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF });
    expect(res.status).toBe(200);
    const body = await res.json();
    const bars = await t.deps.market.getBars("BTC", "1d");
    const last = bars.at(-1);
    expect(body).toMatchObject({
      prediction_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      symbol: "BTC",
      horizon: "24h",
      model_name: "BTC-24h",
      model_version: res.headers.get("x-model-version"),
      as_of: new Date((last?.time ?? 0) + 86_400_000).toISOString(),
      target_time: new Date((last?.time ?? 0) + 2 * 86_400_000).toISOString(),
      last_close: last?.close,
      cached: false,
    });
    expect(body.predicted_price).toBeCloseTo(body.last_close * Math.exp(body.predicted_log_return), 6);
    expect(res.headers.get("x-cache")).toBe("MISS");
  });

  it("the same call within the TTL answers from the cache: x-cache HIT, same prediction", async () => {
    const first = await (await serve(t, { symbol: "btc", horizon: "24h", as_of: DATA_AS_OF })).json();
    const again = await serve(t, { symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF });
    expect(again.headers.get("x-cache")).toBe("HIT");
    const body = await again.json();
    // The same record; only its data age moves with the clock.
    expect(body).toEqual({ ...first, cached: true, data_age_seconds: body.data_age_seconds });
    expect(body.data_age_seconds).toBeGreaterThanOrEqual(first.data_age_seconds);
  });

  it("100 concurrent identical calls run the model once", async () => {
    // An empty cache of its own, so that every call misses whatever adapters the suite runs on.
    const fresh = createApp({ ...t.deps, engine, cache: createMemoryCache() });
    const call = () =>
      postJson({ request: async (p, i) => fresh.app.request(p, i) }, "/api/ml/serve", {
        symbol: "BTC",
        as_of: DATA_AS_OF,
      });
    // Load and verify the version first: its golden rows are engine runs too.
    expect((await fresh.app.request("/v2/models/BTC-24h/ready")).status).toBe(200);
    const before = engine.runs;
    const responses = await Promise.all(Array.from({ length: 100 }, call));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(engine.runs - before).toBe(1);
    const ids = new Set(await Promise.all(responses.map(async (r) => (await r.json()).prediction_id)));
    expect(ids.size).toBe(1);
  });

  it("a promotion serves the new version at once, never the old version's cached answer; so does a rollback", async () => {
    const admin = (path: string, body: unknown) =>
      t.admin(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const { versions } = (await (await t.admin("/api/ml/models/BTC-24h")).json()) as { versions: string[] };
    const [v1, v2] = versions;
    expect((await admin("/api/ml/models/BTC-24h/promote", { version: v1 })).status).toBe(200);
    const a = await serve(t, { symbol: "BTC", as_of: DATA_AS_OF });
    expect(a.headers.get("x-model-version")).toBe(v1);
    await admin("/api/ml/models/BTC-24h/promote", { version: v2 });
    const b = await serve(t, { symbol: "BTC", as_of: DATA_AS_OF });
    expect(b.headers.get("x-model-version")).toBe(v2);
    const bodyA = await a.json();
    const bodyB = await b.json();
    // Whether or not v2 had an answer cached from before, it is v2's own: the cache key carries the version.
    expect(bodyB.model_version).toBe(v2);
    expect(bodyB.predicted_log_return).not.toBe(bodyA.predicted_log_return);
    await admin("/api/ml/models/BTC-24h/rollback", {});
    const c = await serve(t, { symbol: "BTC", as_of: DATA_AS_OF });
    expect(c.headers.get("x-model-version")).toBe(v1);
    expect(await c.json()).toMatchObject({
      model_version: v1,
      predicted_log_return: bodyA.predicted_log_return,
    });
  });

  describe("errors as the users' current service documents them", () => {
    it.each([
      ["an unknown symbol", { symbol: "DOGE", horizon: "24h" }, 400, "unknown_symbol", /supported: BTC, ETH/],
      ["an unknown horizon", { symbol: "BTC", horizon: "7d" }, 400, "unsupported_horizon", /supported: 24h/],
      [
        "a malformed horizon",
        { symbol: "BTC", horizon: "soon" },
        400,
        "unsupported_horizon",
        /supported: 24h/,
      ],
      ["no symbol", { horizon: "24h" }, 400, "invalid_request", /symbol/],
      ["a symbol that is not a string", { symbol: 42 }, 400, "invalid_request", /symbol/],
      ["no model for the symbol", { symbol: "ETH", horizon: "24h" }, 503, "no_model", /npm run train -- ETH/],
    ])("%s", async (_label, body, status, code, message) => {
      const res = await serve(t, body);
      const json = await res.json();
      expect({ status: res.status, code: json.code }).toEqual({ status, code });
      expect(json.error).toMatch(message);
    });

    it.each([
      [
        "a market data directory that does not exist",
        () => createCsvMarketData({ dir: "/nonexistent/market" }),
      ],
      [
        "Yahoo Finance unreachable",
        () =>
          createYahooMarketData({
            fetch: () => Promise.reject(new TypeError("fetch failed")),
            retries: 1,
            backoffMs: 1,
          }),
      ],
      [
        "Yahoo Finance answering 503",
        () =>
          createYahooMarketData({
            fetch: async () => new Response("busy", { status: 503 }),
            retries: 1,
            backoffMs: 1,
          }),
      ],
    ])("market data unavailable: %s → 503 market_data_unavailable", async (_label, market) => {
      const app = createApp({ ...t.deps, cache: createMemoryCache(), market: market() });
      const res = await app.app.request("/api/ml/serve", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF }),
      });
      expect(res.status).toBe(503);
      expect((await res.json()).code).toBe("market_data_unavailable");
    });

    it("market data unavailable: an empty CSV file → 503 market_data_unavailable", async () => {
      const dir = await tempDir();
      try {
        const { writeFile } = await import("node:fs/promises");
        await writeFile(`${dir.path}/BTC-USD_1d.csv`, "");
        const app = createApp({
          ...t.deps,
          cache: createMemoryCache(),
          market: createCsvMarketData({ dir: dir.path }),
        });
        const res = await app.app.request("/api/ml/serve", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ symbol: "BTC", as_of: DATA_AS_OF }),
        });
        expect(res.status).toBe(503);
        expect((await res.json()).code).toBe("market_data_unavailable");
      } finally {
        await dir.cleanup();
      }
    });

    it("market data unavailable: a gap in the recent bars → 503, never features over stretched windows", async () => {
      const csv = createCsvMarketData({ dir: MARKET_DATA });
      const gappy = {
        name: "gappy",
        getBars: async (...args: Parameters<typeof csv.getBars>) =>
          (await csv.getBars(...args)).filter((_, i, all) => i !== all.length - 10),
      };
      const app = createApp({ ...t.deps, cache: createMemoryCache(), market: gappy });
      const res = await app.app.request("/api/ml/serve", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ symbol: "BTC", as_of: DATA_AS_OF }),
      });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({
        code: "market_data_unavailable",
        error: expect.stringContaining("gap"),
      });
    });

    it("a model trained on a feature set this server does not compute is refused", async () => {
      const other = await testApp();
      try {
        await trainSymbol({
          trainer: trainForecaster,
          symbol: "BTC",
          market: other.deps.market,
          registry: other.app.registry,
          plan: { families: ["ridge"] },
        });
        const meta = (await other.app.registry.resolve("BTC-24h")).meta;
        const bytes = await other.deps.artifacts.getModel("BTC-24h", meta.version);
        const {
          name: _n,
          version: _v,
          created_at: _c,
          sha256: _s,
          size_bytes: _b,
          platform: _p,
          signature: _g,
          producer: _r,
          onnx: _o,
          ...input
        } = meta;
        const res = await upload(other, "BTC-24h", bytes as Uint8Array, {
          ...input,
          feature_set: { name: "crypto-ohlcv", version: 99 },
          metrics: { skill: 1 },
        });
        expect(res.status).toBe(201);
        // A person's choice: the selection policy would serve the naive version.
        await other.app.registry.promote("BTC-24h", (await res.json()).version);
        const served = await serve(other, { symbol: "BTC", as_of: DATA_AS_OF });
        expect(served.status).toBe(503);
        expect((await served.json()).error).toContain("feature set crypto-ohlcv v99");
      } finally {
        await other.cleanup();
      }
    });
  });

  it("a cache outage degrades to uncached answers with x-cache: BYPASS", async () => {
    const broken: PredictionCache = {
      kind: "broken",
      get: () => Promise.reject(new Error("ECONNREFUSED")),
      set: () => Promise.reject(new Error("ECONNREFUSED")),
    };
    const app = createApp({ ...t.deps, cache: broken });
    const res = await app.app.request("/api/ml/serve", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ symbol: "BTC", as_of: DATA_AS_OF }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-cache")).toBe("BYPASS");
  });

  describe("POST /api/ml/batch", () => {
    it("forecasts each symbol, reporting a failing one beside the others", async () => {
      const res = await postJson(t, "/api/ml/batch", {
        symbols: ["BTC", "ETH", "DOGE", "btc"],
        as_of: DATA_AS_OF,
        horizon: "24h",
      });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.horizon).toBe("24h");
      expect(body.results.map((r: { symbol: string; ok: boolean }) => [r.symbol, r.ok])).toEqual([
        ["BTC", true],
        ["ETH", false],
        ["DOGE", false],
      ]);
      expect(body.results[0].forecast).toMatchObject({ symbol: "BTC", model_name: "BTC-24h" });
      expect(body.results[1].error).toMatchObject({ code: "no_model", status: 503 });
      expect(body.results[2].error).toMatchObject({ code: "unknown_symbol", status: 400 });
    });
    it.each([
      ["no symbols", { symbols: [] }],
      ["symbols not a list", { symbols: "BTC" }],
      ["too many symbols", { symbols: Array(21).fill("BTC") }],
    ])("rejects %s with 400", async (_label, body) => {
      const res = await postJson(t, "/api/ml/batch", body);
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe("invalid_request");
    });
  });
});

describe("market data per forecast: the prediction cache is read before any bar is fetched", () => {
  const HOUR = 3_600_000;
  let t: TestApp;
  // Inside the data (its last bar closes 2026-03-28T00:00Z): live forecasts, not stale ones.
  let clock = Date.parse("2026-03-26T09:00:00Z");
  const calls: string[] = [];
  beforeAll(async () => {
    const csv = createCsvMarketData({ dir: MARKET_DATA });
    const counting: MarketDataSource = {
      name: "counting csv",
      getBars: (symbol, interval, options) => {
        calls.push(`${symbol} ${interval} ${options?.end?.toISOString() ?? "latest"}`);
        return csv.getBars(symbol, interval, options);
      },
    };
    // An engine of its own: the file's shared engine keeps sessions by name@version, and BTC-24h@1 is another model here.
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 26, timeoutMs: 30_000 });
    t = await testApp({}, engine, { market: counting, now: () => new Date(clock) });
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: csv,
      registry: t.app.registry,
      plan: { families: ["ridge"] },
    });
  });
  afterAll(() => t.cleanup());

  it("N cached forecasts within one bar cost no market call after the first; the next bar costs one", async () => {
    const first = await serve(t, { symbol: "BTC" });
    expect(first.status, await first.clone().text()).toBe(200);
    expect(first.headers.get("x-cache")).toBe("MISS");
    expect(calls).toEqual(["BTC 1d 2026-03-26T00:00:00.000Z"]);
    for (let i = 0; i < 5; i++) {
      clock += 2 * HOUR;
      const res = await serve(t, { symbol: "BTC" });
      expect(res.headers.get("x-cache")).toBe("HIT");
    }
    const batch = await postJson(t, "/api/ml/batch", { symbols: ["BTC"] });
    expect((await batch.json()).results[0]).toMatchObject({ ok: true, cache: "HIT" });
    expect(calls).toHaveLength(1);
    clock = Date.parse("2026-03-27T00:00:01Z");
    expect((await serve(t, { symbol: "BTC" })).headers.get("x-cache")).toBe("MISS");
    expect(calls).toEqual(["BTC 1d 2026-03-26T00:00:00.000Z", "BTC 1d 2026-03-27T00:00:00.000Z"]);
  });
});

describe("training through the API: POST /api/ml/train and GET /api/ml/train/status", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp({}, testEngine(), {
      market: createCsvMarketData({ dir: MARKET_DATA }),
      trainingPlan: { families: ["ridge"] },
    });
  });
  afterAll(() => t.cleanup());

  const train = (body: unknown, token = ADMIN_TOKEN) =>
    t.request("/api/ml/train", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });

  it("is an admin action", async () => {
    expect((await train({ model_id: "ETH" }, "wrong-token-000000000")).status).toBe(401);
    expect((await postJson(t, "/api/ml/train", { model_id: "ETH" })).status).toBe(401);
  });

  it("rejects an unknown model_id with 400", async () => {
    const res = await train({ model_id: "DOGE" });
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe("unknown_symbol");
  });

  it("queues training, reports it running then succeeded with the report, and the model serves", async () => {
    const res = await train({ model_id: "ETH" });
    expect(res.status).toBe(202);
    const { request_id, status } = await res.json();
    expect(status).toBe("queued");
    let job: {
      state: string;
      result?: { versions: { name: string; version: string }[]; reports: unknown[] };
    };
    do {
      await new Promise((r) => setTimeout(r, 50));
      job = await (await t.admin(`/api/ml/train/status?request_id=${request_id}`)).json();
    } while (job.state === "queued" || job.state === "running");
    expect(job.state).toBe("succeeded");
    expect(job.result?.versions).toEqual([expect.objectContaining({ name: "ETH-24h", version: "1" })]);
    expect(job.result?.reports[0]).toMatchObject({
      symbol: "ETH",
      family: "ridge",
      test: { naiveMape: expect.any(Number) },
    });
    const served = await serve(t, { symbol: "ETH", as_of: DATA_AS_OF });
    expect(served.status).toBe(200);
  });

  it("reports a failed training with its error", async () => {
    const broken = createApp({ ...t.deps, market: createCsvMarketData({ dir: "/nonexistent" }) });
    const res = await broken.app.request("/api/ml/train", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ model_id: "BTC" }),
    });
    const { request_id } = await res.json();
    let job: { state: string; error?: { code: string } };
    do {
      await new Promise((r) => setTimeout(r, 20));
      job = await (
        await broken.app.request(`/api/ml/train/status?request_id=${request_id}`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        })
      ).json();
    } while (job.state !== "failed" && job.state !== "succeeded");
    expect(job).toMatchObject({ state: "failed", error: { code: "market_data_unavailable" } });
  });

  it.each([
    ["an unknown request id", "/api/ml/train/status?request_id=7b1f6c1e-9f0a-4d2e-8a51-3f4c2b1d0e9a", 404],
    ["a malformed request id", "/api/ml/train/status?request_id=42", 400],
    ["no request id", "/api/ml/train/status", 400],
  ])("status of %s", async (_label, path, status) => {
    expect((await t.admin(path)).status).toBe(status);
  });

  it("status is an admin action too: a request_id alone shows nothing", async () => {
    const { request_id } = await (await train({ model_id: "ETH" })).json();
    const path = `/api/ml/train/status?request_id=${request_id}`;
    expect((await t.request(path)).status).toBe(401);
    expect(
      (await t.request(path, { headers: { authorization: "Bearer wrong-token-000000000" } })).status,
    ).toBe(401);
    let job = await (await t.admin(path)).json();
    while (job.state === "queued" || job.state === "running") {
      await new Promise((r) => setTimeout(r, 20));
      job = await (await t.admin(path)).json();
    }
    expect(job.state).toBe("succeeded");
  });
});
