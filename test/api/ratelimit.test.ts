import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { AppDeps } from "../../src/app.js";
import type { AppConfigInput } from "../../src/config.js";
import { createOrtEngine } from "../../src/inference/engine.js";
import { consoleLogger } from "../../src/logger.js";
import { addressBucket, createRateLimit, platformAddress } from "../../src/routes/ratelimit.js";
import { nodeClientAddress } from "../../src/runtime/node/client-address.js";
import { createMemoryRateLimiter, type RateLimiter } from "../../src/storage/ratelimit.js";
import { StoreTimeoutError } from "../../src/storage/timeout.js";
import { productionAdapters } from "../storage/support/production-adapters.js";
import { ADAPTERS, ADMIN_TOKEN, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";

/** The limiter under test: process memory, or Upstash (real redis-server) in the production-adapters run. */
const limiter = (): RateLimiter =>
  ADAPTERS === "production" ? productionAdapters().rateLimiter : createMemoryRateLimiter();

/** Windows no test crosses (10 days): the sliding window would weigh a previous window in. */
const PER_10_DAYS = (n: number) => `${n}/240h`;
const TEN_DAYS_S = 240 * 3600;

/** Test clients are told apart by a header standing in for the platform's address (socket, x-real-ip, …). */
const byTestHeader = platformAddress("x-test-client");
const from = (client: string, init: RequestInit = {}): RequestInit => ({
  ...init,
  headers: { ...Object.fromEntries(new Headers(init.headers)), "x-test-client": client },
});

const apps: TestApp[] = [];
async function limitedApp(config: AppConfigInput, overrides: Partial<AppDeps> = {}): Promise<TestApp> {
  const t = await testApp(
    { rateLimitPublic: "off", rateLimitAdmin: "off", rateLimitColdLoad: "off", ...config },
    undefined,
    // The console logger, as in production: the fail-open tests read its warnings.
    { rateLimiter: limiter(), clientKey: byTestHeader, logger: consoleLogger, ...overrides },
  );
  apps.push(t);
  return t;
}
afterEach(async () => {
  vi.restoreAllMocks();
  for (const t of apps.splice(0)) await t.cleanup();
});

const limitHeaders = (res: Response) => ({
  limit: res.headers.get("ratelimit-limit"),
  remaining: res.headers.get("ratelimit-remaining"),
});

describe("rate limits: a budget per client", () => {
  it("answers 429 rate_limited past the limit, with Retry-After and RateLimit-* headers (seconds)", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(3) });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await t.request("/v2", from("203.0.113.7")));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(answers.map(limitHeaders)).toEqual([
      { limit: "3", remaining: "2" },
      { limit: "3", remaining: "1" },
      { limit: "3", remaining: "0" },
      { limit: "3", remaining: "0" },
    ]);
    for (const res of answers) {
      const reset = Number(res.headers.get("ratelimit-reset"));
      expect(reset).toBeGreaterThanOrEqual(0);
      expect(reset).toBeLessThanOrEqual(TEN_DAYS_S);
      expect(res.headers.get("ratelimit-policy")).toBe(`3;w=${TEN_DAYS_S}`);
    }
    const refused = answers[3] as Response;
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(TEN_DAYS_S);
    expect(await refused.json()).toEqual({
      error: expect.stringMatching(
        /^edgeml: too many requests from this client on the public routes: 3 per 864000 s; retry in \d+ s$/,
      ),
      code: "rate_limited",
      details: { limit: 3, window_seconds: TEN_DAYS_S, retry_after_seconds: retryAfter },
    });
  });

  it("puts the headers on every limited response, errors included", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(5) });
    const missing = await t.request("/v2/models/no-such-model", from("a"));
    expect(missing.status).toBe(404);
    expect(limitHeaders(missing)).toEqual({ limit: "5", remaining: "4" });
    const noRoute = await t.request("/nowhere", from("a"));
    expect(noRoute.status).toBe(404);
    expect(limitHeaders(noRoute)).toEqual({ limit: "5", remaining: "3" });
  });

  it("gives each client its own budget", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(1) });
    expect((await t.request("/v2", from("198.51.100.1"))).status).toBe(200);
    expect((await t.request("/v2", from("198.51.100.1"))).status).toBe(429);
    expect((await t.request("/v2", from("198.51.100.2"))).status).toBe(200);
  });

  it("keeps admin and public budgets apart, and counts admin requests before authentication", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(2), rateLimitAdmin: PER_10_DAYS(2) });
    const admin = (token: string) => from("a", { headers: { authorization: `Bearer ${token}` } });
    expect((await t.request("/v2", from("a"))).status).toBe(200);
    expect((await t.request("/v2", from("a"))).status).toBe(200);
    expect((await t.request("/v2", from("a"))).status).toBe(429);

    const listed = await t.request("/api/ml/models", admin(ADMIN_TOKEN));
    expect(listed.status).toBe(200);
    expect(limitHeaders(listed)).toEqual({ limit: "2", remaining: "1" });
    expect((await t.request("/api/ml/models", admin("a-wrong-token-guess-0001"))).status).toBe(401);
    const guessing = await t.request("/api/ml/models", admin("a-wrong-token-guess-0002"));
    expect(guessing.status).toBe(429);
    expect((await guessing.json()).error).toMatch(/on the admin routes: 2 per/);
    expect((await t.request("/api/ml/train", { ...admin(ADMIN_TOKEN), method: "POST" })).status).toBe(429);
    const status = "/api/ml/train/status?request_id=00000000-0000-4000-8000-000000000000";
    expect((await t.request(status, admin(ADMIN_TOKEN))).status).toBe(429);
  });

  it("'off' disables a budget: no header, no refusal", async () => {
    const t = await limitedApp({ rateLimitPublic: "off" });
    for (let i = 0; i < 5; i++) {
      const res = await t.request("/v2", from("a"));
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBeNull();
    }
  });

  it("never limits liveness: a refused probe would get a healthy server restarted", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(1) });
    for (let i = 0; i < 3; i++) expect((await t.request("/v2/health/live", from("a"))).status).toBe(200);
    expect((await t.request("/v2", from("a"))).status).toBe(200);
  });

  it("hands the limiter's pending work to waitUntil", async () => {
    let finish: () => void = () => {};
    const pending = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const handed: Promise<unknown>[] = [];
    const t = await limitedApp(
      { rateLimitPublic: PER_10_DAYS(5) },
      {
        rateLimiter: {
          kind: "fake",
          limit: async () => ({ success: true, limit: 5, remaining: 4, reset: Date.now() + 1000, pending }),
        },
        waitUntil: (work) => handed.push(work),
      },
    );
    expect((await t.request("/v2", from("a"))).status).toBe(200);
    let settled = false;
    const all = Promise.all(handed).then(() => {
      settled = true;
    });
    await Promise.resolve();
    expect(settled).toBe(false);
    finish();
    await all;
    expect(settled).toBe(true);
  });
});

