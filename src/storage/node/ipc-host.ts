import { createMemoryMetricsStore, type MetricsStore } from "../../telemetry/store.js";
import type { PredictionCache } from "../cache.js";
import { type Counters, createMemoryCounters } from "../counters.js";
import type { TrainingJob } from "../jobs.js";
import { createMemoryJobStore, type JobStore } from "../jobs.js";
import { createMemoryCache, type MemoryPredictionCache } from "../memory-cache.js";
import {
  createMemoryRateLimiter,
  type Lease,
  type LeasingRateLimiter,
  type RateLimiter,
  type RateLimitRule,
} from "../ratelimit.js";
import {
  type CallMessage,
  isEdgemlMessage,
  type PrimaryMessage,
  type Topic,
  toWireError,
  unpack,
  type WireError,
} from "./ipc-channel.js";

/** What a waiting claim of a flight is answered: lead it, or the outcome of the run it waited for. */
export type FlightClaim =
  | { lead: true }
  | { lead: false; ok: true; value: unknown }
  | { lead: false; ok: false; error: WireError };

/** The embedded stores the primary holds for every worker; each defaults to the process-memory adapter. */
export interface HostedStores {
  cache?: PredictionCache;
  rateLimiter?: RateLimiter;
  counters?: Counters;
  metrics?: MetricsStore;
  jobs?: JobStore;
}

export interface IpcHost {
  /** A worker's wire is up: its calls are answered through `send`. */
  attach(worker: number, send: (message: PrimaryMessage) => void): void;
  /** A message from `worker` (anything that is not ours is ignored). */
  receive(worker: number, message: unknown): void;
  /**
   * The worker is gone: the flights it led pass to a worker waiting for them (or end), the locks it held pass to the
   * next in line, and a notification stops waiting for its answer.
   */
  detach(worker: number): void;
  /** Workers attached, flights in progress, locks held, and calls waiting for either (tests read these). */
  stats(): { workers: number; flights: number; locks: number; waiting: number };
}

interface Waiter {
  worker: number;
  id: number;
}

/**
 * A cache entry with the time it has left, so that a worker may keep a copy exactly that long (createIpcCache); an
 * adapter that cannot tell gives 0: no copy.
 */
async function cacheEntry(cache: PredictionCache, key: string) {
  if ("getEntry" in cache) return (cache as MemoryPredictionCache).getEntry(key);
  const value = await cache.get(key);
  return value === undefined ? undefined : { value, ttlMs: 0 };
}

/**
 * Several requests at once for a worker to spend itself (createIpcRateLimiter); a limiter that cannot lease grants
 * one request per call, which is `limit`.
 */
async function leaseFrom(rateLimiter: RateLimiter, key: string, rule: RateLimitRule): Promise<Lease> {
  if ("lease" in rateLimiter) return (rateLimiter as LeasingRateLimiter).lease(key, rule);
  const { pending, success, limit, remaining, reset } = await rateLimiter.limit(key, rule);
  await pending;
  return {
    granted: success ? 1 : 0,
    limit,
    remaining,
    reset,
    window: Math.floor(Date.now() / rule.windowMs),
  };
}

/**
 * The primary's side of the wire (src/storage/node/ipc-channel.ts): the stores every worker of one `npm start` shares,
 * held once here so that they count and cache once for the whole server.
 *
 * - cache, counters, jobs, rate limits: the embedded adapters, called as they are (`npm start` with one process
 *   calls the same ones in place); a rate limit is one budget for the server, not one per worker.
 * - metrics: before a read, every worker is asked to flush its pending telemetry (writes leave a worker after its
 *   response, off the response path), so a scrape on any worker counts every request answered before it.
 * - flights: one leader per key across workers; the others wait for its outcome (the forecast's JSON or its error).
 * - locks: named mutexes in arrival order (training: one job at a time on the whole server).
 *
 * Every handler answers or fails its call; none rejects unobserved: an adapter's failure is sent back as the call's
 * error.
 */
