import { describe, expect, it } from "vitest";
import { EdgeMLError } from "../../src/errors.js";
import type { InferenceEngine } from "../../src/inference/engine.js";
import { createTelemetry, type TelemetryDeps } from "../../src/telemetry/recorder.js";
import { createMemoryMetricsStore, type MetricsStore } from "../../src/telemetry/store.js";
import type { Usage } from "../../src/tracking/usage.js";

const catalog = {
  listModelNames: async () => ["BTC-24h", "two"],
  versionNames: async (name: string) => (name === "two" ? ["1", "2"] : ["1"]),
};
const noUsage: Usage = { inferences: 0, rows: 0, forecasts: 0, cache_hit: 0, cache_miss: 0, cache_bypass: 0 };

function telemetryOn(store: MetricsStore, overrides: Partial<TelemetryDeps> = {}) {
  const warnings: string[] = [];
  const telemetry = createTelemetry({
    store,
    catalog: () => catalog,
    usage: () => ({
      read: async (_model, versions) => ({
        versions: Object.fromEntries(versions.map((v) => [v, { ...noUsage, cache_hit: 4, cache_miss: 1 }])),
      }),
    }),
    defer: () => {},
    warn: (message) => warnings.push(message),
    ...overrides,
  });
  return { telemetry, warnings };
}

describe("labels are bounded by the registry", () => {
  it("a model it does not list is `other`, an unknown version is `other`, none chosen is `unresolved`", async () => {
    const store = createMemoryMetricsStore();
    const { telemetry } = telemetryOn(store);
    telemetry.observer.served("two", "2", 0.001);
    telemetry.observer.served("two", "99", 0.001);
    telemetry.observer.served("/etc/passwd", "1", 0.001);
    telemetry.observer.failed("two", undefined, 0.002, new EdgeMLError("no_model", "x"));
    telemetry.observer.failed("two", "1", 0.002, new Error("not ours"));
    await telemetry.flush();
    const keys = Object.keys(await store.readAll());
    const labelSets = new Set(
      keys.map((k) =>
        k
          .split("|")
          .filter((p) => !p.startsWith("le="))
          .slice(1)
          .join("|"),
      ),
    );
    expect([...labelSets].sort()).toEqual([
      "code=internal|model=two|version=1",
      "code=no_model|model=two|version=unresolved",
      "model=other|version=other",
      "model=two|version=1",
      "model=two|version=2",
      "model=two|version=other",
      "model=two|version=unresolved",
    ]);
    expect(keys.join()).not.toContain("passwd");
  });
});

describe("writes", () => {
  it("are coalesced: what is recorded while a write is in flight goes in the next one, none lost", async () => {
    const inner = createMemoryMetricsStore();
    const batches: number[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const store: MetricsStore = {
      kind: "gated",
      async write(batch) {
        batches.push(Object.keys(batch.add).length);
        if (batches.length === 1) await gate;
        await inner.write(batch);
      },
      readAll: () => inner.readAll(),
    };
    const { telemetry } = telemetryOn(store);
    telemetry.observer.predictionLogged("two", true);
    // Start the first write (without waiting out its batching window), then record 50 more while it is held.
    const first = telemetry.flush();
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 50; i++) telemetry.observer.predictionLogged("two", i % 2 === 0);
    release();
    await first;
    await telemetry.flush();
    expect(batches).toHaveLength(2);
    expect(await inner.readAll()).toEqual({
      "edgeml_prediction_log_writes_total|model=two|result=ok": 26,
      "edgeml_prediction_log_writes_total|model=two|result=failed": 25,
    });
  });

  it("a failing store: every record's work still settles, one warning per outage, recovery is reported", async () => {
    let down = true;
    const inner = createMemoryMetricsStore();
    const store: MetricsStore = {
      kind: "flaky",
      write: (batch) => (down ? Promise.reject(new Error("ECONNREFUSED")) : inner.write(batch)),
      readAll: () => inner.readAll(),
    };
    const deferred: Promise<unknown>[] = [];
    const { telemetry, warnings } = telemetryOn(store, { defer: (work) => deferred.push(work) });
    for (let i = 0; i < 5; i++) {
      telemetry.observer.served("two", "1", 0.001);
      await telemetry.flush();
    }
    const outcomes = await Promise.allSettled(deferred);
    expect(outcomes.every((o) => o.status === "fulfilled")).toBe(true);
    down = false;
    telemetry.observer.served("two", "1", 0.001);
    await telemetry.flush();
    expect(warnings).toEqual([
      "metrics store (flaky, writes) unavailable; requests are not counted; further failures are counted until it recovers",
      "metrics store (flaky, writes) recovered after 5 failed call(s)",
    ]);
  });
});