describe("rate limits fail open: a limiter outage never refuses a request", () => {
  it.each([
    { failure: "an error (Redis down)", error: new Error("ECONNREFUSED 127.0.0.1:6379") },
    { failure: "a timeout", error: new StoreTimeoutError("Upstash Redis (rate limit)", 1000) },
  ])("on $failure: serves the request, counts it in stats().failedOpen, logs once", async ({ error }) => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const t = await limitedApp(
      { rateLimitPublic: PER_10_DAYS(1) },
      { rateLimiter: { kind: "broken", limit: () => Promise.reject(error) } },
    );
    for (let i = 0; i < 3; i++) {
      const res = await t.request("/v2", from("a"));
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBeNull();
    }
    expect(t.app.rateLimit.stats()).toEqual({ limited: { public: 0, admin: 0, coldLoad: 0 }, failedOpen: 3 });
    const logged = warn.mock.calls.filter(([message]) => String(message).includes("rate limiter"));
    expect(logged).toHaveLength(1);
    expect(String(logged[0]?.[0])).toMatch(/rate limiter \(broken\) unavailable; letting requests through/);
  });

  it("calls in flight when the limiter died and succeed late do not end the outage: still one line", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const memory = createMemoryRateLimiter();
    let releaseLate: () => void = () => {};
    const late = new Promise<void>((resolve) => {
      releaseLate = resolve;
    });
    let call = 0;
    const t = await limitedApp(
      { rateLimitPublic: PER_10_DAYS(100) },
      {
        rateLimiter: {
          kind: "dying",
          limit: async (key, rule) => {
            call += 1;
            if (call === 1) {
              await late; // started before the outage, answers after it began
              return memory.limit(key, rule);
            }
            throw new Error("down");
          },
        },
      },
    );
    const inFlight = t.request("/v2", from("a"));
    await t.request("/v2", from("a"));
    releaseLate();
    await inFlight;
    await t.request("/v2", from("a"));
    expect(warn.mock.calls.filter(([m]) => String(m).includes("rate limiter"))).toHaveLength(1);
    expect(t.app.rateLimit.stats().failedOpen).toBe(2);
  });

  it("logs again only after the limiter has answered in between (one line per outage)", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const memory = createMemoryRateLimiter();
    let down = true;
    const t = await limitedApp(
      { rateLimitPublic: PER_10_DAYS(100) },
      {
        rateLimiter: {
          kind: "flaky",
          limit: (key, rule) => (down ? Promise.reject(new Error("down")) : memory.limit(key, rule)),
        },
      },
    );
    await t.request("/v2", from("a"));
    await t.request("/v2", from("a"));
    down = false;
    await t.request("/v2", from("a"));
    down = true;
    await t.request("/v2", from("a"));
    expect(warn.mock.calls.filter(([m]) => String(m).includes("rate limiter"))).toHaveLength(2);
    expect(t.app.rateLimit.stats().failedOpen).toBe(3);
  });
});

