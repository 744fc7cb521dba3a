import { put } from "@vercel/blob";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type LocalStack, startLocalStack } from "../../scripts/dev/local-stack";
import { type AppDeps, createApp } from "../../src/app.js";
import { trainSymbol } from "../../src/forecast/training.js";
import { createOrtEngine, type InferenceEngine } from "../../src/inference/engine.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { ADMIN_TOKEN, testEngine, upload } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";
import { DATA_AS_OF, MARKET_DATA } from "../support/paths.js";
import { eventually } from "./support/eventually.js";
import { productionAdapters } from "./support/production-adapters.js";

/**
 * Issue 4's "must show" on the production adapters — Vercel Blob, Edge Config and Upstash Redis through their real
 * clients against local servers — with outages injected into those servers: a stack of this file's own, so
 * killing its redis-server disturbs no other suite.
 */
let stack: LocalStack;
beforeAll(async () => {
  stack = await startLocalStack();
  // Faults must show at once rather than after the Blob client's ten retries with backoff.
  process.env.VERCEL_BLOB_RETRIES = "0";
});
afterAll(async () => {
  await stack?.close();
});

interface Instance {
  request: (path: string, init?: RequestInit) => Promise<Response>;
  admin: (path: string, init?: RequestInit) => Promise<Response>;
  deps: AppDeps;
  namespace: string;
}

/**
 * One instance of the app on the production adapters. Instances given the same namespace are one deployment's
 * instances: shared Blob, Edge Config and Redis, but each with its own process caches.
 */
/** The warnings of every instance: the outage tests read them. */
const warnings = vi.fn<(message: string, error?: unknown) => void>();

function instance(
  options: {
    namespace?: string;
    engine?: InferenceEngine;
    env?: Record<string, string>;
    config?: AppDeps["config"];
  } = {},
): Instance {
  const { namespace, ...adapters } = productionAdapters({
    stack: stack.env,
    namespace: options.namespace,
    env: options.env,
  });
  const deps: AppDeps = {
    ...adapters,
    market: createCsvMarketData({ dir: MARKET_DATA }),
    engine: options.engine ?? testEngine(),
    config: { adminToken: ADMIN_TOKEN, ...options.config },
    // Warnings are what the outage tests read; errors of the outages they provoke are not.
    logger: { ...silentLogger, warn: warnings },
    // The forecast service warns when the cache is down; the outage is the point of these tests.
    waitUntil: (work) => {
      work.catch(() => {});
    },
  };
  const { app } = createApp(deps);
  const request = async (path: string, init?: RequestInit) => app.request(path, init);
  const admin = (path: string, init: RequestInit = {}) =>
    request(path, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...init.headers } });
  return { request, admin, deps, namespace };
}

