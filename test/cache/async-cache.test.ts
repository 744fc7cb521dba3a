import { describe, expect, it } from "vitest";
import { type CachePolicy, createAsyncCache } from "../../src/cache/async-cache.js";

/** A load whose every call is held until the test settles it: concurrency without timers. */
function controlledLoad() {
  const calls: { key: string; resolve: (value: string) => void; reject: (error: unknown) => void }[] = [];
  const load = (key: string) =>
    new Promise<string>((resolve, reject) => {
      calls.push({ key, resolve, reject });
    });
  return { calls, load };
}

/** A cache over a load that answers `<key>#<n>` (n counts the loads of the key) or fails when told to. */
function counting(policy: CachePolicy) {
  let clock = 1_000;
  const loads = new Map<string, number>();
  const failing = new Set<string>();
  const cache = createAsyncCache<string, string>({
    policy,
    now: () => clock,
    load: async (key) => {
      const n = (loads.get(key) ?? 0) + 1;
      loads.set(key, n);
      if (failing.has(key)) throw new Error(`load ${n} of ${key} failed`);
      return `${key}#${n}`;
    },
  });
  return {
    cache,
    failing,
    loads: (key: string) => loads.get(key) ?? 0,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("createAsyncCache", () => {
  describe("single flight (every policy)", () => {
    for (const policy of [
      { kind: "singleFlight" },
      { kind: "ttl", ttlMs: 1_000 },
      { kind: "swr", ttlMs: 1_000 },
      { kind: "memo" },
    ] as CachePolicy[]) {
      it(`${policy.kind}: concurrent gets of one key share one load`, async () => {
        const { calls, load } = controlledLoad();
        const cache = createAsyncCache<string, string>({ policy, load });
        const gets = [cache.get("a"), cache.get("a"), cache.get("a")];
        expect(calls).toHaveLength(1);
        calls[0]?.resolve("A");
        expect(await Promise.all(gets)).toEqual(["A", "A", "A"]);
      });

      it(`${policy.kind}: a rejection is not kept: the next get loads again`, async () => {
        const t = counting(policy);
        t.failing.add("a");
        await expect(t.cache.get("a")).rejects.toThrow("load 1 of a failed");
        expect(t.cache.lastFailure("a")).toBeInstanceOf(Error);
        t.failing.delete("a");
        expect(await t.cache.get("a")).toBe("a#2");
        expect(t.cache.lastFailure("a")).toBeUndefined();
      });
    }

    it("singleFlight keeps nothing once the load settles", async () => {
      const t = counting({ kind: "singleFlight" });
      expect(await t.cache.get("a")).toBe("a#1");
      expect(await t.cache.get("a")).toBe("a#2");
      expect(t.cache.size).toBe(0);
    });

    it("passes the context of the get that started the load", async () => {
      const cache = createAsyncCache<string, string, number>({
        policy: { kind: "memo" },
        load: async (key, n) => `${key}:${n}`,
      });
      expect(await cache.get("a", 7)).toBe("a:7");
      expect(await cache.get("a", 8)).toBe("a:7");
    });
  });

  describe("ttl", () => {
    it("answers from memory while younger than ttlMs, then waits for a new load", async () => {
      const t = counting({ kind: "ttl", ttlMs: 1_000 });
      expect(await t.cache.get("a")).toBe("a#1");
      t.advance(999);
      expect(t.cache.fresh("a")).toBe(true);
      expect(await t.cache.get("a")).toBe("a#1");
      t.advance(1);
      expect(t.cache.fresh("a")).toBe(false);
      expect(await t.cache.get("a")).toBe("a#2");
    });

    it("drops the expired value when the reload fails", async () => {
      const t = counting({ kind: "ttl", ttlMs: 1_000 });
      await t.cache.get("a");
      t.advance(1_001);
      t.failing.add("a");
      await expect(t.cache.get("a")).rejects.toThrow("load 2 of a failed");
      expect(t.cache.peek("a")).toBeUndefined();
    });

    it("with staleOnError, a failed reload answers with the last value, however old", async () => {
      const t = counting({ kind: "ttl", ttlMs: 1_000, staleOnError: true });
      await t.cache.get("a");
      t.advance(60_000);
      t.failing.add("a");
      expect(await t.cache.get("a")).toBe("a#1");
      expect(await t.cache.get("a")).toBe("a#1");
      expect(t.loads("a")).toBe(3);
      t.failing.delete("a");
      expect(await t.cache.get("a")).toBe("a#4");
    });

    it("with staleOnError and nothing to fall back on, the failure shows", async () => {
      const t = counting({ kind: "ttl", ttlMs: 1_000, staleOnError: true });
      t.failing.add("a");
      await expect(t.cache.get("a")).rejects.toThrow("load 1 of a failed");
    });

    it("ttlMs 0 loads on every get, still one load for concurrent gets", async () => {
      const t = counting({ kind: "ttl", ttlMs: 0 });
      expect(await Promise.all([t.cache.get("a"), t.cache.get("a")])).toEqual(["a#1", "a#1"]);
      expect(await t.cache.get("a")).toBe("a#2");
      expect(t.cache.fresh("a")).toBe(false);
    });
  });

  describe("swr (stale-while-revalidate)", () => {
    it("answers a stale value at once while one background load refreshes it", async () => {
      const { calls, load } = controlledLoad();
      // lru-cache reads a start time of 0 as "no TTL": the clock starts later.
      let clock = 1_000;
      const cache = createAsyncCache<string, string>({
        policy: { kind: "swr", ttlMs: 100 },
        load,
        now: () => clock,
      });
      const first = cache.get("a");
      calls[0]?.resolve("v1");
      expect(await first).toBe("v1");
      clock += 101;
      expect(await cache.get("a")).toBe("v1");
      expect(await cache.get("a")).toBe("v1");
      expect(calls).toHaveLength(2);
      calls[1]?.resolve("v2");
      await flush();
      expect(await cache.get("a")).toBe("v2");
      expect(calls).toHaveLength(2);
    });

    it("keeps the stale value through a failed refresh, and refreshes again on the next get", async () => {
      const t = counting({ kind: "swr", ttlMs: 100 });
      await t.cache.get("a");
      t.advance(101);
      t.failing.add("a");
      expect(await t.cache.get("a")).toBe("a#1");
      await flush();
      expect(t.cache.lastFailure("a")).toBeInstanceOf(Error);
      expect(t.cache.peek("a")).toBe("a#1");
      t.failing.delete("a");
      expect(await t.cache.get("a")).toBe("a#1");
      await flush();
      expect(await t.cache.get("a")).toBe("a#3");
      expect(t.cache.lastFailure("a")).toBeUndefined();
    });

    it("with no value at all, waits for the load and shows its failure", async () => {
      const t = counting({ kind: "swr", ttlMs: 100 });
      t.failing.add("a");
      await expect(t.cache.get("a")).rejects.toThrow("load 1 of a failed");
    });

    it("ttlMs 0 refreshes on every get and answers the last value meanwhile", async () => {
      const t = counting({ kind: "swr", ttlMs: 0 });
      expect(await t.cache.get("a")).toBe("a#1");
      expect(await t.cache.get("a")).toBe("a#1");
      await flush();
      expect(t.loads("a")).toBe(2);
      expect(await t.cache.get("a")).toBe("a#2");
    });
  });

  describe("memo", () => {
    it("keeps a value however much time passes", async () => {
      const t = counting({ kind: "memo" });
      await t.cache.get("a");
      t.advance(365 * 86_400_000);
      expect(await t.cache.get("a")).toBe("a#1");
      expect(t.loads("a")).toBe(1);
    });

    it("evicts the least recently used key beyond max", async () => {
      const cache = createAsyncCache<string, string>({
        policy: { kind: "memo" },
        max: 2,
        load: async (k) => k,
      });
      await cache.get("a");
      await cache.get("b");
      await cache.get("c");
      expect(cache.peek("a")).toBeUndefined();
      expect(cache.size).toBe(2);
    });
  });

  describe("invalidation", () => {
    it("delete forgets a value: the next get loads again", async () => {
      const t = counting({ kind: "memo" });
      await t.cache.get("a");
      t.cache.delete("a");
      expect(await t.cache.get("a")).toBe("a#2");
    });

    it("a load in flight when its key is deleted answers its waiters but is not kept", async () => {
      const { calls, load } = controlledLoad();
      const cache = createAsyncCache<string, string>({ policy: { kind: "memo" }, load });
      const waiting = cache.get("a");
      cache.delete("a");
      const next = cache.get("a");
      expect(calls).toHaveLength(2);
      calls[0]?.resolve("old");
      expect(await waiting).toBe("old");
      expect(cache.peek("a")).toBeUndefined();
      calls[1]?.resolve("new");
      expect(await next).toBe("new");
      expect(await cache.get("a")).toBe("new");
    });

    it("clear forgets every key; set stores a value without a load", async () => {
      const t = counting({ kind: "memo" });
      await t.cache.get("a");
      t.cache.set("b", "given");
      expect(await t.cache.get("b")).toBe("given");
      t.cache.clear();
      expect(t.cache.size).toBe(0);
      expect(await t.cache.get("b")).toBe("b#1");
    });
  });

  it("refuses a TTL that cannot work when it is built", () => {
    expect(() => createAsyncCache({ policy: { kind: "ttl", ttlMs: -1 }, load: async () => 1 })).toThrow(
      TypeError,
    );
    expect(() => createAsyncCache({ policy: { kind: "swr", ttlMs: 0.5 }, load: async () => 1 })).toThrow(
      TypeError,
    );
  });
});