describe("client identity", () => {
  it("an x-api-key the server was not given is ignored: the client is still counted by address", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(1), apiKeys: ["configured-key-0123456789"] });
    const key = (k: string) => from("a", { headers: { "x-api-key": k } });
    expect((await t.request("/v2", key("invented-key-aaaaaaaaaa"))).status).toBe(200);
    expect((await t.request("/v2", key("invented-key-bbbbbbbbbb"))).status).toBe(429);
  });

  it("a configured API key is the identity: one budget across addresses, apart from its addresses' own", async () => {
    const k = "configured-key-0123456789";
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(1), apiKeys: ["another-key-0123456789", k] });
    const withKey = (client: string) => from(client, { headers: { "x-api-key": k } });
    expect((await t.request("/v2", withKey("198.51.100.1"))).status).toBe(200);
    expect((await t.request("/v2", withKey("198.51.100.2"))).status).toBe(429);
    expect((await t.request("/v2", from("198.51.100.1"))).status).toBe(200);
  });

  it("refuses API keys shorter than 16 characters at start-up", async () => {
    await expect(limitedApp({ apiKeys: ["short"] })).rejects.toThrow(
      /each key in API_KEYS must be at least 16 characters/,
    );
  });

  it.each([
    ["RATE_LIMIT_PUBLIC", { rateLimitPublic: "lots" }],
    ["RATE_LIMIT_ADMIN", { rateLimitAdmin: "10 per minute" }],
    ["RATE_LIMIT_COLD_LOAD", { rateLimitColdLoad: "0/60s" }],
  ])("refuses a malformed %s at start-up, naming the expected form", async (variable, config) => {
    await expect(limitedApp(config)).rejects.toThrow(
      new RegExp(`${variable} must be "<requests>/<window>" such as "600/60s"`),
    );
  });

  it("without any address (and no API key) a request is not limited: one shared budget would lock everyone out", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(1) }, { clientKey: () => undefined });
    for (let i = 0; i < 3; i++) expect((await t.request("/v2")).status).toBe(200);
  });

  it.each([
    ["203.0.113.7", "203.0.113.7"],
    ["::ffff:203.0.113.7", "203.0.113.7"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::99", "2001:db8:1:2::/64"],
    ["2001:0db8:0000:0002:ffff::1", "2001:db8:0:2::/64"],
    ["::1", "0:0:0:0::/64"],
  ])("counts %s as %s (IPv6 by its /64)", (address, bucket) => {
    expect(addressBucket(address)).toBe(bucket);
  });

  it("Vercel and Cloudflare: the platform's own header, first entry of a list", async () => {
    const app = new Hono();
    const vercel = platformAddress("x-real-ip", "x-vercel-forwarded-for");
    const cloudflare = platformAddress("cf-connecting-ip");
    app.get("/", (c) => c.json({ vercel: vercel(c) ?? null, cloudflare: cloudflare(c) ?? null }));
    const seen = async (headers: Record<string, string>) => (await app.request("/", { headers })).json();
    expect(await seen({ "x-real-ip": "203.0.113.7", "x-forwarded-for": "10.0.0.1" })).toEqual({
      vercel: "203.0.113.7",
      cloudflare: null,
    });
    expect(await seen({ "x-vercel-forwarded-for": "203.0.113.8, 10.0.0.1" })).toEqual({
      vercel: "203.0.113.8",
      cloudflare: null,
    });
    expect(await seen({ "cf-connecting-ip": "2001:db8::1" })).toEqual({
      vercel: null,
      cloudflare: "2001:db8::1",
    });
  });

  it("refuses a TRUST_PROXY that is not one header name", () => {
    expect(() => nodeClientAddress("x-forwarded-for, x-real-ip")).toThrow(
      /TRUST_PROXY must name one HTTP header/,
    );
  });

  describe("Node server (a real socket)", () => {
    const servers: { close(): void }[] = [];
    const served: TestApp[] = [];
    const origins: Record<"socket" | "proxied", string> = { socket: "", proxied: "" };
    beforeAll(async () => {
      for (const [mode, trustProxy] of [
        ["socket", undefined],
        ["proxied", "X-Forwarded-For"],
      ] as const) {
        const t = await limitedApp(
          { rateLimitPublic: PER_10_DAYS(1) },
          { clientKey: nodeClientAddress(trustProxy) },
        );
        served.push(...apps.splice(apps.indexOf(t), 1));
        await new Promise<void>((listening) => {
          const server = serve(
            { fetch: t.app.app.fetch, port: 0, hostname: "127.0.0.1" },
            (info: AddressInfo) => {
              origins[mode] = `http://127.0.0.1:${info.port}`;
              listening();
            },
          );
          servers.push({ close: () => server.close() });
        });
      }
    });
    afterAll(async () => {
      for (const server of servers) server.close();
      for (const t of served) await t.cleanup();
    });
    const get = (origin: string, forwardedFor: string) =>
      fetch(`${origin}/v2`, { headers: { "x-forwarded-for": forwardedFor } }).then((r) => r.status);

    it("counts the socket address: a client's own X-Forwarded-For is ignored", async () => {
      expect(await get(origins.socket, "198.51.100.1")).toBe(200);
      expect(await get(origins.socket, "198.51.100.2")).toBe(429);
    });

    it("with TRUST_PROXY=X-Forwarded-For: the last entry, the one the trusted proxy appended", async () => {
      expect(await get(origins.proxied, "198.51.100.1")).toBe(200);
      expect(await get(origins.proxied, "6.6.6.6, 198.51.100.1")).toBe(429);
      expect(await get(origins.proxied, "198.51.100.1, 198.51.100.2")).toBe(200);
    });
  });
});

