import type { PredictionCache } from "./cache.js";
import { withTimeout } from "./timeout.js";

/**
 * All the adapters need from `@upstash/redis`'s `Redis` (ratelimit-js style): a fake or another client only has to
 * provide these. Values are written as JSON text and read back through the client's default JSON deserialisation,
 * which turns the text back into exactly the value written (strings that look like numbers included).
 */
export interface UpstashRedisLike {
  get<T>(key: string): Promise<T | null>;
  set(key: string, value: string, options: { px: number } | { ex: number }): Promise<unknown>;
}

/** Defaults of the Upstash adapters, each with why. */
export const UPSTASH_DEFAULTS = {
  /** Namespaces every key, so one Redis database can hold several deployments (and test runs). */
  prefix: "edgeml:",
  /**
   * A cache read is on the response path: past this, the forecast is computed uncached (x-cache BYPASS) rather than
   * waiting on a frozen Redis. Upstash answers in a few ms from the same region; 1 s leaves room for a cold TCP/TLS
   * connection and still keeps a stalled cache from dominating latency.
   */
  timeoutMs: 1_000,
} as const;

/**
 * Options for the `@upstash/redis` client the adapters share (src/runtime/adapters.ts). The client retries network
 * errors only, never an HTTP error status, and by default 5 times with exp(n)·50 ms between attempts: 4.3 s of
 * retrying that went on unseen after our 1 s timeout had already answered, holding a connection and able to land a
 * stale write seconds later. One retry after 20 ms is kept — the usual network error is a keep-alive connection the
 * server closed, which a new connection fixes at once — and every request is aborted at the adapters' timeout, so
 * the client's work ends when our wait does (a late write can then only be one already sent).
 */
export function upstashClientOptions(timeoutMs: number = UPSTASH_DEFAULTS.timeoutMs) {
  return {
    retry: { retries: 1, backoff: () => 20 },
    signal: () => AbortSignal.timeout(timeoutMs),
  };
}

export interface UpstashAdapterOptions {
  /** Key prefix; default `edgeml:`. */
  prefix?: string;
  /** Longest wait for one command before it fails as an outage; default 1 s. */
  timeoutMs?: number;
}

/** One adapter's key prefix (`<prefix><area>:`, its own namespace) and the timeout of each of its calls. */
export function upstashSettings(
  options: UpstashAdapterOptions,
  area: string,
): { prefix: string; timeoutMs: number } {
  return {
    prefix: `${options.prefix ?? UPSTASH_DEFAULTS.prefix}${area}:`,
    timeoutMs: options.timeoutMs ?? UPSTASH_DEFAULTS.timeoutMs,
  };
}

/**
 * The prediction cache on Upstash Redis: one key per entry (`<prefix>cache:<key>`), JSON text with a PX expiry.
 * Every call fails fast (default 1 s) when Redis is down or frozen, so the forecast service can serve uncached.
 * A cached `null` reads back as a miss (Redis's own "no such key").
 */
export function createUpstashCache(
  redis: UpstashRedisLike,
  options: UpstashAdapterOptions = {},
): PredictionCache {
  const { prefix, timeoutMs } = upstashSettings(options, "cache");
  return {
    kind: "upstash",
    async get<T>(key: string) {
      const value = await withTimeout(redis.get<T>(prefix + key), timeoutMs, "Upstash Redis (cache get)");
      return value ?? undefined;
    },
    async set(key, value, ttlMs) {
      // Redis rejects PX 0 and fractional PX; a sub-millisecond TTL still means "expire at once".
      const px = Math.max(1, Math.ceil(ttlMs));
      await withTimeout(
        redis.set(prefix + key, JSON.stringify(value), { px }),
        timeoutMs,
        "Upstash Redis (cache set)",
      );
    },
  };
}
