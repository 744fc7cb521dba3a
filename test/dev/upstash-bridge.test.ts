import { createHash } from "node:crypto";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis, errors as upstashErrors } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type RedisServerHandle, startRedisServer } from "../../scripts/dev/redis-server";
import {
  startUpstashBridge,
  stripUnknownShebangFlags,
  type UpstashBridgeHandle,
} from "../../scripts/dev/upstash-bridge";

const TOKEN = "test-token";

type Algorithm = ConstructorParameters<typeof Ratelimit>[0]["limiter"];

let redisServer: RedisServerHandle;
let bridge: UpstashBridgeHandle;

beforeAll(async () => {
  redisServer = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: redisServer.url, token: TOKEN });
});

afterAll(async () => {
  await bridge?.close();
  await redisServer?.stop();
});

beforeEach(async () => {
  await new Redis({ url: bridge.url, token: TOKEN, enableAutoPipelining: false }).flushdb();
});

/** Polls a condition that depends on Redis's clock (key expiry) without asserting how long it takes. */
async function eventually(check: () => Promise<boolean>, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("condition never became true");
}

/** A raw REST call, to pin the wire format independently of the client's decoding. */
async function rest(path: string, init: RequestInit & { base64?: boolean } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TOKEN}`);
  if (init.base64) headers.set("upstash-encoding", "base64");
  return fetch(`${bridge.url}${path}`, { ...init, headers });
}

describe.each([
  { mode: "automatic pipelining (the client's default)", options: {} },
  { mode: "enableAutoPipelining: false", options: { enableAutoPipelining: false } },
])("@upstash/redis with $mode", ({ options }) => {
  const client = (): Redis => new Redis({ url: bridge.url, token: TOKEN, ...options });

  it("round-trips JSON values through set/get", async () => {
    const redis = client();
    const value = { model: "btc-gbdt", version: 3, metrics: { mape: 0.021 }, tags: ["a", "b"], ok: true };
    expect(await redis.set("prediction", value)).toBe("OK");
    expect(await redis.get("prediction")).toEqual(value);
    expect(await redis.get("missing")).toBeNull();
  });

  it("sets a TTL with EX and PX and expires the key", async () => {
    const redis = client();
    await redis.set("ex", "v", { ex: 100 });
    const ttl = await redis.ttl("ex");
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(100);

    await redis.set("px", "v", { px: 50 });
    expect(await redis.pttl("px")).toBeLessThanOrEqual(50);
    await eventually(async () => (await redis.get("px")) === null);
    expect(await redis.exists("px")).toBe(0);
    expect(await redis.ttl("ex")).toBeGreaterThan(0);
  });

  it("counts with incr, incrby and hincrby", async () => {
    const redis = client();
    expect(await redis.incr("hits")).toBe(1);
    expect(await redis.incrby("hits", 41)).toBe(42);
    expect(await redis.hincrby("per-model", "btc@3", 2)).toBe(2);
    expect(await redis.hincrby("per-model", "btc@3", 3)).toBe(5);
    expect(await redis.hgetall("per-model")).toEqual({ "btc@3": 5 });
  });

  it("mget returns values in order, with null for missing keys", async () => {
    const redis = client();
    await redis.set("a", { n: 1 });
    await redis.set("b", "text");
    expect(await redis.mget("a", "missing", "b")).toEqual([{ n: 1 }, null, "text"]);
  });

  it("deletes keys and scans by pattern", async () => {
    const redis = client();
    await Promise.all(["cache:1", "cache:2", "cache:3", "other"].map((key) => redis.set(key, 1)));
    expect(await redis.del("cache:3", "nope")).toBe(1);
    const seen: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, { match: "cache:*", count: 1 });
      seen.push(...keys);
      cursor = String(next);
    } while (cursor !== "0");
    expect(seen.sort()).toEqual(["cache:1", "cache:2"]);
  });

  it("keeps unicode and binary-ish strings intact", async () => {
    const redis = client();
    const samples = [
      "héllo wörld ✓ 🚀 日本語",
      "\u0000\u0001\u007f tab\tnewline\n",
      "T0s=",
      "OK",
      "007",
      "1e3",
      "",
    ];
    for (const [i, sample] of samples.entries()) {
      await redis.set(`s${i}`, sample);
      expect(await redis.get(`s${i}`)).toBe(sample);
    }
    expect(await redis.strlen("s0")).toBe(Buffer.byteLength(samples[0] ?? ""));
  });

  it("runs a pipeline: one result per command, errors reported per command", async () => {
    const redis = client();
    const pipeline = redis.pipeline();
    pipeline.set("p", "text");
    pipeline.get("p");
    pipeline.incr("p");
    pipeline.lpush("list", "x", "y");
    pipeline.lrange("list", 0, -1);
    const results = await pipeline.exec({ keepErrors: true });
    expect(results.map((r) => r.result)).toEqual(["OK", "text", undefined, 2, ["y", "x"]]);
    expect(results[2]?.error).toMatch(/^ERR value is not an integer/);
  });

  it("runs a transaction with multi-exec", async () => {
    const redis = client();
    await redis.set("balance", 10);
    const tx = redis.multi();
    tx.decrby("balance", 3);
    tx.incr("transfers");
    tx.get("balance");
    expect(await tx.exec()).toEqual([7, 1, 7]);
  });

  it("rejects with an UpstashError for an operation on the wrong type", async () => {
    const redis = client();
    await redis.set("a-string", "x");
    await expect(redis.hincrby("a-string", "f", 1)).rejects.toThrow(/WRONGTYPE/);
    await expect(redis.hincrby("a-string", "f", 1)).rejects.toBeInstanceOf(upstashErrors.UpstashError);
  });
});

describe("authorisation", () => {
  it("answers 401 to a wrong or missing token", async () => {
    const wrong = new Redis({ url: bridge.url, token: "wrong", enableAutoPipelining: false });
    await expect(wrong.get("k")).rejects.toThrow(/^Unauthorized/);
    const missing = await fetch(`${bridge.url}/`, { method: "POST", body: '["PING"]' });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: "Unauthorized" });
  });

  it("accepts the token as ?_token= too", async () => {
    const res = await fetch(`${bridge.url}/ping?_token=${TOKEN}`);
    expect(await res.json()).toEqual({ result: "PONG" });
  });
});

describe("wire format", () => {
  it("answers {result} for a JSON command array, plain text without Upstash-Encoding", async () => {
    await rest("/", { method: "POST", body: JSON.stringify(["SET", "k", "välue"]) });
    const res = await rest("/", { method: "POST", body: JSON.stringify(["GET", "k"]) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: "välue" });
  });

  it("base64-encodes every string with Upstash-Encoding: base64, nested arrays included", async () => {
    await rest("/", { method: "POST", body: JSON.stringify(["RPUSH", "l", "a", "välue"]) });
    const res = await rest("/", {
      method: "POST",
      body: JSON.stringify(["LRANGE", "l", 0, -1]),
      base64: true,
    });
    expect(await res.json()).toEqual({ result: [b64("a"), b64("välue")] });
    const status = await rest("/", { method: "POST", body: JSON.stringify(["SET", "x", "1"]), base64: true });
    expect(await status.json()).toEqual({ result: b64("OK") });
  });

  it("passes integers, nulls and nested arrays through", async () => {
    const res = await rest("/pipeline", {
      method: "POST",
      body: JSON.stringify([
        ["INCR", "n"],
        ["GET", "nothing"],
        ["ZADD", "z", 1, "m"],
        ["EVAL", "return {1, {'a', false}, 'b'}", 0],
      ]),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([
      { result: 1 },
      { result: null },
      { result: 1 },
      { result: [1, ["a", null], "b"] },
    ]);
  });

  it("answers 400 {error} for a failing single command and 200 with per-command errors for a pipeline", async () => {
    await rest("/set/s/x", { method: "POST" });
    const single = await rest("/", { method: "POST", body: JSON.stringify(["INCR", "s"]) });
    expect(single.status).toBe(400);
    expect(await single.json()).toEqual({ error: "ERR value is not an integer or out of range" });

    const pipeline = await rest("/pipeline", {
      method: "POST",
      body: JSON.stringify([["INCR", "s"], ["GET", "s"], ["NOSUCHCOMMAND"]]),
    });
    expect(pipeline.status).toBe(200);
    const body = (await pipeline.json()) as { error?: string; result?: unknown }[];
    expect(body[0]).toEqual({ error: "ERR value is not an integer or out of range" });
    expect(body[1]).toEqual({ result: "x" });
    expect(body[2]?.error).toMatch(/unknown command/);
  });

  it("accepts the path form with GET and POST (a POST body is the last argument)", async () => {
    expect(await (await rest("/set/path-key/v1")).json()).toEqual({ result: "OK" });
    expect(await (await rest("/set/body-key", { method: "POST", body: "from the body" })).json()).toEqual({
      result: "OK",
    });
    expect(await (await rest("/get/body-key")).json()).toEqual({ result: "from the body" });
    expect(await (await rest(`/get/${encodeURIComponent("path-key")}`)).json()).toEqual({ result: "v1" });
  });

  it("aborts a transaction with a queueing error and runs none of it", async () => {
    const res = await rest("/multi-exec", {
      method: "POST",
      body: JSON.stringify([["SET", "tx", "1"], ["INCR"]]),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/EXECABORT/);
    expect(await (await rest("/exists/tx")).json()).toEqual({ result: 0 });
  });

  it("refuses commands that would hijack the shared connection", async () => {
    const res = await rest("/", { method: "POST", body: JSON.stringify(["SELECT", "1"]) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "ERR SELECT is not supported by the edgeml upstash-bridge" });
  });

  it("answers an upstash-sync-token header", async () => {
    const res = await rest("/ping");
    expect(res.headers.get("upstash-sync-token")).toMatch(/^\d+$/);
  });
});

describe("Lua scripts with Upstash shebang flags", () => {
  const script = "#!lua flags=allow-key-locking,no-writes\nreturn redis.call('GET', KEYS[1])";

  it("strips only the flags Redis 7 does not know", () => {
    expect(stripUnknownShebangFlags(script)).toBe("#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])");
    expect(stripUnknownShebangFlags("#!lua flags=allow-key-locking\nreturn 1")).toBe("#!lua\nreturn 1");
    expect(stripUnknownShebangFlags("return 1")).toBe("return 1");
  });

  it("runs EVALSHA by the SHA-1 of the original script once it was loaded or evaluated", async () => {
    const redis = new Redis({ url: bridge.url, token: TOKEN, enableAutoPipelining: false });
    await redis.set("k", "v");
    await expect(redis.evalsha(sha1(script), ["k"], [])).rejects.toThrow(/NOSCRIPT/);
    expect(await redis.scriptLoad(script)).toBe(sha1(script));
    expect(await redis.scriptExists(sha1(script))).toEqual([1]);
    expect(await redis.evalsha(sha1(script), ["k"], [])).toBe("v");
    expect(await redis.eval(script, ["k"], [])).toBe("v");
  });
});

describe("@upstash/ratelimit", () => {
  // ephemeralCache: false so that every decision is made by the Lua scripts in Redis, not by the
  // limiter's in-process cache of blocked identifiers.
  const limiter = (algorithm: Algorithm, prefix: string): Ratelimit =>
    new Ratelimit({
      redis: new Redis({ url: bridge.url, token: TOKEN }),
      limiter: algorithm,
      prefix,
      ephemeralCache: false,
    });

  it.each([
    { name: "slidingWindow", make: () => Ratelimit.slidingWindow(3, "60 s") },
    { name: "fixedWindow", make: () => Ratelimit.fixedWindow(3, "60 s") },
    { name: "tokenBucket", make: () => Ratelimit.tokenBucket(1, "60 s", 3) },
  ])("$name allows N calls, then denies", async ({ name, make }) => {
    const ratelimit = limiter(make(), `rl-${name}`);
    const outcomes: boolean[] = [];
    for (let i = 0; i < 5; i++) outcomes.push((await ratelimit.limit("client-a")).success);
    expect(outcomes).toEqual([true, true, true, false, false]);
    // Another identifier has its own budget.
    expect((await ratelimit.limit("client-b")).success).toBe(true);
  });

  it("reports the remaining budget", async () => {
    const ratelimit = limiter(Ratelimit.fixedWindow(2, "60 s"), "rl-remaining");
    expect((await ratelimit.limit("c")).remaining).toBe(1);
    expect((await ratelimit.limit("c")).remaining).toBe(0);
    const denied = await ratelimit.limit("c");
    expect(denied.success).toBe(false);
    expect(denied.reason).toBeUndefined(); // decided by Redis, not a timeout or the local cache
  });
});

// Last: it replaces the redis-server (a restarted one is empty).
describe("when redis-server crashes", () => {
  it("fails calls promptly with a 503 error and recovers after a restart", { timeout: 20_000 }, async () => {
    const redis = new Redis({ url: bridge.url, token: TOKEN });
    await redis.set("before-crash", 1);

    await redisServer.kill();
    await expect(redis.get("before-crash")).rejects.toThrow(/redis is unavailable/);
    const raw = await rest("/ping");
    expect(raw.status).toBe(503);
    expect(((await raw.json()) as { error: string }).error).toMatch(/redis is unavailable/);

    await redisServer.restart();
    await eventually(async () => bridge.redisReady());
    expect(await redis.set("after-restart", 2)).toBe("OK");
    expect(await redis.get("after-restart")).toBe(2);
    expect(await redis.get("before-crash")).toBeNull();
  });
});

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** The digest clients compute for EVALSHA (and @upstash/ratelimit hard-codes for its scripts). */
function sha1(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}
