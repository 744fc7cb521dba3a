import { LRUCache } from "lru-cache";
import type { MetricsStore } from "../../telemetry/store.js";
import type { ArtifactStore } from "../artifacts.js";
import type { PredictionCache } from "../cache.js";
import type { Counters } from "../counters.js";
import type { JobStore, TrainingJob } from "../jobs.js";
import type { PointerStore } from "../pointers.js";
import {
  type Lease,
  type RateLimiter,
  type RateLimitOutcome,
  type RateLimitRule,
  ruleKey,
} from "../ratelimit.js";
import type { Mutex, SingleFlight } from "../single-flight.js";
import { fromWireError, type IpcClient, toWireError } from "./ipc-channel.js";
import type { FlightClaim } from "./ipc-host.js";
import type { JsonFilePointerStore } from "./json-file-pointers.js";

/** The kind every adapter here reports (start-up banner, /v2 health): the embedded store, held by the primary. */
export const PRIMARY_KIND = "primary-memory";

/**
 * The prediction cache held by the primary: one cache for every worker. A worker keeps a copy of what it read or
 * wrote until the primary's entry expires (the primary says how long it has left): a cached forecast is then
 * answered without a round trip to the primary, the same answer with the same prediction_id, since an entry is
 * written only when it is missing (single flight) and never changed while it lives. The copies are bounded
 * (`maxCopies`, least recently used dropped first) and kept as JSON text, parsed per read as the primary's cache
 * does, so a caller that changes what it got changes nothing here. The one way a copy can outlive the primary's
 * entry is the primary's LRU evicting it early (more than its 10,000 entries live at once); the next forecast of
 * that bar on another worker would then be computed again.
 */
export function createIpcCache(client: IpcClient, options: { maxCopies?: number } = {}): PredictionCache {
  const copies = new LRUCache<string, { text: string; expiresAt: number }>({
    max: options.maxCopies ?? 1_000,
  });
  // Expiry counted from before the call: never later than the primary's own.
  const keep = (key: string, value: unknown, ttlMs: number, since: number) => {
    if (ttlMs > 0) copies.set(key, { text: JSON.stringify(value), expiresAt: since + ttlMs });
  };
  return {
    kind: PRIMARY_KIND,
    async get<T>(key: string) {
      const copy = copies.get(key);
      if (copy) {
        if (copy.expiresAt > Date.now()) return JSON.parse(copy.text) as T;
        copies.delete(key);
      }
      const since = Date.now();
      // JSON has no undefined: a miss crosses the wire as an absent value.
      const entry = (await client.call("cache", "getEntry", [key])) as { value: T; ttlMs: number } | null;
      if (!entry) return undefined;
      keep(key, entry.value, entry.ttlMs, since);
      return entry.value;
    },
    async set(key, value, ttlMs) {
      const since = Date.now();
      await client.call("cache", "set", [key, value, ttlMs]);
      keep(key, value, ttlMs, since);
    },
  };
}

/** What a worker holds of a lease: requests it may still admit alone in `window`, and the budget left beside them. */
interface Held {
  window: number;
  credit: number;
  limit: number;
  /** The budget's remaining after the lease, not counting `credit`. */
  remaining: number;
  reset: number;
}

/**
 * Rate limits counted by the primary: one budget per client for the whole server, whatever worker answers. A call
 * per request would put a round trip to the primary on every request's path (measured: most of what a second
 * worker cost, docs/benchmarks.md "Multi-core"), so a worker leases several requests at once (the primary counts
 * them when it grants them: src/storage/ratelimit.ts says how many) and admits from its lease until it is spent or
 * its window ends. A client never gets more than its budget; near the budget's end leases are one request, decided
 * by the primary as before. One lease in flight per key and worker: requests arriving meanwhile wait for it.
 */
export function createIpcRateLimiter(client: IpcClient, options: { maxKeys?: number } = {}): RateLimiter {
  const held = new LRUCache<string, Held>({ max: options.maxKeys ?? 10_000 });
  const leasing = new Map<string, Promise<unknown>>();
  const fromHeld = (id: string, windowMs: number): Omit<RateLimitOutcome, "pending"> | undefined => {
    const h = held.get(id);
    if (!h || h.credit <= 0 || h.window !== Math.floor(Date.now() / windowMs)) return undefined;
    h.credit -= 1;
    return { success: true, limit: h.limit, remaining: h.remaining + h.credit, reset: h.reset };
  };
  const lease = async (id: string, key: string, rule: RateLimitRule) => {
    const { name, limit, windowMs } = rule;
    const granted = (await client.call("ratelimit", "lease", [key, { name, limit, windowMs }])) as Lease;
    if (granted.granted === 0) {
      held.delete(id);
      return { success: false, limit: granted.limit, remaining: 0, reset: granted.reset };
    }
    // One of the grant is this request's; the rest is held for the next ones, beside what concurrent leases of the
    // same window left (requests that found no credit lease at once, without waiting for each other).
    const before = held.get(id);
    const carried = before && before.window === granted.window ? before.credit : 0;
    const h: Held = {
      window: granted.window,
      credit: carried + granted.granted - 1,
      limit: granted.limit,
      remaining: granted.remaining,
      reset: granted.reset,
    };
    held.set(id, h);
    return { success: true, limit: h.limit, remaining: h.remaining + h.credit, reset: h.reset };
  };
  return {
    kind: PRIMARY_KIND,
    async limit(key, rule) {
      const id = ruleKey(key, rule);
      let outcome = fromHeld(id, rule.windowMs);
      const inFlight = outcome ? undefined : leasing.get(id);
      if (inFlight) {
        await inFlight.catch(() => {});
        outcome = fromHeld(id, rule.windowMs);
      }
      if (!outcome) {
        const asked = lease(id, key, rule);
        if (!leasing.has(id)) {
          leasing.set(id, asked);
          const done = () => {
            if (leasing.get(id) === asked) leasing.delete(id);
          };
          asked.then(done, done);
        }
        outcome = await asked;
      }
      return { ...outcome, pending: Promise.resolve() };
    },
  };
}

