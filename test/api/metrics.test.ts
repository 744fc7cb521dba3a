import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { trainSymbol } from "../../src/forecast/training.js";
import { createOrtEngine } from "../../src/inference/engine.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import type { PredictionLog } from "../../src/storage/prediction-log.js";
import type { MetricsStore } from "../../src/telemetry/store.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { ADMIN_TOKEN, postJson, type TestApp, testApp, testEngine, upload } from "../support/app.js";
import { twoByTwoModel, variantOf } from "../support/onnx-models.js";
import { DATA_AS_OF } from "../support/paths.js";
import { type Exposition, family, histograms, parseExposition, sampleValue } from "../support/prometheus.js";

const METRICS_TOKEN = "test-metrics-token-0123456789";
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const rows = (n: number) => ({ datatype: "FP64", shape: [n, 2], data: Array(2 * n).fill(1) });
const inferBody = (n: number) => ({
  inputs: [
    { name: "a", ...rows(n) },
    { name: "b", ...rows(n) },
  ],
});

/** GET /metrics with the metrics token, parsed by a real Prometheus text parser. */
async function scrape(t: TestApp): Promise<Exposition> {
  const response = await t.request("/metrics", bearer(METRICS_TOKEN));
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(await response.text());
}

describe("GET /metrics", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ metricsToken: METRICS_TOKEN });
    expect((await upload(t, "two", twoByTwoModel())).status).toBe(201);
  });
  afterEach(() => t.cleanup());

  it("counters move by exactly the requests sent, by route template, method and status", async () => {
    const route = { route: "/v2/models/:name/infer", method: "POST" };
    const before = await scrape(t);
    for (let i = 0; i < 7; i++)
      expect((await postJson(t, "/v2/models/two/infer", inferBody(1))).status).toBe(200);
    // Missing input `b`: refused by the service with its code.
    for (let i = 0; i < 3; i++) {
      expect(
        (await postJson(t, "/v2/models/two/infer", { inputs: [{ name: "a", ...rows(1) }] })).status,
      ).toBe(400);
    }
    const after = await scrape(t);
    const delta = (labels: Record<string, string>, name = "edgeml_http_requests_total") =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(delta({ ...route, status: "200" })).toBe(7);
    expect(delta({ ...route, status: "400" })).toBe(3);
    expect(delta({ route: route.route, code: "invalid_tensor" }, "edgeml_http_errors_total")).toBe(3);
    expect(
      delta({ model: "two", version: "unresolved", code: "invalid_tensor" }, "edgeml_serve_errors_total"),
    ).toBe(3);
  });

  it("labels routes by their template, never by the raw path; an unmatched path is `unmatched`", async () => {
    await t.request("/v2/models/two");
    await t.request("/no/such/path-xyz123");
    await t.request("/v2/models/model-never-registered-777/ready");
    const text = await (await t.request("/metrics", bearer(METRICS_TOKEN))).text();
    expect(text).not.toContain("path-xyz123");
    expect(text).not.toContain("model-never-registered-777");
    const parsed = parseExposition(text);
    const templates = new Set([...t.app.app.routes.map((r) => r.path), "unmatched"]);
    const routes = (family(parsed, "edgeml_http_requests_total")?.metrics ?? []).map((m) => m.labels?.route);
    for (const route of routes)
      expect(templates.has(route as string), `${route} is a route template`).toBe(true);
    expect(sampleValue(parsed, "edgeml_http_requests_total", { route: "unmatched", status: "404" })).toBe(1);
    expect(
      sampleValue(parsed, "edgeml_http_requests_total", { route: "/v2/models/:name", status: "200" }),
    ).toBe(1);
    expect(
      sampleValue(parsed, "edgeml_http_requests_total", { route: "/v2/models/:name/ready", status: "404" }),
    ).toBe(1);
  });

  it("histograms are cumulative, +Inf equals the count, and count the requests by model and version", async () => {
    for (let i = 0; i < 5; i++) await postJson(t, "/v2/models/two/infer", inferBody(2));
    const parsed = await scrape(t);
    const names = parsed.families.filter((f) => f.type === "HISTOGRAM").map((f) => f.name);
    expect(names.sort()).toEqual([
      "edgeml_http_request_duration_seconds",
      "edgeml_inference_duration_seconds",
      "edgeml_serve_duration_seconds",
    ]);
    for (const name of names) {
      const all = histograms(parsed, name);
      expect(all.length).toBeGreaterThan(0);
      for (const h of all) {
        const bounds = h.buckets.map((b) => b.le);
        expect(bounds).toEqual([...bounds].sort((a, b) => a - b));
        expect(bounds.at(-1)).toBe(Number.POSITIVE_INFINITY);
        for (let i = 1; i < h.buckets.length; i++) {
          expect(h.buckets[i]?.count).toBeGreaterThanOrEqual(h.buckets[i - 1]?.count as number);
        }
        expect(h.buckets.at(-1)?.count).toBe(h.count);
        expect(h.sum).toBeGreaterThanOrEqual(0);
      }
    }
    const ofTwo = (name: string) =>
      histograms(parsed, name).find((h) => h.labels.model === "two" && h.labels.version === "1");
    expect(ofTwo("edgeml_serve_duration_seconds")?.count).toBe(5);
    expect(ofTwo("edgeml_inference_duration_seconds")?.count).toBe(5);
    expect(sampleValue(parsed, "edgeml_inference_rows_total", { model: "two", version: "1" })).toBe(10);
  });

  it("counts a cold start once per session the engine creates", async () => {
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 30, timeoutMs: 30_000 });
    const fresh = await testApp({ metricsToken: METRICS_TOKEN }, engine);
    try {
      await upload(fresh, "two", twoByTwoModel());
      for (let i = 0; i < 3; i++) await postJson(fresh, "/v2/models/two/infer", inferBody(1));
      const parsed = await scrape(fresh);
      // Registration loads the bytes under a key of its own (labelled "other") before the version exists.
      const loads = (family(parsed, "edgeml_model_loads_total")?.metrics ?? []).map((m) => Number(m.value));
      expect(loads.reduce((a, b) => a + b, 0)).toBe(engine.stats().sessionsCreated);
      expect(sampleValue(parsed, "edgeml_model_loads_total", { model: "two", version: "1" })).toBe(1);
    } finally {
      await fresh.cleanup();
    }
  });

  describe("bearer token", () => {
    it("accepts METRICS_TOKEN and the admin token", async () => {
      expect((await t.request("/metrics", bearer(METRICS_TOKEN))).status).toBe(200);
      expect((await t.request("/metrics", bearer(ADMIN_TOKEN))).status).toBe(200);
    });

    it("refuses a missing or wrong token with 401 and a Bearer challenge", async () => {
      for (const init of [
        {},
        bearer("wrong-token-0123456789"),
        { headers: { authorization: "Basic abc" } },
      ]) {
        const response = await t.request("/metrics", init);
        expect(response.status).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(await response.json()).toMatchObject({ code: "unauthorized" });
      }
    });

    it("the metrics token opens nothing else: admin routes refuse it", async () => {
      expect((await t.request("/api/ml/models", bearer(METRICS_TOKEN))).status).toBe(401);
    });

    it("works with METRICS_TOKEN alone (no admin API)", async () => {
      const only = await testApp({ metricsToken: METRICS_TOKEN, adminToken: undefined });
      try {
        expect((await only.request("/metrics", bearer(METRICS_TOKEN))).status).toBe(200);
        expect((await only.request("/metrics", bearer(ADMIN_TOKEN))).status).toBe(401);
      } finally {
        await only.cleanup();
      }
    });

    it("with neither token configured: 503 metrics_disabled saying what to set", async () => {
      const none = await testApp({ adminToken: undefined });
      try {
        const response = await none.request("/metrics", bearer(METRICS_TOKEN));
        expect(response.status).toBe(503);
        const body = await response.json();
        expect(body.code).toBe("metrics_disabled");
        expect(body.error).toContain("METRICS_TOKEN");
      } finally {
        await none.cleanup();
      }
    });
  });

  it("recording is off the response path: a store that never answers delays no request", async () => {
    const hanging: MetricsStore = {
      kind: "hanging",
      write: () => new Promise(() => {}),
      readAll: async () => ({}),
    };
    const h = await testApp({ metricsToken: METRICS_TOKEN }, testEngine(), { metrics: hanging });
    try {
      await upload(h, "two", twoByTwoModel());
      for (let i = 0; i < 3; i++)
        expect((await postJson(h, "/v2/models/two/infer", inferBody(1))).status).toBe(200);
      expect((await h.request("/v2/models/two")).status).toBe(200);
    } finally {
      await h.cleanup();
    }
  });

  it("a metrics store that fails never changes an answer; /metrics then says 503 store_unavailable", async () => {
    const broken: MetricsStore = {
      kind: "broken",
      write: () => Promise.reject(new Error("ECONNREFUSED")),
      readAll: () => Promise.reject(new Error("ECONNREFUSED")),
    };
    const warnings: string[] = [];
    const b = await testApp({ metricsToken: METRICS_TOKEN }, testEngine(), {
      metrics: broken,
      logger: { info() {}, error() {}, warn: (message) => warnings.push(message) },
    });
    try {
      await upload(b, "two", twoByTwoModel());
      for (let i = 0; i < 5; i++)
        expect((await postJson(b, "/v2/models/two/infer", inferBody(1))).status).toBe(200);
      const response = await b.request("/metrics", bearer(METRICS_TOKEN));
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ code: "store_unavailable" });
      expect(await b.app.services.telemetry.servingFigures("two")).toBeNull();
      // One warning for the outage, not one per request.
      expect(warnings.filter((w) => w.startsWith("metrics store (broken, writes) unavailable"))).toHaveLength(
        1,
      );
    } finally {
      await b.cleanup();
    }
  });
});

