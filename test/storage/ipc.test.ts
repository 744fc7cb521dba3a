import { describe, expect, it, vi } from "vitest";
import { EdgeMLError } from "../../src/errors.js";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import {
  createIpcCache,
  createIpcCounters,
  createIpcJobStore,
  createIpcMetricsStore,
  createIpcMutex,
  createIpcRateLimiter,
  createIpcSingleFlight,
  createWorkerPointerStore,
} from "../../src/storage/node/ipc-adapters.js";
import type { IpcClient } from "../../src/storage/node/ipc-channel.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { createMemoryRateLimiter, type RateLimiter } from "../../src/storage/ratelimit.js";
import { createLocalSingleFlight } from "../../src/storage/single-flight.js";
import { tempDir } from "../support/paths.js";
import { metricsStoreContract } from "../telemetry/store.contract.js";
import { countersContract } from "./counters.contract.js";
import { jobStoreContract } from "./job-store.contract.js";
import { predictionCacheContract } from "./prediction-cache.contract.js";
import { rateLimiterContract } from "./ratelimit.contract.js";
import { eventually } from "./support/eventually.js";
import { ipcWire } from "./support/ipc-wire.js";

/**
 * The ports `npm start`'s workers reach in their primary (src/storage/node/ipc-*.ts), over a wire that serialises
 * and delays every message as node:cluster's does (test/storage/support/ipc-wire.ts). The real processes are
 * test/runtime/workers.test.ts.
 */
const oneWorker = () => ipcWire().worker().client;
const warn = () => {};
const RULE = { name: "public", limit: 5, windowMs: 10 * 24 * 3_600_000 };

predictionCacheContract("the primary's cache, over IPC", async () => ({
  store: createIpcCache(oneWorker()),
}));
rateLimiterContract("the primary's rate limiter, over IPC", async () => ({
  store: createIpcRateLimiter(oneWorker()),
}));
countersContract("the primary's counters, over IPC", async () => ({ store: createIpcCounters(oneWorker()) }));
jobStoreContract("the primary's job store, over IPC", async () => ({
  store: createIpcJobStore(oneWorker()),
}));
metricsStoreContract("the primary's metrics store, over IPC", async () => createIpcMetricsStore(oneWorker()));

/** A promise with its resolve outside: what a test opens when it chooses. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const opened = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe("two workers, one primary: the stores are one", () => {
  it("a forecast cached by one worker is a hit on the other", async () => {
    const wire = ipcWire();
    const [a, b] = [createIpcCache(wire.worker().client), createIpcCache(wire.worker().client)];
    await a.set("forecast:k", { prediction_id: "p1" }, 60_000);
    expect(await b.get("forecast:k")).toEqual({ prediction_id: "p1" });
  });

  it("a rate limit of R is R for the server, whichever worker each request reaches", async () => {
    const wire = ipcWire();
    const limiters = [createIpcRateLimiter(wire.worker().client), createIpcRateLimiter(wire.worker().client)];
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (limiters[i % 2] ?? limiters[0])?.limit("client", RULE)),
    );
    expect(outcomes.filter((o) => o?.success)).toHaveLength(RULE.limit);
  });

  it("usage counted on both workers adds up", async () => {
    const wire = ipcWire();
    const [a, b] = [createIpcCounters(wire.worker().client), createIpcCounters(wire.worker().client)];
    await Promise.all([a.increment({ n: 2 }), b.increment({ n: 3 })]);
    // Increments are sent without an answer, in order with what each worker sends next: a read from each worker
    // lands after its own increments.
    await b.read(["n"]);
    expect(await a.read(["n"])).toEqual({ n: 5 });
  });

  it("a metrics read on one worker first collects what every worker has recorded and not yet written", async () => {
    const wire = ipcWire();
    const [one, two] = [wire.worker().client, wire.worker().client];
    const [storeOne, storeTwo] = [createIpcMetricsStore(one), createIpcMetricsStore(two)];
    // Worker two has a record pending (its telemetry writes after the response): written only when flushed.
    let pending: Record<string, number> = { "edgeml_http_requests_total|route=/x": 1 };
    two.on("flush", async () => {
      await storeTwo.write({ add: pending });
      pending = {};
    });
    await storeOne.write({ add: { "edgeml_http_requests_total|route=/x": 2 } });
    expect(await storeOne.readAll()).toEqual({ "edgeml_http_requests_total|route=/x": 3 });
  });

  it("a metrics read does not wait for a worker that dies before it flushes", async () => {
    const wire = ipcWire();
    const one = wire.worker().client;
    const dying = wire.worker();
    const flushing = gate();
    dying.client.on("flush", () => {
      flushing.open();
      return new Promise<void>(() => {});
    });
    const read = createIpcMetricsStore(one).readAll();
    await flushing.opened;
    wire.kill(dying.id);
    expect(await read).toEqual({});
  });
});

/** A worker's client that counts the calls it makes to the primary. */
function counting(client: IpcClient) {
  const calls: string[] = [];
  const counted: IpcClient = {
    call: (port, method, args) => {
      calls.push(`${port}.${method}`);
      return client.call(port, method, args);
    },
    send: (port, method, args) => client.send(port, method, args),
    on: (topic, handler) => client.on(topic, handler),
    close: (reason) => client.close(reason),
    get pending() {
      return client.pending;
    },
  };
  return { client: counted, calls };
}

