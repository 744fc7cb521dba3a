import { LRUCache } from "lru-cache";
import { createAsyncCache } from "../cache/async-cache.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import { modelNotFound, storeUnavailable } from "./failures.js";

/** Negative lookups remembered at most: a scan of random names must not grow memory without bound. */
const MAX_NEGATIVE_LOOKUPS = 10_000;

const ALL = "all";

export const byVersion = (a: string, b: string): number => Number(a) - Number(b);

/** The store's models and their versions (ascending), as the registry sees them; and what it knows is missing. */
export interface Listing {
  /** Every model's versions, from the cached listing. */
  all(): Promise<Map<string, string[]>>;
  /** A model's versions; a 404 `model_not_found` when the store has none. */
  versionsOf(name: string): Promise<string[]>;
  /** Whether the cached listing is younger than its TTL (then it answers for names it lacks too). */
  fresh(): boolean;
  /** Forgets the listing and the negative lookups: this process has just written. */
  invalidate(): void;
  /** Whether the last listing refresh succeeded (readiness). */
  ready(): Promise<boolean>;
  /** `name` or `name@version` that the store said it does not have, remembered for the TTL. */
  readonly missing: { has(key: string): boolean; set(key: string): void };
}

/**
 * The listing, stale-while-revalidate: an expired listing answers at once while one refresh runs in the background,
 * so no request waits on the store's list call (a slow Blob list would otherwise stall a request every few seconds).
 * A failed refresh keeps the last listing: versions are immutable, so it is still true, only perhaps incomplete.
 * With no listing at all, the request waits, and an outage shows. A name or version the store does not have is
 * remembered as missing for `ttlMs` (at most MAX_NEGATIVE_LOOKUPS of them).
 */
export function createListing(artifacts: ArtifactStore, ttlMs: number): Listing {
  // Policy: swr, one key. An invalidation while a refresh runs: its answer reaches the gets already waiting on it
  // (it was true when read) but is not kept, so no get after a local write sees a listing read before it.
  const cache = createAsyncCache<string, Map<string, string[]>>({
    policy: { kind: "swr", ttlMs },
    max: 1,
    load: async () => {
      const names = await artifacts.listModels();
      const entries = await Promise.all(
        names.map(async (name) => [name, (await artifacts.listVersions(name)).sort(byVersion)] as const),
      );
      return new Map(entries);
    },
  });
  const negative =
    ttlMs > 0 ? new LRUCache<string, true>({ max: MAX_NEGATIVE_LOOKUPS, ttl: ttlMs }) : undefined;
  const missing = {
    has: (key: string) => negative?.has(key) ?? false,
    set: (key: string) => {
      negative?.set(key, true);
    },
  };

  const all = () => cache.get(ALL).catch((error: unknown) => Promise.reject(storeUnavailable(error)));
  const fresh = () => cache.fresh(ALL);
  const invalidate = () => {
    cache.delete(ALL);
    negative?.clear();
  };

  return {
    all,
    fresh,
    invalidate,
    missing,
    async versionsOf(name) {
      const versions = (await all()).get(name);
      if (versions && versions.length > 0) return versions;
      // A listing younger than its TTL is as good as a negative lookup: a scan of random names costs the store
      // nothing. A model another instance registered shows here when the listing next refreshes.
      if (fresh() || missing.has(name)) throw modelNotFound(name);
      // The listing may be stale (another instance registered it): ask the store before saying 404.
      const listed = await artifacts
        .listVersions(name)
        .catch((error: unknown) => Promise.reject(storeUnavailable(error)));
      if (listed.length === 0) {
        missing.set(name);
        throw modelNotFound(name);
      }
      invalidate();
      return listed.sort(byVersion);
    },
    async ready() {
      try {
        await all();
      } catch {
        return false;
      }
      return cache.lastFailure(ALL) === undefined;
    },
  };
}