describe("forecasts in the telemetry", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ metricsToken: METRICS_TOKEN });
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: t.deps.market,
      registry: t.app.registry,
      plan: { families: ["ridge"] },
    });
  });
  afterEach(() => t.cleanup());

  it("serve latency, cache hits and misses (from the usage counters), log writes; servingFigures agrees", async () => {
    const served = new Set<string | null>();
    for (let i = 0; i < 3; i++) {
      const response = await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: DATA_AS_OF });
      expect(response.status).toBe(200);
      served.add(response.headers.get("x-model-version"));
    }
    expect(served.size).toBe(1);
    const v = [...served][0] as string;
    expect((await postJson(t, "/api/ml/serve", { symbol: "NOPE", as_of: DATA_AS_OF })).status).toBe(400);
    const parsed = await scrape(t);
    const version = { model: "BTC-24h", version: v };
    const serve = histograms(parsed, "edgeml_serve_duration_seconds").find(
      (h) => h.labels.model === "BTC-24h" && h.labels.version === v,
    );
    expect(serve?.count).toBe(3);
    expect(sampleValue(parsed, "edgeml_forecast_cache_requests_total", { ...version, result: "hit" })).toBe(
      2,
    );
    expect(sampleValue(parsed, "edgeml_forecast_cache_requests_total", { ...version, result: "miss" })).toBe(
      1,
    );
    expect(
      sampleValue(parsed, "edgeml_prediction_log_writes_total", { model: "BTC-24h", result: "ok" }),
    ).toBe(1);
    // An unknown symbol is never a label value: it counts under "other".
    expect(sampleValue(parsed, "edgeml_serve_errors_total", { model: "other", code: "unknown_symbol" })).toBe(
      1,
    );

    const figures = await t.app.services.telemetry.servingFigures("BTC-24h");
    expect(figures?.versions[v]).toMatchObject({
      requests: 3,
      errors: 0,
      error_rate: 0,
      cache: { hits: 2, misses: 1, hit_rate: 2 / 3 },
    });
    expect(figures?.versions[v]?.latency_ms.serve?.count).toBe(3);
    expect(figures?.versions[v]?.latency_ms.infer?.count).toBe(1);
    expect(figures?.model.requests).toBe(3);
  });
});