describe("the cache's copies in the workers", () => {
  it("a forecast read once is answered from the worker's copy: no call to the primary, a fresh object each read", async () => {
    const wire = ipcWire();
    await createIpcCache(wire.worker().client).set("forecast:k", { prediction_id: "p1" }, 60_000);
    const { client, calls } = counting(wire.worker().client);
    const cache = createIpcCache(client);
    const first = await cache.get<{ prediction_id: string }>("forecast:k");
    const second = await cache.get<{ prediction_id: string }>("forecast:k");
    expect(calls).toEqual(["cache.getEntry"]);
    expect(second).toEqual({ prediction_id: "p1" });
    expect(second).not.toBe(first);
    (second as { prediction_id: string }).prediction_id = "changed by a caller";
    expect(await cache.get("forecast:k")).toEqual({ prediction_id: "p1" });
  });

  it("a forecast the worker wrote is its copy too", async () => {
    const { client, calls } = counting(ipcWire().worker().client);
    const cache = createIpcCache(client);
    await cache.set("forecast:k", { prediction_id: "p1" }, 60_000);
    expect(await cache.get("forecast:k")).toEqual({ prediction_id: "p1" });
    expect(calls).toEqual(["cache.set"]);
  });

  it("a copy lives no longer than the primary's entry had left; then the worker asks again", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(1_000_000);
      const wire = ipcWire();
      await createIpcCache(wire.worker().client).set("forecast:k", { prediction_id: "p1" }, 60_000);
      const { client, calls } = counting(wire.worker().client);
      const cache = createIpcCache(client);
      await cache.get("forecast:k");
      vi.setSystemTime(1_000_000 + 60_001);
      await cache.get("forecast:k");
      expect(calls).toEqual(["cache.getEntry", "cache.getEntry"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a miss is not kept: the next read asks the primary, and finds what another worker wrote meanwhile", async () => {
    const wire = ipcWire();
    const { client, calls } = counting(wire.worker().client);
    const cache = createIpcCache(client);
    expect(await cache.get("forecast:k")).toBeUndefined();
    await createIpcCache(wire.worker().client).set("forecast:k", { prediction_id: "p1" }, 60_000);
    expect(await cache.get("forecast:k")).toEqual({ prediction_id: "p1" });
    expect(calls).toEqual(["cache.getEntry", "cache.getEntry"]);
  });

  it("nothing is kept when the primary's cache cannot tell how long an entry has left", async () => {
    const plain = createMemoryCache();
    const wire = ipcWire({
      cache: { kind: "plain", get: (k) => plain.get(k), set: (k, v, t) => plain.set(k, v, t) },
    });
    await createIpcCache(wire.worker().client).set("forecast:k", { prediction_id: "p1" }, 60_000);
    const { client, calls } = counting(wire.worker().client);
    const cache = createIpcCache(client);
    await cache.get("forecast:k");
    await cache.get("forecast:k");
    expect(calls).toEqual(["cache.getEntry", "cache.getEntry"]);
  });
});

describe("rate limits leased to the workers", () => {
  const BIG = { name: "public", limit: 600, windowMs: 10 * 24 * 3_600_000 };

  it.each([
    // [budget left, leased]: 1/8 of what is left, at most 32; one below 64 left; nothing once it is spent
    [600, 32],
    [256, 32],
    [255, 31],
    [80, 10],
    [64, 8],
    [63, 1],
    [8, 1],
    [1, 1],
    [0, 0],
  ])("with %i left, the primary leases %i", async (left, leased) => {
    const limiter = createMemoryRateLimiter();
    const rule = { name: "public", limit: 600, windowMs: BIG.windowMs };
    for (let i = 0; i < 600 - left; i++) await limiter.limit("c", rule);
    const lease = await limiter.lease("c", rule);
    expect({ granted: lease.granted, remaining: lease.remaining }).toEqual({
      granted: leased,
      remaining: left - leased,
    });
  });

  it("a worker admits from its lease: 32 requests cost one call to the primary, remaining counting down", async () => {
    const { client, calls } = counting(ipcWire().worker().client);
    const limiter = createIpcRateLimiter(client);
    const outcomes = [];
    for (let i = 0; i < 33; i++) outcomes.push(await limiter.limit("c", BIG));
    expect(calls).toEqual(["ratelimit.lease", "ratelimit.lease"]);
    expect(outcomes.every((o) => o.success)).toBe(true);
    expect(outcomes.map((o) => o.remaining)).toEqual(Array.from({ length: 33 }, (_, i) => 599 - i));
  });

  it("requests arriving while a lease is asked for wait for it instead of asking again", async () => {
    const { client, calls } = counting(ipcWire().worker().client);
    const limiter = createIpcRateLimiter(client);
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => limiter.limit("c", BIG)));
    expect(calls).toEqual(["ratelimit.lease"]);
    expect(outcomes.map((o) => o.remaining).sort((a, b) => b - a)).toEqual(
      Array.from({ length: 20 }, (_, i) => 599 - i),
    );
  });

  it("two workers asked until both refuse admit exactly the budget between them, never more", async () => {
    const wire = ipcWire();
    const workers = [createIpcRateLimiter(wire.worker().client), createIpcRateLimiter(wire.worker().client)];
    const budget = { ...BIG, limit: 100 };
    let admitted = 0;
    // Uneven turns (3 on one, 1 on the other): each worker's lease is spent by its own requests.
    for (let i = 0; i < 400; i++) {
      const worker = workers[i % 4 === 3 ? 1 : 0] as RateLimiter;
      if ((await worker.limit("c", budget)).success) admitted += 1;
    }
    expect(admitted).toBe(100);
    for (const worker of workers) expect((await worker.limit("c", budget)).success).toBe(false);
  });

  it("a lease is spent in its window or not at all: the next window asks the primary again", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const windowMs = 60_000;
      vi.setSystemTime(10 * windowMs);
      const { client, calls } = counting(ipcWire().worker().client);
      const limiter = createIpcRateLimiter(client);
      const rule = { ...BIG, windowMs };
      await limiter.limit("c", rule);
      await limiter.limit("c", rule);
      expect(calls).toHaveLength(1);
      vi.setSystemTime(11 * windowMs);
      await limiter.limit("c", rule);
      expect(calls).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a limiter that cannot lease (any other adapter the primary holds) grants one request per call", async () => {
    const only = createMemoryRateLimiter();
    const { client, calls } = counting(
      ipcWire({ rateLimiter: { kind: "plain", limit: (k, r) => only.limit(k, r) } }).worker().client,
    );
    const limiter = createIpcRateLimiter(client);
    const rule = { ...BIG, limit: 3 };
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await limiter.limit("c", rule));
    expect(outcomes.map((o) => o.success)).toEqual([true, true, true, false]);
    expect(calls).toHaveLength(4);
  });
});

