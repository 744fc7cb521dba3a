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

/** `key`'s budget under `rule`: its identity wherever counts or leases of it are kept. */
export const ruleKey = (key: string, rule: RateLimitRule): string =>
  `${rule.name}\u0000${rule.limit}/${rule.windowMs}\u0000${key}`;

/**
 * A sliding-window limiter in process memory: per instance, gone on restart. The arithmetic is
 * @upstash/ratelimit's `slidingWindow` (its Lua script, line for line), so both adapters give the same answers and
 * pass one contract suite. Hand-written rather than a library because the well-kept in-memory limiters do not
 * fit: rate-limiter-flexible's memory store counts a fixed window (other numbers than production), keeps one timer
 * per key in an unbounded map, and its entry module requires `node:cluster`, which the edge bundles cannot load.
 * The bounded map is lru-cache, already a dependency.
 */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): LeasingRateLimiter {
  const now = options.now ?? Date.now;
  const counts = new LRUCache<string, WindowCounts>({ max: options.maxKeys ?? 100_000 });
  /** Counts up to `want` requests of `key` at once: as many as the budget has room for (`limit` is want = 1). */
  const take = (key: string, rule: RateLimitRule, want: (available: number) => number): Lease => {
    const at = now();
    const window = Math.floor(at / rule.windowMs);
    const id = ruleKey(key, rule);
    let entry = counts.get(id);
    if (!entry || entry.window < window - 1) entry = { window, current: 0, previous: 0 };
    else if (entry.window === window - 1) entry = { window, current: 0, previous: entry.current };
    const overlap = 1 - (at % rule.windowMs) / rule.windowMs;
    const fromPrevious = Math.floor(overlap * entry.previous);
    const reset = (window + 1) * rule.windowMs;
    const available = rule.limit - (fromPrevious + entry.current);
    const granted = available > 0 ? Math.min(available, Math.max(1, want(available))) : 0;
    entry.current += granted;
    counts.set(id, entry);
    return { granted, limit: rule.limit, remaining: Math.max(0, available - granted), reset, window };
  };
  return {
    kind: "memory",
    async limit(key, rule) {
      const { granted, limit, remaining, reset } = take(key, rule, () => 1);
      return { success: granted > 0, limit, remaining, reset, pending: Promise.resolve() };
    },
    async lease(key, rule) {
      return take(key, rule, (available) =>
        available < LEASE_FROM ? 1 : Math.min(LEASE_MAX, Math.floor(available / LEASE_SHARE)),
      );
    },
  };
}

/**
 * Several requests counted at once, for a process that spends them itself: `npm start`'s workers lease from the
 * primary's limiter (src/storage/node/ipc-adapters.ts) so that most requests are decided without a call.
 */
export interface Lease {
  /** Requests counted for the caller to spend; 0 when the budget is spent (a refusal). */
  granted: number;
  limit: number;
  /** What the budget has left after the grant. */
  remaining: number;
  reset: number;
  /** The fixed window the grant belongs to (Math.floor(time / windowMs)): it is spent in that window or not at all. */
  window: number;
}

/**
 * A lease is 1/LEASE_SHARE of what the budget has left, at most LEASE_MAX requests, and one request once fewer than
 * LEASE_FROM are left: while a budget is far from spent a worker decides dozens of requests alone; near its end, and
 * for small budgets (admin 60/min, cold loads 20/min) throughout, every request is decided by the primary, exactly
 * as with one process. Leased requests are counted when leased: a client never gets more than its budget. What a
 * worker leased and did not spend by the window's end is lost (at most LEASE_MAX - 1 per worker and window, and only
 * when that worker stopped receiving the client's requests while at least LEASE_FROM were left).
 */
const LEASE_SHARE = 8;
const LEASE_MAX = 32;
const LEASE_FROM = 64;

/** A limiter that can also count several requests at once (the in-memory one, which the primary of `npm start` holds). */
export interface LeasingRateLimiter extends RateLimiter {
  lease(key: string, rule: RateLimitRule): Promise<Lease>;
}
