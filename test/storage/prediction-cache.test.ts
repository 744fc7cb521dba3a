import { describe, expect, it } from "vitest";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import { createUpstashCache } from "../../src/storage/upstash-cache.js";
import { predictionCacheContract } from "./prediction-cache.contract.js";
import { eventually } from "./support/eventually.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "./support/upstash.js";

const upstash = useLocalUpstash();
const client = () => upstash.client();
const freshPrefix = () => upstash.freshPrefix();

predictionCacheContract("in-process LRU (embedded)", async () => ({ store: createMemoryCache() }));

predictionCacheContract("Upstash Redis (@upstash/redis → Upstash REST bridge → redis-server)", async () => ({
  store: createUpstashCache(client(), { prefix: freshPrefix(), timeoutMs: TEST_STORE_TIMEOUT_MS }),
}));

describe("Upstash cache: keys, expiry and outages", () => {
  it("stores JSON text under <prefix>cache:<key> with a PX expiry", async () => {
    const prefix = freshPrefix();
    const cache = createUpstashCache(client(), { prefix, timeoutMs: TEST_STORE_TIMEOUT_MS });
    await cache.set("forecast:v1:BTC-24h@2:24h:1", { p: 1.5 }, 60_000);
    const raw = upstash.client({ automaticDeserialization: false });
    expect(await raw.get(`${prefix}cache:forecast:v1:BTC-24h@2:24h:1`)).toBe('{"p":1.5}');
    const pttl = await raw.pttl(`${prefix}cache:forecast:v1:BTC-24h@2:24h:1`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it("redis-server killed: calls reject (so the forecast serves uncached); back up: caching works again", async () => {
    const cache = createUpstashCache(client(), { prefix: freshPrefix(), timeoutMs: TEST_STORE_TIMEOUT_MS });
    await cache.set("k", { v: 1 }, 60_000);
    await upstash.redisServer.kill();
    try {
      await expect(cache.get("k")).rejects.toThrow();
      await expect(cache.set("k", { v: 2 }, 60_000)).rejects.toThrow();
    } finally {
      await upstash.redisServer.restart();
    }
    // A restarted redis-server without persistence is empty: a miss, then the cache fills again.
    await eventually(
      async () => (await cache.get("k").catch(() => "down")) === undefined,
      "bridge reconnects",
    );
    await cache.set("k", { v: 3 }, 60_000);
    expect(await cache.get("k")).toEqual({ v: 3 });
  });

  it("a frozen redis-server fails a call after the timeout instead of hanging it", async () => {
    const prefix = freshPrefix();
    // Only the call made while Redis is frozen gets the short timeout: on a busy machine a healthy call may not
    // fit in 200 ms, and this test must not depend on that.
    const cache = createUpstashCache(client(), { prefix, timeoutMs: TEST_STORE_TIMEOUT_MS });
    const impatient = createUpstashCache(client(), { prefix, timeoutMs: 200 });
    await cache.set("k", { v: 1 }, 60_000);
    const pid = upstash.redisServer.pid as number;
    process.kill(pid, "SIGSTOP");
    try {
      await expect(impatient.get("k")).rejects.toThrow(/did not answer within 200 ms/);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    expect(await cache.get("k")).toEqual({ v: 1 });
  });
});