export function createIpcHost(stores: HostedStores = {}): IpcHost {
  const cache = stores.cache ?? createMemoryCache();
  const rateLimiter = stores.rateLimiter ?? createMemoryRateLimiter();
  const counters = stores.counters ?? createMemoryCounters();
  const metrics = stores.metrics ?? createMemoryMetricsStore();
  const jobs = stores.jobs ?? createMemoryJobStore();

  const workers = new Map<number, (message: PrimaryMessage) => void>();
  const notifications = new Map<number, { left: Set<number>; done: () => void }>();
  let nextNotification = 1;

  const send = (worker: number, message: PrimaryMessage) => {
    try {
      workers.get(worker)?.(message);
    } catch {
      // The worker died between its call and this answer: its exit detaches it.
    }
  };
  const answer = (to: Waiter, value: unknown) =>
    send(to.worker, { edgeml: "reply", id: to.id, ok: true, value });

  /** Resolves once every attached worker but `except` has handled `topic` (or is gone). */
  const notifyAll = (topic: Topic, except?: number) =>
    new Promise<void>((done) => {
      const id = nextNotification++;
      const left = new Set([...workers.keys()].filter((worker) => worker !== except));
      if (left.size === 0) return done();
      notifications.set(id, { left, done });
      for (const worker of [...left]) send(worker, { edgeml: "notify", id, topic });
    });
  const handled = (id: number, worker: number) => {
    const notification = notifications.get(id);
    if (!notification) return;
    notification.left.delete(worker);
    if (notification.left.size === 0) {
      notifications.delete(id);
      notification.done();
    }
  };

  const flights = flightTable(answer);
  const locks = lockTable(answer);

  /** Calls answered later than they arrive (a flight's waiters, a lock's queue). */
  const deferred = (call: CallMessage, from: Waiter): boolean => {
    const [name] = call.args as [string];
    if (call.port === "flights" && call.method === "claim") flights.claim(name, from);
    else if (call.port === "locks" && call.method === "acquire") locks.acquire(name, from);
    else return false;
    return true;
  };

  const handlers: Record<string, (args: unknown[], from: Waiter) => Promise<unknown> | unknown> = {
    "cache.getEntry": ([key]) => cacheEntry(cache, key as string),
    "cache.set": ([key, value, ttlMs]) => cache.set(key as string, value, ttlMs as number),
    "ratelimit.lease": ([key, rule]) => leaseFrom(rateLimiter, key as string, rule as RateLimitRule),
    "counters.increment": ([amounts]) => counters.increment(amounts as Record<string, number>),
    "counters.read": ([keys]) => counters.read(keys as string[]),
    "metrics.write": ([batch]) => metrics.write(batch as Parameters<MetricsStore["write"]>[0]),
    "metrics.readAll": async () => {
      await notifyAll("flush");
      return metrics.readAll();
    },
    "jobs.put": ([job]) => jobs.put(job as TrainingJob),
    "jobs.get": ([id]) => jobs.get(id as string),
    "flights.settle": ([key, outcome], from) => flights.settle(key as string, outcome as object, from.worker),
    // A worker changed the pointer file: the others drop what they read of it before the change is answered, so the
    // next request anywhere serves what the change says (the file's own cache would keep the old for up to a second).
    "pointers.changed": async (_args, from) => {
      await notifyAll("pointers", from.worker);
      return true;
    },
    // A worker registered a version: the others list the store again before the registration is answered.
    "registry.changed": async (_args, from) => {
      await notifyAll("registry", from.worker);
      return true;
    },
    "locks.release": ([name], from) => locks.release(name as string, from.worker),
  };

  const call = (message: CallMessage, worker: number) => {
    const from = { worker, id: message.id };
    if (deferred(message, from)) return;
    const handler = handlers[`${message.port}.${message.method}`];
    const reply = (ok: boolean, value: unknown) =>
      message.id !== 0 &&
      send(
        worker,
        ok
          ? { edgeml: "reply", id: message.id, ok: true, value }
          : { edgeml: "reply", id: message.id, ok: false, error: toWireError(value) },
      );
    if (!handler) {
      reply(false, new Error(`edgeml: no hosted method ${message.port}.${message.method}`));
      return;
    }
    // Started now, in arrival order: a worker's settle then its next claim, or a cache write then a read, take effect
    // in the order it sent them (the embedded stores do their work before their first await).
    let result: unknown;
    try {
      result = handler(Array.isArray(message.args) ? message.args : [], from);
    } catch (error) {
      reply(false, error);
      return;
    }
    Promise.resolve(result).then(
      (value) => reply(true, value),
      (error: unknown) => reply(false, error),
    );
  };

  return {
    attach(worker, sender) {
      workers.set(worker, sender);
    },
    receive(worker, received) {
      for (const message of unpack(received)) {
        if (!isEdgemlMessage(message)) continue;
        if (message.edgeml === "call") call(message as unknown as CallMessage, worker);
        else if (message.edgeml === "done") handled(Number(message.id), worker);
      }
    },
    detach(worker) {
      workers.delete(worker);
      flights.detach(worker);
      locks.detach(worker);
      for (const id of [...notifications.keys()]) handled(id, worker);
    },
    stats: () => ({
      workers: workers.size,
      flights: flights.size(),
      locks: locks.size(),
      waiting: flights.waiting() + locks.waiting(),
    }),
  };
}