const post = (app: Pick<Instance, "request">, path: string, body: unknown) =>
  app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const adminPost = (app: Instance, path: string, body: unknown) =>
  app.admin(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const serve = (app: Instance) =>
  post(app, "/api/ml/serve", { symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF });

async function served(app: Instance) {
  const res = await serve(app);
  expect(res.status).toBe(200);
  const body = (await res.json()) as {
    model_version: string;
    prediction_id: string;
    predicted_log_return: number;
  };
  expect(res.headers.get("x-model-version")).toBe(body.model_version);
  return { ...body, cache: res.headers.get("x-cache") };
}

/** A fresh engine: no session warm from before, as in a new process. */
const freshEngine = () => createOrtEngine({ maxSessions: 8, maxSessionBytes: 1 << 26, timeoutMs: 30_000 });

describe("forecasts on the production adapters", () => {
  let a: Instance;
  /** v1 (gbdt) and v2 (ridge): two versions whose forecasts differ. */
  let v1: string;
  let v2: string;
  let best: string;
  let other: string;

  beforeAll(async () => {
    a = instance();
    const trained = await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: a.deps.market,
      registry: createApp(a.deps).registry,
    });
    [v1, v2] = trained.map((t) => t.version) as [string, string];
    // Which version serves with no pointers: the tests promote the *other* one, so a champion is visible.
    best = (await (await a.admin("/api/ml/models/BTC-24h")).json()).serving.version;
    other = best === v1 ? v2 : v1;
  });

  afterEach(async () => {
    stack.edgeConfig.setAvailable(true);
    await stack.edgeConfig.start();
    stack.blob.setFault(null);
    if (!stack.redis.isRunning()) await stack.redis.restart();
    await eventually(async () => stack.upstash.redisReady(), "the bridge reconnects");
  });

  it("a promotion through the admin API serves the new version at once, never the old one's cached answer; so does a rollback", async () => {
    expect((await adminPost(a, "/api/ml/models/BTC-24h/promote", { version: v1 })).status).toBe(200);
    const first = await served(a);
    expect(first.model_version).toBe(v1);
    expect(await served(a)).toMatchObject({
      model_version: v1,
      cache: "HIT",
      prediction_id: first.prediction_id,
    });

    expect((await adminPost(a, "/api/ml/models/BTC-24h/promote", { version: v2 })).status).toBe(200);
    const promoted = await served(a);
    expect(promoted).toMatchObject({ model_version: v2, cache: "MISS" });
    expect(promoted.predicted_log_return).not.toBe(first.predicted_log_return);
    expect(await served(a)).toMatchObject({ model_version: v2, cache: "HIT" });

    expect((await adminPost(a, "/api/ml/models/BTC-24h/rollback", { reason: "test" })).status).toBe(200);
    // v1's own answer, still cached under v1's key: never v2's.
    expect(await served(a)).toMatchObject({
      model_version: v1,
      prediction_id: first.prediction_id,
      predicted_log_return: first.predicted_log_return,
    });
  });

  it("another instance of the deployment follows a promotion once its pointer cache expires", async () => {
    const b = instance({ namespace: a.namespace, env: { EDGE_CONFIG_CACHE_TTL_MS: "0" } });
    await adminPost(a, "/api/ml/models/BTC-24h/promote", { version: other });
    expect((await served(b)).model_version).toBe(other);
    await adminPost(a, "/api/ml/models/BTC-24h/promote", { version: best });
    expect((await served(b)).model_version).toBe(best);
  });

  it("redis-server killed mid-test: forecasts keep answering, uncached (x-cache BYPASS); caching resumes when it is back", async () => {
    await adminPost(a, "/api/ml/models/BTC-24h/promote", { version: other });
    expect((await served(a)).model_version).toBe(other);
    warnings.mockClear();
    await stack.redis.kill();
    for (let i = 0; i < 3; i++) {
      expect(await served(a)).toMatchObject({ model_version: other, cache: "BYPASS" });
    }
    expect((await post(a, "/api/ml/batch", { symbols: ["BTC"], as_of: DATA_AS_OF })).status).toBe(200);
    // Degraded loudly, once per outage: the first bypass is logged with the reason, the others counted.
    const outage = (message: string) =>
      warnings.mock.calls.filter(([m]) => String(m).startsWith(`prediction cache (upstash) ${message}`));
    expect(outage("unavailable")).toEqual([
      [
        expect.stringContaining("unavailable; serving uncached; further failures are counted"),
        expect.objectContaining({ message: expect.stringContaining("redis is unavailable") }),
      ],
    ]);
    await stack.redis.restart();
    await eventually(async () => stack.upstash.redisReady(), "the bridge reconnects");
    // The restarted redis-server is empty (no persistence): computed once, then served from the cache.
    expect(await served(a)).toMatchObject({ model_version: other, cache: "MISS" });
    await eventually(async () => (await served(a)).cache === "HIT", "the cache write lands");
    // The recovery is logged with how many calls failed during the outage (3 forecasts and the batch's one).
    expect(outage("recovered").map(([m]) => m)).toEqual([
      expect.stringMatching(/recovered after [4-9] failed call\(s\)$/),
    ]);
  });

  it.each([
    ["answering 503", () => stack.edgeConfig.setAvailable(false)],
    ["refusing connections", () => stack.edgeConfig.stop()],
  ])(
    "Edge Config %s: the promoted champion keeps serving; admin changes fail with 503",
    async (_label, down) => {
      // Reads Edge Config on every request (no pointer cache), so what serves during the outage is the fallback.
      const b = instance({ namespace: a.namespace, env: { EDGE_CONFIG_CACHE_TTL_MS: "0" } });
      await adminPost(a, "/api/ml/models/BTC-24h/promote", { version: other });
      expect((await served(b)).model_version).toBe(other);
      await down();
      for (let i = 0; i < 3; i++) expect((await served(b)).model_version).toBe(other);
      const change = await adminPost(b, "/api/ml/models/BTC-24h/promote", { version: best });
      expect(change.status).toBe(503);
      // The store is what is down, and the code says so (not the model).
      expect((await change.json()).code).toBe("store_unavailable");
      // An instance that never read the pointers cannot know the champion: 503, never a silent fallback to "best".
      const cold = instance({ namespace: a.namespace });
      const res = await serve(cold);
      expect(res.status).toBe(503);
      expect((await res.json()).error).toMatch(/Edge Config is unreachable/);
    },
  );

  it("Blob answering 500: versions already loaded keep serving; one never loaded answers 503", async () => {
    await adminPost(a, "/api/ml/models/BTC-24h/promote", { version: other });
    // Lists the store on every request, so serving through the fault proves the fallback, not a warm listing.
    const b = instance({ namespace: a.namespace, engine: freshEngine(), config: { registryListTtlMs: 0 } });
    expect((await served(b)).model_version).toBe(other);
    stack.blob.setFault("500");
    for (let i = 0; i < 3; i++) expect((await served(b)).model_version).toBe(other);
    const unloaded = await post(b, `/v2/models/BTC-24h/versions/${best}/infer`, {
      inputs: [{ name: "features", datatype: "FP64", shape: [1, 1], data: [0] }],
    });
    expect(unloaded.status).toBe(503);
    expect((await unloaded.json()).code).toBe("model_unavailable");
    stack.blob.setFault(null);
    expect((await served(b)).model_version).toBe(other);
  });

  it("100 concurrent identical calls to a fresh instance with an empty cache run the model once", async () => {
    const inner = freshEngine();
    let runs = 0;
    const counting: InferenceEngine = {
      ...inner,
      run: (request) => {
        runs += 1;
        return inner.run(request);
      },
    };
    // Same models and pointers, a Redis namespace of its own: nothing cached yet.
    const b = instance({ namespace: a.namespace, engine: counting });
    const { cache } = productionAdapters({ stack: stack.env });
    const fresh = createApp({ ...b.deps, cache });
    expect((await fresh.app.request(`/v2/models/BTC-24h/ready`)).status).toBe(200);
    const before = runs;
    const responses = await Promise.all(
      Array.from({ length: 100 }, () =>
        fresh.app.request("/api/ml/serve", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ symbol: "BTC", as_of: DATA_AS_OF }),
        }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(runs - before).toBe(1);
  });
});

