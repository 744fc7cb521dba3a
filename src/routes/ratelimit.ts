import type { Context, MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { createAsyncCache } from "../cache/async-cache.js";
import { ERROR_STATUS } from "../errors.js";
import type { RateLimiter, RateLimitOutcome, RateLimitRule } from "../storage/ratelimit.js";
import { withTimeout } from "../storage/timeout.js";
import { noteErrorCode } from "../telemetry/error-code.js";
import { sha256Hex } from "../util/hash.js";

/** A limit as configured: requests per window, or null when that limit is off. */
export type RateWindow = { limit: number; windowMs: number } | null;

/** The client's network address as the platform reports it (socket, or a header the platform sets). */
export type ClientAddress = (c: Context) => string | undefined;

export interface RateLimitOptions {
  limiter: RateLimiter;
  /** Per-client budgets: every public route, the admin routes, and requests that may load a cold session. */
  limits: { public: RateWindow; admin: RateWindow; coldLoad: RateWindow };
  /** Keys whose `x-api-key` header identifies a client instead of its address. */
  apiKeys: readonly string[];
  /**
   * Where the client's address comes from. A request with neither an address nor a configured API key is not
   * limited: one shared budget would let a single abuser lock every client out. Every runtime's wiring passes one.
   */
  clientAddress?: ClientAddress;
  /**
   * Whether `version` is the one `name` serves. A request naming any other version (or one of a model that cannot
   * be resolved) may load a session and evict a warm one, so it is also counted against the cold-load budget.
   */
  isServing: (name: string, version: string) => Promise<boolean>;
  /** Where the limiter's pending side effects go: the runtime's waitUntil. */
  defer: (work: Promise<unknown>) => void;
  warn: (message: string, error: unknown) => void;
}

export interface RateLimitStats {
  /** Requests answered 429, by budget. */
  limited: { public: number; admin: number; coldLoad: number };
  /** Limiter calls that failed (error or timeout) and let the request through. */
  failedOpen: number;
}

type Scope = "public" | "admin";

/** The admin routes (src/routes/admin.ts, /api/ml/train and its status): their own budget, counted before auth. */
const ADMIN_PATH = /^\/api\/ml\/(?:models|train)(?:\/|$)/;
/** Liveness costs nothing and probes must never be refused: a 429 there would get a healthy server restarted. */
const EXEMPT_PATHS = new Set(["/v2/health/live"]);
/**
 * The serving-version check runs before the route and its deadline: resolution is cached and takes microseconds,
 * but a stalled store must not hold the request here. Past this, the request counts as a cold load.
 */
const SERVING_CHECK_TIMEOUT_MS = 1_000;
/** `/v2/models/{name}/versions/{version}[/infer|/ready]`: the routes that load the version they name. */
const VERSIONED_PATH = /^\/v2\/models\/([^/]+)\/versions\/([^/]+)(?:\/(?:infer|ready))?\/?$/;

const decode = (part: string): string => {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
};

/**
 * The client's identity for rate limiting: `key:<fingerprint>` for an `x-api-key` the server was configured with
 * (compared in constant time, like the admin token), `ip:<address>` otherwise, undefined when neither is known.
 * An IPv6 address counts by its /64, the block one subscriber gets: counting each address would let a client spend
 * 2^64 budgets. The fingerprint (a SHA-256 prefix) keeps keys themselves out of Redis.
 */
export function createClientIdentity(apiKeys: readonly string[], clientAddress?: ClientAddress) {
  // Policy: memo: a key's fingerprint never changes, and only configured keys reach it, so it stays as small as they.
  const fingerprints = createAsyncCache<string, string>({
    policy: { kind: "memo" },
    load: async (key) => (await sha256Hex(key)).slice(0, 16),
  });
  return async (c: Context): Promise<string | undefined> => {
    const given = apiKeys.length > 0 ? c.req.header("x-api-key") : undefined;
    if (given) {
      let matched: string | undefined;
      // Every key is compared, so the time taken does not tell which one (or whether any) matched.
      for (const key of apiKeys) if ((await timingSafeEqual(given, key)) && !matched) matched = key;
      if (matched) return `key:${await fingerprints.get(matched)}`;
    }
    const address = clientAddress?.(c)?.trim();
    return address ? `ip:${addressBucket(address)}` : undefined;
  };
}

/** IPv4 (and IPv4-mapped IPv6) as is; other IPv6 addresses by their first four groups (the /64). */
export function addressBucket(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (!address.includes(":")) return address;
  const [head = "", tail] = address.toLowerCase().split("%")[0]?.split("::") ?? [];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/**
 * The client's address from a header a platform sets itself and clients cannot forge there: Vercel's `x-real-ip`,
 * Cloudflare's `cf-connecting-ip`. The first header present wins; a list (`x-vercel-forwarded-for`) gives its first
 * entry, the client as the platform's edge saw it.
 */
export function platformAddress(...headers: readonly string[]): ClientAddress {
  return (c) => {
    for (const header of headers) {
      const value = c.req.header(header)?.split(",")[0]?.trim();
      if (value) return value;
    }
    return undefined;
  };
}

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * Per-client rate limits (Hono middleware). Public routes and admin routes have separate budgets; a request naming
 * a version that is not serving also spends from a small cold-load budget. Limited responses carry
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the window ends) and `RateLimit-Policy`;
 * a refusal is 429 `rate_limited` with `Retry-After`.
 *
 * A limiter that fails (Redis down, a timeout) lets the request through: rate limiting protects the service and
 * must not become its outage. Each such request is counted (`stats().failedOpen`), and the outage is logged once,
 * when it starts.
 */
export function createRateLimit(options: RateLimitOptions): {
  middleware: MiddlewareHandler;
  stats(): RateLimitStats;
} {
  const { limiter, limits } = options;
  const rules = {
    public: limits.public && { name: "public", ...limits.public },
    admin: limits.admin && { name: "admin", ...limits.admin },
    coldLoad: limits.coldLoad && { name: "cold-load", ...limits.coldLoad },
  } satisfies Record<string, RateLimitRule | null>;
  const identify = createClientIdentity(options.apiKeys, options.clientAddress);
  const stats: RateLimitStats = { limited: { public: 0, admin: 0, coldLoad: 0 }, failedOpen: 0 };
  let failing = false;
  // Calls are numbered as they start. An outage ends only with a success of a call that started after the last
  // failure was seen: calls already in flight when Redis died may still succeed, and must not make the outage log
  // twice.
  let started = 0;
  let failureSeenAt = 0;

  const check = async (id: string, rule: RateLimitRule): Promise<RateLimitOutcome | undefined> => {
    const call = ++started;
    try {
      const outcome = await limiter.limit(id, rule);
      options.defer(outcome.pending);
      if (call > failureSeenAt) failing = false;
      return outcome;
    } catch (error) {
      stats.failedOpen += 1;
      failureSeenAt = started;
      if (!failing) {
        failing = true;
        options.warn(
          `rate limiter (${limiter.kind}) unavailable; letting requests through until it answers`,
          error,
        );
      }
      return undefined;
    }
  };

  const headersOf = (outcome: RateLimitOutcome, rule: RateLimitRule): Record<string, string> => ({
    "RateLimit-Limit": String(outcome.limit),
    "RateLimit-Remaining": String(outcome.remaining),
    "RateLimit-Reset": String(seconds(outcome.reset - Date.now())),
    "RateLimit-Policy": `${rule.limit};w=${seconds(rule.windowMs)}`,
  });

  const refuse = (c: Context, outcome: RateLimitOutcome, rule: RateLimitRule, what: string, hint: string) => {
    const retryAfter = Math.max(1, seconds(outcome.reset - Date.now()));
    noteErrorCode(c, "rate_limited");
    return c.json(
      {
        error: `edgeml: too many requests from this client ${what}: ${rule.limit} per ${seconds(rule.windowMs)} s; ${hint}retry in ${retryAfter} s`,
        code: "rate_limited",
        details: {
          limit: rule.limit,
          window_seconds: seconds(rule.windowMs),
          retry_after_seconds: retryAfter,
        },
      },
      ERROR_STATUS.rate_limited,
      { ...headersOf(outcome, rule), "Retry-After": String(retryAfter) },
    );
  };

  const middleware: MiddlewareHandler = async (c, next) => {
    const path = c.req.path;
    if (EXEMPT_PATHS.has(path)) return next();
    const scope: Scope = ADMIN_PATH.test(path) ? "admin" : "public";
    const rule = rules[scope];
    const versioned = scope === "public" && rules.coldLoad ? VERSIONED_PATH.exec(path) : null;
    if (!rule && !versioned) return next();
    const id = await identify(c);
    if (id === undefined) return next();

    let shown: { outcome: RateLimitOutcome; rule: RateLimitRule } | undefined;
    if (rule) {
      const outcome = await check(id, rule);
      if (outcome && !outcome.success) {
        stats.limited[scope] += 1;
        return refuse(c, outcome, rule, `on the ${scope} routes`, "");
      }
      if (outcome) shown = { outcome, rule };
    }
    const cold = rules.coldLoad;
    if (versioned && cold) {
      const name = decode(versioned[1] ?? "");
      const version = decode(versioned[2] ?? "");
      const serving = await withTimeout(
        options.isServing(name, version),
        SERVING_CHECK_TIMEOUT_MS,
        `resolving the serving version of '${name}'`,
      ).catch(() => false);
      if (!serving) {
        const outcome = await check(id, cold);
        if (outcome && !outcome.success) {
          stats.limited.coldLoad += 1;
          return refuse(
            c,
            outcome,
            cold,
            "naming a version that is not serving",
            "use the serving version (leave the version out of the path) or ",
          );
        }
        if (outcome && (!shown || outcome.remaining < shown.outcome.remaining))
          shown = { outcome, rule: cold };
      }
    }

    await next();
    if (shown) {
      const headers = headersOf(shown.outcome, shown.rule);
      try {
        for (const header in headers) c.res.headers.set(header, headers[header] as string);
      } catch {
        // A response with immutable headers (one passed through from fetch): copy it to add ours.
        c.res = new Response(c.res.body, c.res);
        for (const header in headers) c.res.headers.set(header, headers[header] as string);
      }
    }
  };

  return {
    middleware,
    stats: () => ({ limited: { ...stats.limited }, failedOpen: stats.failedOpen }),
  };
}
