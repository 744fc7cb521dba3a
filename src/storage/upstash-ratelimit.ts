import { Ratelimit } from "@upstash/ratelimit";
import type { RateLimiter, RateLimitRule } from "./ratelimit.js";
import { withTimeout } from "./timeout.js";
import { type UpstashAdapterOptions, upstashSettings } from "./upstash-cache.js";

/** All @upstash/ratelimit needs from `@upstash/redis`'s `Redis` (its own `Pick`), so fakes stay small. */
export type UpstashRateLimitRedisLike = ConstructorParameters<typeof Ratelimit>[0]["redis"];

/**
 * Rate limiting on Upstash Redis with `@upstash/ratelimit`'s sliding window: one Lua script (one request) per
 * decision, shared by every instance. Keys are `<prefix>ratelimit:<rule>:<key>:<window>`.
 *
 * One `Ratelimit` per rule (the library fixes the algorithm per instance), each keeping the library's ephemeral
 * cache: a client over its limit is refused from memory until its window resets, without a Redis call.
 * The library's own timeout answers `success: true` silently; it is off here, and `timeoutMs` (default 1 s, as
 * every Upstash adapter) rejects instead, so the middleware fails open *and counts it*.
 */
export function createUpstashRateLimiter(
  redis: UpstashRateLimitRedisLike,
  options: UpstashAdapterOptions = {},
): RateLimiter {
  const { prefix, timeoutMs } = upstashSettings(options, "ratelimit");
  const limiters = new Map<string, Ratelimit>();
  const limiterOf = (rule: RateLimitRule): Ratelimit => {
    const id = `${rule.name}:${rule.limit}/${rule.windowMs}ms`;
    let limiter = limiters.get(id);
    if (!limiter) {
      limiter = new Ratelimit({
        redis,
        limiter: Ratelimit.slidingWindow(rule.limit, `${rule.windowMs} ms`),
        // The rule's numbers are in the prefix: changing a limit starts fresh counts instead of reading the old ones.
        prefix: `${prefix}${id}`,
        timeout: 0,
        analytics: false,
        enableProtection: false,
        enableTelemetry: false,
      });
      limiters.set(id, limiter);
    }
    return limiter;
  };
  return {
    kind: "upstash",
    async limit(key, rule) {
      const outcome = await withTimeout(limiterOf(rule).limit(key), timeoutMs, "Upstash Redis (rate limit)");
      return {
        success: outcome.success,
        limit: outcome.limit,
        remaining: outcome.remaining,
        reset: outcome.reset,
        pending: outcome.pending,
      };
    },
  };
}