describe("instrumentEngine(engine)", () => {
  it("counts a cold start each time the engine calls `load`, never on a warm run", async () => {
    const warm = new Set<string>();
    const engine = {
      init: async () => {},
      signature: async () => ({ inputs: [], outputs: [] }),
      async run(request: { key: string; load: () => Promise<Uint8Array> }) {
        if (!warm.has(request.key)) {
          await request.load();
          warm.add(request.key);
        }
        return {};
      },
      evict: (key: string) => warm.delete(key),
      stats: () => ({ initMs: null, sessionsCreated: warm.size, runs: 0, warmSessions: warm.size }),
    } as unknown as InferenceEngine;
    const store = createMemoryMetricsStore();
    const { telemetry } = telemetryOn(store);
    const counted = telemetry.instrumentEngine(engine);
    const load = async () => new Uint8Array(1);
    for (let i = 0; i < 3; i++) await counted.run({ key: "two@1", load, feeds: {} });
    counted.evict("two@1");
    await counted.run({ key: "two@1", load, feeds: {} });
    await telemetry.flush();
    expect(await store.readAll()).toEqual({ "edgeml_model_loads_total|model=two|version=1": 2 });
  });
});

describe("servingFigures(model)", () => {
  it("requests, errors by code, latency percentiles from the buckets, cache from the usage tracker (not re-counted)", async () => {
    const store = createMemoryMetricsStore();
    const { telemetry } = telemetryOn(store);
    for (let i = 0; i < 9; i++) telemetry.observer.served("two", "1", 0.002);
    telemetry.observer.failed("two", "1", 0.5, new EdgeMLError("prediction_timeout", "slow"));
    telemetry.observer.failed("two", undefined, 0.001, new EdgeMLError("no_model", "none"));
    await telemetry.flush();
    expect(Object.keys(await store.readAll()).some((k) => k.includes("cache"))).toBe(false);
    const figures = await telemetry.servingFigures("two");
    expect(figures?.versions["1"]).toEqual({
      requests: 10,
      errors: 1,
      error_rate: 0.1,
      errors_by_code: { prediction_timeout: 1 },
      latency_ms: { serve: { count: 9, p50: 1.75, p90: 2.35, p99: 2.485 }, infer: null },
      cache: { hits: 4, misses: 1, hit_rate: 0.8 },
      cold_starts: 0,
    });
    expect(figures?.model).toMatchObject({
      requests: 11,
      errors: 2,
      errors_by_code: { prediction_timeout: 1, no_model: 1 },
      cache: { hits: 8, misses: 2 },
    });
    expect(Object.keys(figures?.versions ?? {})).toEqual(["1", "2"]);
  });

  it("concurrent readers share one store read (public requests cannot multiply store traffic)", async () => {
    const inner = createMemoryMetricsStore();
    let reads = 0;
    const store: MetricsStore = {
      kind: "counted",
      write: (batch) => inner.write(batch),
      readAll: () => {
        reads += 1;
        return inner.readAll();
      },
    };
    const { telemetry } = telemetryOn(store);
    await Promise.all([
      telemetry.servingFigures("two"),
      telemetry.servingFigures("two"),
      telemetry.modelStats(),
    ]);
    expect(reads).toBe(1);
    await telemetry.servingFigures("two");
    expect(reads).toBe(2);
  });

  it("null when the store cannot be read", async () => {
    const store: MetricsStore = {
      kind: "down",
      write: async () => {},
      readAll: () => Promise.reject(new Error("ECONNREFUSED")),
    };
    expect(await telemetryOn(store).telemetry.servingFigures("two")).toBeNull();
  });
});