describe("cold loads: a client cycling versions that are not serving", () => {
  it("spends a small budget of its own, so it cannot make the server load sessions at will", async () => {
    const engine = createOrtEngine({ maxSessions: 2, maxSessionBytes: 1 << 30, timeoutMs: 30_000 });
    const t = await limitedApp(
      { rateLimitPublic: PER_10_DAYS(1_000), rateLimitColdLoad: PER_10_DAYS(3) },
      { engine },
    );
    for (let k = 1; k <= 4; k++) {
      const model = elementwiseModel({ op: "Add", elem: "FP64", shape: [k] });
      expect((await upload(t, "m", model)).status).toBe(201);
    }
    expect((await t.request("/v2/models/m/ready", from("a"))).status).toBe(200); // v4 serves (the latest)
    const loadsBefore = engine.stats().sessionsCreated;

    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      for (const v of [1, 2, 3])
        statuses.push((await t.request(`/v2/models/m/versions/${v}/ready`, from("a"))).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(12);
    expect(engine.stats().sessionsCreated - loadsBefore).toBeLessThanOrEqual(3);
    expect(t.app.rateLimit.stats().limited.coldLoad).toBe(12);

    const refused = await t.request("/v2/models/m/versions/1/infer", {
      ...from("a"),
      method: "POST",
      headers: { "content-type": "application/json", "x-test-client": "a" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP64", shape: [1], data: [1] }] }),
    });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({
      code: "rate_limited",
      error: expect.stringContaining(
        "naming a version that is not serving: 3 per 864000 s; use the serving version",
      ),
    });
    expect(refused.headers.get("ratelimit-limit")).toBe("3");
  });

  it("the serving version, named or not, and other clients are not held back", async () => {
    const t = await limitedApp({ rateLimitPublic: PER_10_DAYS(1_000), rateLimitColdLoad: PER_10_DAYS(1) });
    for (let k = 1; k <= 2; k++) {
      expect((await upload(t, "m", elementwiseModel({ op: "Add", elem: "FP64", shape: [k] }))).status).toBe(
        201,
      );
    }
    expect((await t.request("/v2/models/m/versions/1", from("a"))).status).toBe(200);
    expect((await t.request("/v2/models/m/versions/1", from("a"))).status).toBe(429);
    for (let i = 0; i < 3; i++) {
      const named = await t.request("/v2/models/m/versions/2/ready", from("a"));
      expect(named.status).toBe(200);
      expect(named.headers.get("ratelimit-limit")).toBe("1000");
      expect((await t.request("/v2/models/m/ready", from("a"))).status).toBe(200);
    }
    expect((await t.request("/v2/models/m/versions/1", from("b"))).status).toBe(200);
  });

  it("a serving check that never answers does not hold the request: it counts as a cold load", async () => {
    const { middleware } = createRateLimit({
      limiter: createMemoryRateLimiter(),
      limits: { public: null, admin: null, coldLoad: { limit: 1, windowMs: 240 * 3_600_000 } },
      apiKeys: [],
      clientAddress: () => "203.0.113.7",
      isServing: () => new Promise<boolean>(() => {}),
      defer: () => {},
      warn: () => {},
    });
    const app = new Hono();
    app.use("*", middleware);
    app.get("*", (c) => c.text("served"));
    expect((await app.request("/v2/models/m/versions/1")).status).toBe(200);
    expect((await app.request("/v2/models/m/versions/1")).status).toBe(429);
  });
});