describe("single flight across workers", () => {
  it("concurrent runs of one key on two workers run the work once; both get its answer", async () => {
    const wire = ipcWire();
    const flights = [
      createIpcSingleFlight(wire.worker().client, warn),
      createIpcSingleFlight(wire.worker().client, warn),
    ];
    let runs = 0;
    const release = gate();
    const work = async () => {
      runs += 1;
      await release.opened;
      return { prediction_id: `p${runs}` };
    };
    const first = flights[0]?.run("bar", work);
    // The second claim reaches the primary while the first leads: it waits there.
    await eventually(async () => wire.host.stats().flights === 1, "the first claim leads");
    const second = flights[1]?.run("bar", work);
    await eventually(async () => wire.host.stats().waiting === 1, "the second claim waits");
    release.open();
    expect(await Promise.all([first, second])).toEqual([{ prediction_id: "p1" }, { prediction_id: "p1" }]);
    expect(runs).toBe(1);
  });

  it("the same two runs with a flight per process run twice (what the primary prevents)", async () => {
    const flights = [createLocalSingleFlight(), createLocalSingleFlight()];
    let runs = 0;
    const work = async () => ({ prediction_id: `p${++runs}` });
    await Promise.all(flights.map((f) => f.run("bar", work)));
    expect(runs).toBe(2);
  });

  it("concurrent runs in one worker make one claim", async () => {
    const wire = ipcWire();
    const flight = createIpcSingleFlight(wire.worker().client, warn);
    let runs = 0;
    const results = await Promise.all([1, 2, 3].map(() => flight.run("bar", async () => ({ run: ++runs }))));
    expect(results).toEqual([{ run: 1 }, { run: 1 }, { run: 1 }]);
  });

  it("the leader's failure reaches the waiting worker as the same EdgeMLError", async () => {
    const wire = ipcWire();
    const [a, b] = [
      createIpcSingleFlight(wire.worker().client, warn),
      createIpcSingleFlight(wire.worker().client, warn),
    ];
    const release = gate();
    const failing = a.run("bar", async () => {
      await release.opened;
      throw new EdgeMLError("market_data_stale", "the BTC bars end on 2026-03-27; pass as_of");
    });
    await eventually(async () => wire.host.stats().flights === 1, "the first claim leads");
    const waiting = b.run("bar", async () => "never");
    await eventually(async () => wire.host.stats().waiting === 1, "the second claim waits");
    release.open();
    await expect(failing).rejects.toThrow("pass as_of");
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EdgeMLError);
    expect(error).toMatchObject({
      code: "market_data_stale",
      message: "edgeml: the BTC bars end on 2026-03-27; pass as_of",
    });
  });

  it("a leader that dies hands its flight to a waiting worker, which runs the work", async () => {
    const wire = ipcWire();
    const leader = wire.worker();
    const [a, b] = [
      createIpcSingleFlight(leader.client, warn),
      createIpcSingleFlight(wire.worker().client, warn),
    ];
    const started = gate();
    const orphaned = a.run("bar", async () => {
      started.open();
      return new Promise<string>(() => {});
    });
    void orphaned.catch(() => {});
    await started.opened;
    const waiting = b.run("bar", async () => "computed by the second worker");
    await eventually(async () => wire.host.stats().waiting === 1, "the second claim waits");
    wire.kill(leader.id);
    expect(await waiting).toBe("computed by the second worker");
  });

  it("keeps nothing once a run settles: the next run of the key runs again", async () => {
    const wire = ipcWire();
    const flight = createIpcSingleFlight(wire.worker().client, warn);
    let runs = 0;
    await flight.run("bar", async () => ++runs);
    expect(await flight.run("bar", async () => ++runs)).toBe(2);
  });
});

