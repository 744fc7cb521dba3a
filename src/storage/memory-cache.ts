import { LRUCache } from "lru-cache";
import type { PredictionCache } from "./cache.js";

/** The in-process cache, which also tells how long an entry has left (what `npm start`'s workers keep copies for). */
export interface MemoryPredictionCache extends PredictionCache {
  getEntry<T>(key: string): Promise<{ value: T; ttlMs: number } | undefined>;
}

/**
 * The in-process prediction cache: an LRU with a TTL per entry. Bounded by count so a scan of many symbols cannot
 * grow it without limit; values are cloned through JSON on the way in, as a remote cache would, so a caller that
 * mutates a returned forecast cannot corrupt the cache.
 */
export function createMemoryCache(options: { maxEntries?: number } = {}): MemoryPredictionCache {
  const entries = new LRUCache<string, string>({ max: options.maxEntries ?? 10_000, ttlAutopurge: false });
  return {
    kind: "memory",
    async get<T>(key: string) {
      const text = entries.get(key);
      return text === undefined ? undefined : (JSON.parse(text) as T);
    },
    async getEntry<T>(key: string) {
      const text = entries.get(key);
      if (text === undefined) return undefined;
      return { value: JSON.parse(text) as T, ttlMs: Math.max(0, entries.getRemainingTTL(key)) };
    },
    async set(key, value, ttlMs) {
      entries.set(key, JSON.stringify(value), { ttl: ttlMs });
    },
  };
}