/** One leader per key across workers; the others wait for its outcome. A dead leader's flight passes to a waiter. */
function flightTable(answer: (to: Waiter, value: unknown) => void) {
  const flights = new Map<string, { leader: number; waiters: Waiter[] }>();
  return {
    claim(key: string, from: Waiter) {
      const flight = flights.get(key);
      if (flight) flight.waiters.push(from);
      else {
        flights.set(key, { leader: from.worker, waiters: [] });
        answer(from, { lead: true } satisfies FlightClaim);
      }
    },
    /** The leader's outcome to every waiter; only the leader settles (a flight it lost for dead is another's now). */
    settle(key: string, outcome: object, worker: number): boolean {
      const flight = flights.get(key);
      if (!flight || flight.leader !== worker) return false;
      flights.delete(key);
      for (const waiter of flight.waiters) answer(waiter, { lead: false, ...outcome });
      return true;
    },
    detach(worker: number) {
      for (const [key, flight] of flights) {
        flight.waiters = flight.waiters.filter((w) => w.worker !== worker);
        if (flight.leader !== worker) continue;
        const next = flight.waiters.shift();
        if (next) {
          flight.leader = next.worker;
          answer(next, { lead: true } satisfies FlightClaim);
        } else flights.delete(key);
      }
    },
    size: () => flights.size,
    waiting: () => [...flights.values()].reduce((n, f) => n + f.waiters.length, 0),
  };
}

/** Named locks granted in arrival order; a dead holder's lock passes to the next in line. */
function lockTable(answer: (to: Waiter, value: unknown) => void) {
  const locks = new Map<string, { holder: Waiter; queue: Waiter[] }>();
  const grant = (name: string, to: Waiter) => {
    locks.set(name, { holder: to, queue: locks.get(name)?.queue ?? [] });
    answer(to, true);
  };
  const pass = (name: string) => {
    const next = locks.get(name)?.queue.shift();
    if (next) grant(name, next);
    else locks.delete(name);
  };
  return {
    acquire(name: string, from: Waiter) {
      const lock = locks.get(name);
      if (lock) lock.queue.push(from);
      else grant(name, from);
    },
    release(name: string, worker: number): boolean {
      if (locks.get(name)?.holder.worker !== worker) return false;
      pass(name);
      return true;
    },
    detach(worker: number) {
      for (const [name, lock] of locks) {
        lock.queue = lock.queue.filter((w) => w.worker !== worker);
        if (lock.holder.worker === worker) pass(name);
      }
    },
    size: () => locks.size,
    waiting: () => [...locks.values()].reduce((n, l) => n + l.queue.length, 0),
  };
}