describe("artifacts in Vercel Blob", () => {
  const add = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
  const mul = elementwiseModel({ op: "Mul", elem: "FP64", shape: ["batch", 1] });
  const golden = {
    cases: [
      {
        inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [3] }],
        outputs: [{ name: "y", datatype: "FP64", shape: [1, 1], data: [6] }],
      },
    ],
  };
  const infer = (app: Pick<Instance, "request">) =>
    post(app, "/v2/models/m/infer", { inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [3] }] });
  const sha256 = async (bytes: Uint8Array) =>
    Buffer.from(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)).toString("hex");
  /** Overwrites a blob behind the registry's back, as a compromised or corrupted store would. */
  const tamper = (pathname: string, body: string | Uint8Array) =>
    put(pathname, typeof body === "string" ? body : Buffer.from(body), {
      access: "public",
      token: stack.blob.token,
      allowOverwrite: true,
      addRandomSuffix: false,
    });

  it("bytes that no longer match the sha256 in the metadata are never served, nor reported ready", async () => {
    const a = instance();
    expect((await upload(a, "m", add, { golden })).status).toBe(201);
    expect((await infer(a)).status).toBe(200);
    await tamper(`${a.namespace}/models/m/1/${await sha256(add)}.onnx`, mul);
    const fresh = instance({ namespace: a.namespace, engine: freshEngine() });
    const res = await infer(fresh);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      code: "model_unavailable",
      error: expect.stringContaining("failed its integrity check"),
    });
    expect((await fresh.request("/v2/models/m/ready")).status).toBe(503);
  });

  it("a version whose golden rows no longer reproduce is never served", async () => {
    const a = instance();
    expect((await upload(a, "m", add, { golden })).status).toBe(201);
    // Bytes and sha256 rewritten consistently: only the golden rows can notice.
    const folder = `${a.namespace}/models/m/1`;
    const meta = JSON.parse((await a.deps.artifacts.getMetadata("m", "1")) as string);
    meta.sha256 = await sha256(mul);
    meta.size_bytes = mul.byteLength;
    await tamper(`${folder}/${meta.sha256}.onnx`, mul);
    await tamper(`${folder}/metadata.json`, JSON.stringify(meta));
    const res = await infer(instance({ namespace: a.namespace, engine: freshEngine() }));
    expect(res.status).toBe(503);
    expect((await res.json()).error).toContain("no longer reproduces its golden rows");
  });

  it("racing registrations through one app: every registration gets its own complete version, numbered 1..N", async () => {
    const a = instance();
    const n = 12;
    const models = Array.from({ length: n }, (_, i) =>
      elementwiseModel({ op: "Add", elem: "FP32", shape: ["batch", i + 1] }),
    );
    const responses = await Promise.all(models.map((bytes) => upload(a, "raced", bytes)));
    expect(responses.map((r) => r.status)).toEqual(Array(n).fill(201));
    const metas = (await Promise.all(responses.map((r) => r.json()))) as {
      version: string;
      sha256: string;
    }[];
    expect(metas.map((m) => Number(m.version)).sort((x, y) => x - y)).toEqual(
      Array.from({ length: n }, (_, i) => i + 1),
    );
    // Each version folder holds exactly its metadata and the bytes it names: no orphans from lost races.
    const folder = `${a.namespace}/models/raced/`;
    const stored = stack.blob
      .blobs()
      .map((b) => b.pathname)
      .filter((p) => p.startsWith(folder))
      .sort();
    expect(stored).toEqual(
      metas
        .flatMap((m) => [`${folder}${m.version}/${m.sha256}.onnx`, `${folder}${m.version}/metadata.json`])
        .sort(),
    );
  });
});