describe("the training lock across workers", () => {
  it("runs one holder at a time; the next starts once the first releases", async () => {
    const wire = ipcWire();
    const [a, b] = [
      createIpcMutex(wire.worker().client, "training"),
      createIpcMutex(wire.worker().client, "training"),
    ];
    const release = gate();
    const order: string[] = [];
    const first = a.run(async () => {
      order.push("a starts");
      await release.opened;
      order.push("a ends");
    });
    await eventually(async () => order.length === 1, "a holds the lock");
    const second = b.run(async () => {
      order.push("b starts");
    });
    await eventually(async () => wire.host.stats().waiting === 1, "b waits for the lock");
    expect(order).toEqual(["a starts"]);
    release.open();
    await Promise.all([first, second]);
    expect(order).toEqual(["a starts", "a ends", "b starts"]);
  });

  it("a holder that dies passes the lock to the next in line", async () => {
    const wire = ipcWire();
    const holder = wire.worker();
    const [a, b] = [
      createIpcMutex(holder.client, "training"),
      createIpcMutex(wire.worker().client, "training"),
    ];
    const started = gate();
    void a
      .run(async () => {
        started.open();
        await new Promise(() => {});
      })
      .catch(() => {});
    await started.opened;
    const second = b.run(async () => "b ran");
    await eventually(async () => wire.host.stats().waiting === 1, "b waits for the lock");
    wire.kill(holder.id);
    expect(await second).toBe("b ran");
  });
});

describe("the pointer file across workers", () => {
  const entry = (to: string) => ({
    at: new Date().toISOString(),
    model: "m",
    action: "promote" as const,
    from: null,
    to,
  });

  it("a promote answered on one worker is what the other reads next, though it had the file cached", async () => {
    const dir = await tempDir();
    try {
      const wire = ipcWire();
      // A cache far longer than the test: only the primary's notice can make the second worker read the file again.
      const file = () => createJsonFilePointerStore(`${dir.path}/pointers.json`, { cacheTtlMs: 3_600_000 });
      const a = createWorkerPointerStore(file(), wire.worker().client, warn);
      const b = createWorkerPointerStore(file(), wire.worker().client, warn);
      await a.set("m", { champion: "1" }, entry("1"));
      expect(await b.get("m")).toEqual({ champion: "1" });
      await a.set("m", { champion: "2" }, entry("2"));
      expect(await b.get("m")).toEqual({ champion: "2" });
    } finally {
      await dir.cleanup();
    }
  });

  it("without the notice the other worker serves its cached copy (what the primary's notice prevents)", async () => {
    const dir = await tempDir();
    try {
      const file = () => createJsonFilePointerStore(`${dir.path}/pointers.json`, { cacheTtlMs: 3_600_000 });
      const [a, b] = [file(), file()];
      await a.set("m", { champion: "1" }, entry("1"));
      expect(await b.get("m")).toEqual({ champion: "1" });
      await a.set("m", { champion: "2" }, entry("2"));
      expect(await b.get("m")).toEqual({ champion: "1" });
    } finally {
      await dir.cleanup();
    }
  });
});
