import { LRUCache } from "lru-cache";

/**
 * A rate-limit rule: at most `limit` requests per `windowMs` for each key. `name` keeps rules apart: the same key
 * counted under two rules has two independent budgets.
 */
export interface RateLimitRule {
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
}

/** One decision, in @upstash/ratelimit's shape so that its adapter passes it through. */
export interface RateLimitOutcome {
  /** Whether this request fits in the budget (it was counted only if it did). */
  success: boolean;
  /** The rule's limit. */
  limit: number;
  /** Requests left in the budget after this one. */
  remaining: number;
  /** Unix time in ms when the current window ends and the budget starts refilling. */
  reset: number;
  /** Side effects still running (the Upstash adapter's analytics, say): hand it to `waitUntil`. */
  pending: Promise<unknown>;
}

/**
 * Rate limiting: all the middleware needs from a limiter. Adapters: process memory (embedded default, `npm start`)
 * and Upstash Redis via `@upstash/ratelimit` (production, shared by every instance). Both count a sliding window:
 * the current fixed window plus the previous one weighted by how much of it still overlaps the last `windowMs`,
 * which keeps a client from spending two budgets across a window boundary.
 */
export interface RateLimiter {
  readonly kind: string;
  /** Counts one request of `key` under `rule`, unless the budget is spent. Rejects when the store fails. */
  limit(key: string, rule: RateLimitRule): Promise<RateLimitOutcome>;
}

export interface MemoryRateLimiterOptions {
  /**
   * Clients tracked at once, least recently seen forgotten first (default 100,000, a few MB). Bounded so that a
   * flood of spoofed identities cannot grow the process; a forgotten client starts with a full budget.
   */
  maxKeys?: number;
  /** Clock in ms, for tests; default Date.now. */
  now?: () => number;
}

interface WindowCounts {
  window: number;
  current: number;
  previous: number;
}

/**
 * A sliding-window limiter in process memory: per instance, gone on restart. The arithmetic is
 * @upstash/ratelimit's `slidingWindow` (its Lua script, line for line), so both adapters give the same answers and
 * pass one contract suite. Hand-written rather than a library because the well-kept in-memory limiters do not
 * fit: rate-limiter-flexible's memory store counts a fixed window (other numbers than production), keeps one timer
 * per key in an unbounded map, and its entry module requires `node:cluster`, which the edge bundles cannot load.
 * The bounded map is lru-cache, already a dependency.
 */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): RateLimiter {
  const now = options.now ?? Date.now;
  const counts = new LRUCache<string, WindowCounts>({ max: options.maxKeys ?? 100_000 });
  return {
    kind: "memory",
    async limit(key, rule) {
      const at = now();
      const window = Math.floor(at / rule.windowMs);
      const id = `${rule.name}\u0000${rule.limit}/${rule.windowMs}\u0000${key}`;
      let entry = counts.get(id);
      if (!entry || entry.window < window - 1) entry = { window, current: 0, previous: 0 };
      else if (entry.window === window - 1) entry = { window, current: 0, previous: entry.current };
      const overlap = 1 - (at % rule.windowMs) / rule.windowMs;
      const fromPrevious = Math.floor(overlap * entry.previous);
      const reset = (window + 1) * rule.windowMs;
      const done = Promise.resolve();
      if (fromPrevious + entry.current >= rule.limit) {
        counts.set(id, entry);
        return { success: false, limit: rule.limit, remaining: 0, reset, pending: done };
      }
      entry.current += 1;
      counts.set(id, entry);
      const remaining = Math.max(0, rule.limit - (entry.current + fromPrevious));
      return { success: true, limit: rule.limit, remaining, reset, pending: done };
    },
  };
}