/** Usage counters held by the primary. */
export function createIpcCounters(client: IpcClient): Counters {
  return {
    kind: PRIMARY_KIND,
    // Sent, not called: the primary's memory cannot fail, and no request waits for it (usage is counted after the
    // answer). Still in order: a metrics read's flush notice is answered after it.
    async increment(amounts) {
      client.send("counters", "increment", [amounts]);
    },
    async read(keys) {
      return (await client.call("counters", "read", [keys])) as Record<string, number>;
    },
  };
}

/** The metrics store held by the primary; a read there first collects every worker's pending records. */
export function createIpcMetricsStore(client: IpcClient): MetricsStore {
  return {
    kind: PRIMARY_KIND,
    // Sent, not called, like the counters: the flush notice a read waits for is answered after it.
    async write(batch) {
      client.send("metrics", "write", [batch]);
    },
    async readAll() {
      return (await client.call("metrics", "readAll", [])) as Record<string, number>;
    },
  };
}

/** Training jobs held by the primary: a job started on one worker is polled on any. */
export function createIpcJobStore(client: IpcClient): JobStore {
  return {
    kind: PRIMARY_KIND,
    async put(job) {
      await client.call("jobs", "put", [job]);
    },
    async get(requestId) {
      return ((await client.call("jobs", "get", [requestId])) ?? undefined) as TrainingJob | undefined;
    },
  };
}

/**
 * Single flight across the workers: concurrent calls of a key in this worker share one claim, and the primary
 * makes one claim in the whole server the leader; the others receive its outcome. The leader settles after its work
 * resolves, so what the work sent before (the forecast's cache write) reaches the primary first: a later leader of
 * the same key finds it in the cache.
 */
export function createIpcSingleFlight(
  client: IpcClient,
  warn: (message: string, error: unknown) => void,
): SingleFlight {
  const local = new Map<string, Promise<unknown>>();
  const settle = (key: string, outcome: { ok: true; value: unknown } | { ok: false; error: unknown }) => {
    // Answered by the primary without anything to wait for; a failure means the wire is gone (the worker is ending).
    client
      .call("flights", "settle", [key, outcome])
      .catch((error: unknown) => warn("single flight: settle failed", error));
  };
  const lead = async <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const claim = (await client.call("flights", "claim", [key])) as FlightClaim;
    if (!claim.lead) {
      if (claim.ok) return claim.value as T;
      throw fromWireError(claim.error);
    }
    let value: T;
    try {
      value = await work();
    } catch (error) {
      settle(key, { ok: false, error: toWireError(error) });
      throw error;
    }
    settle(key, { ok: true, value });
    return value;
  };
  return {
    kind: PRIMARY_KIND,
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const shared = local.get(key);
      if (shared) return shared as Promise<T>;
      const run = lead(key, work).finally(() => local.delete(key));
      local.set(key, run);
      return run;
    },
  };
}

/** A named lock held through the primary: one holder in the whole server, the others wait in arrival order. */
export function createIpcMutex(client: IpcClient, name: string): Mutex {
  return {
    kind: PRIMARY_KIND,
    async run<T>(work: () => Promise<T>): Promise<T> {
      await client.call("locks", "acquire", [name]);
      try {
        return await work();
      } finally {
        await client.call("locks", "release", [name]).catch(() => {
          // The wire is gone with the primary: so is the lock.
        });
      }
    },
  };
}

/**
 * The JSON pointer file as a worker uses it: reads keep the file store's short-lived copy, and a change made here is
 * answered only once every other worker has dropped its copy (through the primary), so the request after a promote
 * serves the new champion whichever worker it reaches. A change the primary cannot announce (it is gone, and the
 * worker with it) is still written: the others then see it within the file store's cache TTL.
 */
export function createWorkerPointerStore(
  store: JsonFilePointerStore,
  client: IpcClient,
  warn: (message: string, error: unknown) => void,
): PointerStore {
  client.on("pointers", () => store.invalidate());
  const announce = () =>
    client
      .call("pointers", "changed", [])
      .catch((error: unknown) => warn("pointers: could not tell the other workers", error));
  return {
    kind: store.kind,
    get: (model) => store.get(model),
    async update(model, change) {
      const result = await store.update(model, change);
      await announce();
      return result;
    },
    async set(model, pointers, entry) {
      await store.set(model, pointers, entry);
      await announce();
    },
    history: (model) => store.history(model),
  };
}

/**
 * The model store as a worker uses it: a version it publishes is announced to the other workers (through the
 * primary), which forget their registry listing before the registration is answered: the version can be promoted or
 * served on any worker at once.
 */
export function createWorkerArtifactStore(
  store: ArtifactStore,
  client: IpcClient,
  warn: (message: string, error: unknown) => void,
): ArtifactStore {
  return {
    ...store,
    async publish(...args: Parameters<ArtifactStore["publish"]>) {
      const result = await store.publish(...args);
      await client
        .call("registry", "changed", [])
        .catch((error: unknown) => warn("registry: could not tell the other workers", error));
      return result;
    },
  };
}
