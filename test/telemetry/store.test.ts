import { describe, expect, it } from "vitest";
import { createMemoryMetricsStore } from "../../src/telemetry/store.js";
import { createUpstashMetricsStore } from "../../src/telemetry/upstash-store.js";
import { eventually } from "../storage/support/eventually.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "../storage/support/upstash.js";
import { metricsStoreContract } from "./store.contract.js";

const upstash = useLocalUpstash();
const upstashStore = (prefix = upstash.freshPrefix()) =>
  createUpstashMetricsStore(upstash.client(), { prefix, timeoutMs: TEST_STORE_TIMEOUT_MS });

metricsStoreContract("process memory (embedded)", async () => createMemoryMetricsStore());
metricsStoreContract("Upstash Redis (@upstash/redis → Upstash REST bridge → redis-server)", async () =>
  upstashStore(),
);

describe("Upstash metrics store: keys, aggregation and outages", () => {
  it("two instances on one prefix read one aggregate (what the edge's isolates share)", async () => {
    const prefix = upstash.freshPrefix();
    const one = upstashStore(prefix);
    const two = upstashStore(prefix);
    await one.write({ add: { "edgeml_x_total|model=m": 2 } });
    await two.write({ add: { "edgeml_x_total|model=m": 3, edgeml_y_total: 1 } });
    expect(await one.readAll()).toEqual({ "edgeml_x_total|model=m": 5, edgeml_y_total: 1 });
  });

  it("keeps values under <prefix>metrics:v:<series> and their names in <prefix>metrics:index", async () => {
    const prefix = upstash.freshPrefix();
    await upstashStore(prefix).write({ add: { "edgeml_x_total|a=1": 4 } });
    const raw = upstash.client();
    expect(await raw.get(`${prefix}metrics:v:edgeml_x_total|a=1`)).toBe(4);
    expect(await raw.smembers(`${prefix}metrics:index`)).toEqual(["edgeml_x_total|a=1"]);
  });

  it("redis-server killed: writes and reads reject promptly; back up: counting resumes", async () => {
    const store = upstashStore();
    await store.write({ add: { k: 1 } });
    await upstash.redisServer.kill();
    try {
      await expect(store.write({ add: { k: 1 } })).rejects.toThrow();
      await expect(store.readAll()).rejects.toThrow();
    } finally {
      await upstash.redisServer.restart();
    }
    await eventually(async () => (await store.readAll().catch(() => null)) !== null, "bridge reconnects");
    await store.write({ add: { k: 2 } });
    // The restarted server has no persistence: counting starts again from what arrives after it.
    expect(await store.readAll()).toEqual({ k: 2 });
  });
});