describe("prediction-log writes in the telemetry", () => {
  it("a log that fails: the forecast is still answered, and the write counts as failed", async () => {
    const memory = createMemoryPredictionLog();
    const failing: PredictionLog = {
      ...memory,
      kind: "failing",
      record: () => Promise.reject(new Error("disk full")),
    };
    const t = await testApp({ metricsToken: METRICS_TOKEN }, testEngine(), { predictionLog: failing });
    try {
      await trainSymbol({
        trainer: trainForecaster,
        symbol: "BTC",
        market: t.deps.market,
        registry: t.app.registry,
        plan: { families: ["ridge"] },
      });
      expect((await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: DATA_AS_OF })).status).toBe(200);
      const parsed = await scrape(t);
      expect(
        sampleValue(parsed, "edgeml_prediction_log_writes_total", { model: "BTC-24h", result: "failed" }),
      ).toBe(1);
      expect(
        sampleValue(parsed, "edgeml_prediction_log_writes_total", { model: "BTC-24h", result: "ok" }),
      ).toBe(0);
    } finally {
      await t.cleanup();
    }
  });
});

describe("Triton statistics extension", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
    expect((await upload(t, "two", twoByTwoModel())).status).toBe(201);
    expect((await upload(t, "two", variantOf(twoByTwoModel(), "second"))).status).toBe(201);
  });
  afterEach(() => t.cleanup());

  it('GET /v2 lists "statistics" among its extensions', async () => {
    expect((await (await t.request("/v2")).json()).extensions).toContain("statistics");
  });

  it("counts per version in Triton's shape: success, executions, rows, failures", async () => {
    for (let i = 0; i < 4; i++) await postJson(t, "/v2/models/two/versions/1/infer", inferBody(3));
    await postJson(t, "/v2/models/two/versions/1/infer", { inputs: [{ name: "a", ...rows(1) }] });
    await t.app.services.telemetry.flush();
    const response = await t.request("/v2/models/two/versions/1/stats");
    expect(response.status).toBe(200);
    const { model_stats } = await response.json();
    expect(model_stats).toHaveLength(1);
    const [stat] = model_stats;
    expect(stat).toMatchObject({
      name: "two",
      version: "1",
      inference_count: 12,
      execution_count: 4,
      batch_stats: [],
      inference_stats: {
        success: { count: 4 },
        fail: { count: 1 },
        compute_infer: { count: 4 },
        queue: { count: 0, ns: 0 },
        compute_input: { count: 0, ns: 0 },
        compute_output: { count: 0, ns: 0 },
        cache_hit: { count: 0, ns: 0 },
        cache_miss: { count: 0, ns: 0 },
      },
    });
    expect(stat.inference_stats.success.ns).toBeGreaterThan(0);
    expect(stat.inference_stats.success.ns).toBeGreaterThanOrEqual(stat.inference_stats.compute_infer.ns);
    expect(stat.last_inference).toBeGreaterThan(Date.parse("2020-01-01"));
    for (const d of Object.values(stat.inference_stats) as { count: number; ns: number }[]) {
      expect(Number.isInteger(d.count) && Number.isInteger(d.ns)).toBe(true);
    }
  });

  it("every version of a model, and every model", async () => {
    const model = await (await t.request("/v2/models/two/stats")).json();
    expect(model.model_stats.map((s: { version: string }) => s.version)).toEqual(["1", "2"]);
    expect(model.model_stats[1]).toMatchObject({ inference_count: 0, execution_count: 0, last_inference: 0 });
    const all = await (await t.request("/v2/models/stats")).json();
    expect(all.model_stats.map((s: { name: string; version: string }) => `${s.name}@${s.version}`)).toEqual([
      "two@1",
      "two@2",
    ]);
  });

  it("an unknown model or version is 404 in the OIP error shape", async () => {
    for (const path of ["/v2/models/nope/stats", "/v2/models/two/versions/9/stats"]) {
      const response = await t.request(path);
      expect(response.status).toBe(404);
      const body = await response.json();
      expect(typeof body.error).toBe("string");
      expect(body.code).toMatch(/^(model|version)_not_found$/);
    }
  });
});
