import { LRUCache } from "lru-cache";

/**
 * How a cache treats a key over time. Every policy shares concurrent loads of one key (single flight), and a
 * failed load is never kept as an answer: the next get loads again.
 *
 * - `singleFlight`: nothing is kept once a load settles; only concurrent gets share it.
 * - `ttl`: a loaded value answers for `ttlMs`; after that a get waits for a new load. With `staleOnError`, a
 *   failed reload answers with the last value instead, however old (a dependency that is down then degrades to
 *   what this process last saw).
 * - `swr` (stale-while-revalidate): a value older than `ttlMs` still answers at once while one background load
 *   refreshes it; a failed refresh keeps the old value. With no value at all, a get waits and sees the failure.
 * - `memo`: a loaded value is kept until evicted (for immutable values).
 *
 * A value is fresh while its age is below `ttlMs`. `ttlMs` 0 expires a value at once: every get loads again (`swr`
 * answers the last value meanwhile).
 */
export type CachePolicy =
  | { kind: "singleFlight" }
  | { kind: "ttl"; ttlMs: number; staleOnError?: boolean }
  | { kind: "swr"; ttlMs: number }
  | { kind: "memo" };

export interface AsyncCacheOptions<K extends {}, V extends {}, C> {
  policy: CachePolicy;
  /** Loads the value of `key`; `context` is what the get that started the load passed. */
  load: (key: K, context: C) => Promise<V>;
  /** Keys held at most, least recently used evicted first (default 10 000). */
  max?: number;
  /** The clock of the TTLs, in ms (default `performance.now`); tests inject one, starting above 0 (lru-cache reads a start of 0 as "no TTL"). */
  now?: () => number;
}

export interface AsyncCache<K extends {}, V extends {}, C = undefined> {
  /** The value of `key` by the policy: held, shared with a load in flight, or loaded now. */
  get(key: K, ...context: undefined extends C ? [context?: C] : [context: C]): Promise<V>;
  /** The value held for `key`, fresh or stale, without loading. */
  peek(key: K): V | undefined;
  /** Whether a value younger than the TTL is held. */
  fresh(key: K): boolean;
  set(key: K, value: V): void;
  /** Forgets `key`; a load in flight still answers the gets waiting for it, but its value is not kept. */
  delete(key: K): void;
  /** `delete` for every key. */
  clear(): void;
  /** The failure of the last load of `key`, until a load of it succeeds. */
  lastFailure(key: K): unknown;
  readonly size: number;
}

/**
 * One async cache over lru-cache's `fetchMethod`, with its options named by policy, so every cache in the code
 * base states its policy in one word where it is created and shares one tested implementation.
 */
export function createAsyncCache<K extends {}, V extends {}, C = undefined>(
  options: AsyncCacheOptions<K, V, C>,
): AsyncCache<K, V, C> {
  const { policy } = options;
  const max = options.max ?? 10_000;
  const ttlMs = policy.kind === "ttl" || policy.kind === "swr" ? policy.ttlMs : 0;
  if (!(Number.isInteger(ttlMs) && ttlMs >= 0)) {
    throw new TypeError(`createAsyncCache: ttlMs must be an integer >= 0, got ${ttlMs}`);
  }
  // lru-cache calls a value stale once its age exceeds its ttl; here a value expires when its age reaches ttlMs
  // (as the caches this replaced did), which on a clock of whole ms is lru-cache's ttl - 1. A ttl of 1 ms or less
  // expires at once (lru-cache reads a ttl of 0 as "never").
  const expiresAtOnce = (policy.kind === "ttl" || policy.kind === "swr") && ttlMs <= 1;
  const lruTtl = expiresAtOnce ? 0 : ttlMs - 1;
  const failures = new LRUCache<K, { error: unknown }>({ max });
  // The context is typed by `get`'s signature; inside, lru-cache sees it as unknown.
  const cache = new LRUCache<K, V, unknown>({
    max,
    ...(lruTtl > 0 ? { ttl: lruTtl } : {}),
    // Stale checks read the clock each time instead of lru-cache's 1 ms debounce timer: no timer is armed, and an
    // injected clock is read exactly.
    ttlResolution: 0,
    ...(options.now ? { perf: { now: options.now } } : {}),
    allowStale: policy.kind === "swr",
    // `swr` keeps the stale value through a failed refresh; `ttl` with staleOnError answers with it.
    noDeleteOnFetchRejection: policy.kind === "swr",
    allowStaleOnFetchRejection: policy.kind === "ttl" && policy.staleOnError === true,
    // A delete (an invalidation) or an eviction must not fail the gets already waiting on a load: they get its
    // value, which is then not kept.
    ignoreFetchAbort: true,
    fetchMethod: async (key, _stale, { context }) => {
      try {
        const value = await options.load(key, context as C);
        failures.delete(key);
        return value;
      } catch (error) {
        failures.set(key, { error });
        throw error;
      }
    },
  });

  const get = async (key: K, context?: C): Promise<V> => {
    const pending = cache.fetch(key, {
      ...(expiresAtOnce ? { forceRefresh: true } : {}),
      ...(context === undefined ? {} : { context }),
    });
    if (policy.kind === "singleFlight") {
      // Kept only until the load settles: drop the value unless a later load has replaced it.
      pending.then(
        (value) => {
          if (value !== undefined && cache.peek(key, { allowStale: true }) === value) cache.delete(key);
        },
        () => {},
      );
    }
    const value = await pending;
    if (value === undefined) {
      // lru-cache answers undefined when a load fails with no stale value to fall back on.
      throw failures.get(key)?.error ?? new Error("createAsyncCache: the load failed with no value to serve");
    }
    return value;
  };

  return {
    get: get as AsyncCache<K, V, C>["get"],
    peek: (key) => cache.peek(key, { allowStale: true }),
    fresh: (key) => !expiresAtOnce && cache.has(key),
    set: (key, value) => {
      cache.set(key, value);
      failures.delete(key);
    },
    delete: (key) => {
      cache.delete(key);
    },
    clear: () => cache.clear(),
    lastFailure: (key) => failures.get(key)?.error,
    get size() {
      return cache.size;
    },
  };
}
