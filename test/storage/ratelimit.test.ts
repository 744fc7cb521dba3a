import { describe, expect, it } from "vitest";
import { AppConfigSchema } from "../../src/config.js";
import { adaptersFromEnv } from "../../src/runtime/adapters.js";
import { configFromEnv } from "../../src/runtime/env.js";
import { createMemoryRateLimiter } from "../../src/storage/ratelimit.js";
import { StoreTimeoutError } from "../../src/storage/timeout.js";
import {
  createUpstashRateLimiter,
  type UpstashRateLimitRedisLike,
} from "../../src/storage/upstash-ratelimit.js";
import { rateLimiterContract } from "./ratelimit.contract.js";
import { eventually } from "./support/eventually.js";
import { useLocalUpstash } from "./support/upstash.js";

const upstash = useLocalUpstash();

rateLimiterContract("process memory (embedded)", async () => ({ store: createMemoryRateLimiter() }));

rateLimiterContract(
  "Upstash Redis (@upstash/ratelimit → @upstash/redis → Upstash REST bridge → redis-server)",
  async () => ({ store: createUpstashRateLimiter(upstash.client(), { prefix: upstash.freshPrefix() }) }),
);

const HOUR = 3_600_000;

describe("memory rate limiter: the sliding window, on a clock of its own", () => {
  it("weighs the previous window by how much of it still overlaps the last windowMs", async () => {
    let now = 10 * HOUR; // a window boundary
    const limiter = createMemoryRateLimiter({ now: () => now });
    const rule = { name: "public", limit: 4, windowMs: HOUR };
    for (let i = 0; i < 4; i++) expect((await limiter.limit("c", rule)).success).toBe(true);
    now += HOUR + HOUR / 4; // a quarter into the next window: 3/4 of the previous 4 still count
    const outcome = await limiter.limit("c", rule);
    expect(outcome).toMatchObject({ success: true, remaining: 0, reset: 12 * HOUR });
    expect((await limiter.limit("c", rule)).success).toBe(false);
    now += HOUR / 2; // three quarters in: 1 of the previous 4 counts, plus 1 in this window
    expect(await limiter.limit("c", rule)).toMatchObject({ success: true, remaining: 1 });
  });

  it("forgets the least recently seen client past maxKeys, so spoofed identities cannot grow the process", async () => {
    const limiter = createMemoryRateLimiter({ maxKeys: 2 });
    const rule = { name: "public", limit: 1, windowMs: HOUR };
    await limiter.limit("a", rule);
    await limiter.limit("b", rule);
    await limiter.limit("c", rule);
    expect((await limiter.limit("a", rule)).success).toBe(true);
    expect((await limiter.limit("c", rule)).success).toBe(false);
  });
});

describe("Upstash rate limiter: keys and outages", () => {
  it("keeps its counts under <prefix>ratelimit:<rule>:", async () => {
    const prefix = upstash.freshPrefix();
    const limiter = createUpstashRateLimiter(upstash.client(), { prefix });
    await limiter.limit("ip:203.0.113.7", { name: "public", limit: 5, windowMs: HOUR });
    const keys = await upstash.client().keys(`${prefix}*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^${prefix}ratelimit:public:5/3600000ms:ip:203\\.0\\.113\\.7:\\d+$`));
  });

  it("redis-server killed: limit() rejects (so the caller can fail open and count it); back up: limits again", async () => {
    const limiter = createUpstashRateLimiter(upstash.client(), { prefix: upstash.freshPrefix() });
    const rule = { name: "public", limit: 1, windowMs: HOUR };
    await upstash.redisServer.kill();
    try {
      await expect(limiter.limit("c", rule)).rejects.toThrow();
    } finally {
      await upstash.redisServer.restart();
    }
    await eventually(
      async () => (await limiter.limit("c", rule).catch(() => null)) !== null,
      "the bridge reconnects",
    );
    expect((await limiter.limit("c", rule)).success).toBe(false);
  });

  it("a Redis that never answers: limit() rejects with a StoreTimeoutError, not the library's silent success", async () => {
    const frozen = {
      evalsha: () => new Promise<never>(() => {}),
      get: () => new Promise<never>(() => {}),
      set: () => new Promise<never>(() => {}),
    } as unknown as UpstashRateLimitRedisLike;
    const limiter = createUpstashRateLimiter(frozen, { timeoutMs: 1 });
    await expect(limiter.limit("c", { name: "public", limit: 1, windowMs: HOUR })).rejects.toBeInstanceOf(
      StoreTimeoutError,
    );
  });
});

describe("wiring from the environment", () => {
  const embedded = {
    artifacts: () => ({ kind: "fs" }) as never,
    pointers: () => ({ kind: "file" }) as never,
  };

  it("rate limits on Upstash when its variables are set, in process memory otherwise", () => {
    const upstashEnv = {
      UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "t",
    };
    expect(adaptersFromEnv(upstashEnv, embedded).rateLimiter.kind).toBe("upstash");
    expect(adaptersFromEnv({}, embedded).rateLimiter.kind).toBe("memory");
  });

  it.each([
    [undefined, { limit: 600, windowMs: 60_000 }],
    ["600/60s", { limit: 600, windowMs: 60_000 }],
    ["60/m", { limit: 60, windowMs: 60_000 }],
    ["1200 / 1m", { limit: 1_200, windowMs: 60_000 }],
    ["10/500ms", { limit: 10, windowMs: 500 }],
    ["5000/1.5h", { limit: 5_000, windowMs: 5_400_000 }],
    ["OFF", null],
  ])("RATE_LIMIT_PUBLIC=%s is %o", (text, expected) => {
    expect(AppConfigSchema.parse({ rateLimitPublic: text }).rateLimitPublic).toEqual(expected);
  });

  it("reads RATE_LIMIT_PUBLIC, RATE_LIMIT_ADMIN, RATE_LIMIT_COLD_LOAD and API_KEYS (comma or newline separated)", () => {
    expect(
      configFromEnv({
        RATE_LIMIT_PUBLIC: "1200/1m",
        RATE_LIMIT_ADMIN: "off",
        RATE_LIMIT_COLD_LOAD: "5/10s",
        API_KEYS: "key-one-0123456789abcdef, key-two-0123456789abcdef\nkey-three-0123456789abc",
      }),
    ).toMatchObject({
      rateLimitPublic: "1200/1m",
      rateLimitAdmin: "off",
      rateLimitColdLoad: "5/10s",
      apiKeys: ["key-one-0123456789abcdef", "key-two-0123456789abcdef", "key-three-0123456789abc"],
    });
  });
});
