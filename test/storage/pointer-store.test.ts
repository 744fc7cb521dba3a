import { mkdir, open, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type EdgeConfigEmulatorHandle,
  startEdgeConfigEmulator,
} from "../../scripts/dev/edge-config-emulator";
import { asEdgeMLError, EdgeMLError } from "../../src/errors.js";
import { type AuditLog, createMemoryAuditLog, createUpstashAuditLog } from "../../src/storage/audit-log.js";
import {
  createEdgeConfigPointerStore,
  type EdgeConfigPointerStoreOptions,
  edgeConfigKeyPart,
  edgeConfigKeys,
} from "../../src/storage/edge-config-pointers.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import type { AuditEntry } from "../../src/storage/pointers.js";
import { tempDir } from "../support/paths.js";
import { pointerStoreContract } from "./pointer-store.contract.js";
import { useLocalUpstash } from "./support/upstash.js";

const upstash = useLocalUpstash();

let edge: EdgeConfigEmulatorHandle;
beforeAll(async () => {
  edge = await startEdgeConfigEmulator({ maxSizeBytes: 8 * 1024 * 1024 });
});
afterAll(async () => {
  await edge?.close();
});

/** Each store gets a key namespace of its own in the one emulated Edge Config. */
const freshPrefix = () => `t${crypto.randomUUID().slice(0, 8)}`;

function edgeStore(overrides: Partial<EdgeConfigPointerStoreOptions> = {}) {
  return createEdgeConfigPointerStore({
    connectionString: edge.connectionString,
    write: { id: edge.id, token: edge.apiToken, apiBase: edge.url },
    keyPrefix: freshPrefix(),
    warn: () => {},
    ...overrides,
  });
}

pointerStoreContract("a JSON file (embedded)", async () => {
  const dir = await tempDir();
  const path = join(dir.path, "pointers.json");
  return {
    store: createJsonFilePointerStore(path),
    sibling: () => createJsonFilePointerStore(path),
    cleanup: dir.cleanup,
  };
});

pointerStoreContract(
  "Vercel Edge Config (@vercel/edge-config + REST API against the local emulator), audit log in memory",
  async () => {
    const keyPrefix = freshPrefix();
    const audit = createMemoryAuditLog();
    return {
      store: edgeStore({ keyPrefix, audit }),
      sibling: () => edgeStore({ keyPrefix, audit, cacheTtlMs: 0 }),
    };
  },
);

pointerStoreContract(
  "Vercel Edge Config (local emulator), audit log in Upstash Redis (@upstash/redis → bridge → redis-server)",
  async () => {
    const keyPrefix = freshPrefix();
    const auditPrefix = upstash.freshPrefix();
    const audit = () => createUpstashAuditLog(upstash.client(), { prefix: auditPrefix, timeoutMs: 15_000 });
    return {
      store: edgeStore({ keyPrefix, audit: audit() }),
      sibling: () => edgeStore({ keyPrefix, audit: audit(), cacheTtlMs: 0 }),
    };
  },
);

const promote = (model: string, to: string, from: string | null = null): AuditEntry => ({
  at: new Date().toISOString(),
  model,
  action: "promote",
  from,
  to,
});

describe("Edge Config keys", () => {
  it.each([
    ["BTC-24h", "BTC-24h"],
    ["sk_gbr", "sk__gbr"],
    ["sk.gbr", "sk_dgbr"],
    ["a._b", "a_d__b"],
  ])("model %s → key part %s", async (model, part) => {
    expect(await edgeConfigKeyPart(model)).toBe(part);
    expect(await edgeConfigKeys(model)).toEqual({ pointers: `edgeml_pointers_${part}` });
  });

  it("a name whose escaped form would pass Edge Config's 256-character limit uses its sha256", async () => {
    const keys = await edgeConfigKeys(`m${"._".repeat(63)}`);
    expect(keys.pointers).toMatch(/^edgeml_pointers__h[0-9a-f]{64}$/);
    for (const key of Object.values(keys)) expect(key).toMatch(/^[\w-]{1,256}$/);
  });
});

describe("Edge Config pointers: how they are read and written", () => {
  afterEach(() => {
    edge.setAvailable(true);
  });

  it("writes the model's one item in one PATCH of the Vercel REST API; the audit entry goes to the audit log", async () => {
    const keyPrefix = freshPrefix();
    const audit = createMemoryAuditLog();
    const store = edgeStore({ keyPrefix, audit });
    const e = { ...promote("sk.gbr", "2"), reason: "beats naive" };
    await store.set("sk.gbr", { champion: "2" }, e);
    const patch = edge.requests().findLast((r) => r.method === "PATCH");
    expect(patch).toMatchObject({
      path: `/v1/edge-config/${edge.id}/items`,
      status: 200,
      headers: { authorization: `Bearer ${edge.apiToken}`, "content-type": "application/json" },
    });
    expect(Object.entries(edge.items()).filter(([k]) => k.startsWith(keyPrefix))).toEqual([
      [`${keyPrefix}_pointers_sk_dgbr`, { champion: "2" }],
    ]);
    expect(await audit.history("sk.gbr")).toEqual([e]);
  });

  it("stays within a Hobby plan's 8 KB: many changes of many models never grow Edge Config past their pointers", async () => {
    const small = await startEdgeConfigEmulator({ maxSizeBytes: 8 * 1024 });
    try {
      const store = createEdgeConfigPointerStore({
        connectionString: small.connectionString,
        write: { id: small.id, token: small.apiToken, apiBase: small.url },
        audit: createMemoryAuditLog(),
      });
      for (let round = 1; round <= 20; round++) {
        for (const model of ["BTC-24h", "ETH-24h", "sk_gbr"]) {
          await store.set(
            model,
            { champion: String(round) },
            { ...promote(model, String(round)), reason: "x".repeat(200) },
          );
        }
      }
      expect(await store.get("ETH-24h")).toEqual({ champion: "20" });
      expect(Object.keys(small.items())).toHaveLength(3);
    } finally {
      await small.close();
    }
  });

  it("sends ?teamId= when the Edge Config belongs to a team", async () => {
    const store = edgeStore({
      write: { id: edge.id, token: edge.apiToken, apiBase: edge.url, teamId: "team_x" },
    });
    await store.set("m", { champion: "1" }, promote("m", "1"));
    expect(edge.requests().findLast((r) => r.method === "PATCH")?.path).toBe(
      `/v1/edge-config/${edge.id}/items?teamId=team_x`,
    );
  });

  it("a change whose audit entry cannot be recorded still takes effect, and the failure is reported", async () => {
    const warnings: string[] = [];
    const failing: AuditLog = {
      kind: "failing",
      append: () => Promise.reject(new Error("redis down")),
      history: () => Promise.reject(new Error("redis down")),
    };
    const store = edgeStore({ audit: failing, warn: (message) => warnings.push(message) });
    await store.set("m", { champion: "1" }, promote("m", "1"));
    expect(await store.get("m")).toEqual({ champion: "1" });
    expect(warnings).toEqual([
      expect.stringMatching(/changed, but the audit log \(failing\) could not record it/),
    ]);
    await expect(store.history("m")).rejects.toMatchObject({ code: "registry_unavailable", status: 503 });
  });

  it("a change in one process waits for the previous one of the same model: a promote and a pin both land", async () => {
    const store = edgeStore();
    await Promise.all([
      store.update("m", (current) => ({ pointers: { ...current, champion: "2" }, entry: promote("m", "2") })),
      store.update("m", (current) => ({
        pointers: { ...current, pinned: "1" },
        entry: { ...promote("m", "1"), action: "pin" },
      })),
    ]);
    expect(await store.get("m")).toEqual({ champion: "2", pinned: "1" });
  });

  it("serves reads from memory within the TTL: another instance's write shows once it expires", async () => {
    const keyPrefix = freshPrefix();
    let now = 1_000_000;
    const reader = edgeStore({ keyPrefix, cacheTtlMs: 5_000, now: () => now });
    const writer = edgeStore({ keyPrefix });
    expect(await reader.get("m")).toEqual({});
    await writer.set("m", { champion: "1" }, promote("m", "1"));
    // The request log is bounded: count this namespace's reads only.
    const reads = () =>
      edge.requests().filter((r) => r.method === "GET" && r.path.includes(keyPrefix)).length;
    const before = reads();
    expect(await reader.get("m")).toEqual({});
    expect(reads()).toBe(before);
    now += 5_000;
    expect(await reader.get("m")).toEqual({ champion: "1" });
  });

  it("the writing instance reads its own write at once, whatever the TTL", async () => {
    const store = edgeStore({ cacheTtlMs: 60_000 });
    expect(await store.get("m")).toEqual({});
    await store.set("m", { champion: "4" }, promote("m", "4"));
    expect(await store.get("m")).toEqual({ champion: "4" });
  });

  it.each([
    ["answering 503", () => edge.setAvailable(false), () => edge.setAvailable(true)],
    ["refusing connections", () => edge.stop(), () => edge.start()],
  ])("Edge Config %s: the last pointers read keep serving", async (_label, down, up) => {
    const keyPrefix = freshPrefix();
    const audit = createMemoryAuditLog();
    await edgeStore({ keyPrefix, audit }).set("m", { champion: "2" }, promote("m", "2"));
    const store = edgeStore({ keyPrefix, audit, cacheTtlMs: 0 });
    expect(await store.get("m")).toEqual({ champion: "2" });
    expect(await store.history("m")).toHaveLength(1);
    await down();
    try {
      expect(await store.get("m")).toEqual({ champion: "2" });
      expect(await store.history("m")).toHaveLength(1);
      // A model this instance never read cannot be answered: 503, not "no pointers".
      const error = await store.get("other").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EdgeMLError);
      expect(error).toMatchObject({ code: "model_unavailable", status: 503 });
      expect((error as Error).message).toMatch(/Edge Config is unreachable/);
      // Writes fail (nothing can be promoted blind): the store is unavailable, a 503 that says so.
      const write = await store.set("m", { champion: "3" }, promote("m", "3", "2")).catch((e: unknown) => e);
      expect(write).toMatchObject({ store: "Edge Config", failure: "unavailable" });
      expect(asEdgeMLError(write)).toMatchObject({ code: "store_unavailable", status: 503 });
      expect((write as Error).message).toMatch(/nothing was changed: try again shortly/);
    } finally {
      await up();
    }
    expect(await store.get("m")).toEqual({ champion: "2" });
  });

  it("a write the API refuses (bad token) is a refusal: 503 store_unavailable, the API's message and what to check", async () => {
    const store = edgeStore({ write: { id: edge.id, token: "wrong", apiBase: edge.url } });
    const error = await store.set("m", { champion: "1" }, promote("m", "1")).catch((e: unknown) => e);
    expect(error).toMatchObject({ store: "Edge Config", failure: "refused" });
    expect(asEdgeMLError(error)).toMatchObject({
      code: "store_unavailable",
      status: 503,
      message: expect.stringMatching(/answered 403 .*Not authorized.*check that VERCEL_API_TOKEN/),
    });
  });

  it("without write settings the store is read-only (403 forbidden) and says what to set", async () => {
    const store = edgeStore({ write: undefined });
    const error = await store.set("m", { champion: "1" }, promote("m", "1")).catch((e: unknown) => e);
    expect(asEdgeMLError(error)).toMatchObject({
      code: "forbidden",
      status: 403,
      message: expect.stringMatching(/EDGE_CONFIG_ID and VERCEL_API_TOKEN/),
    });
  });

  it("rejects settings that cannot work when it is built", () => {
    expect(() => edgeStore({ keyPrefix: "has.dot" })).toThrow(/keyPrefix must match/);
    expect(() => edgeStore({ connectionString: "" })).toThrow(/EDGE_CONFIG/);
    expect(() => edgeStore({ write: { id: "nope", token: "t" } })).toThrow(/starts with ecfg_/);
  });
});

describe("JSON file pointers: other processes, locks and damaged files", () => {
  const file = async () => {
    const dir = await tempDir();
    return { path: join(dir.path, "pointers.json"), dir: dir.path, cleanup: dir.cleanup };
  };

  it("two instances on one file (as the CLI and a server) racing many updates lose none", async () => {
    const f = await file();
    try {
      // Generous lock waits: on a loaded machine a 409 would be honest, but this test wants every update to land.
      const a = createJsonFilePointerStore(f.path, { lockWaitMs: 60_000 });
      const b = createJsonFilePointerStore(f.path, { lockWaitMs: 60_000 });
      const keys = Array.from({ length: 24 }, (_, i) => String(i + 1));
      const results = await Promise.allSettled(
        keys.map((key, i) =>
          (i % 2 === 0 ? a : b).update("m", (current) => ({
            pointers: { ...current, canary: { ...current.canary, [key]: 0 } },
            entry: promote("m", key),
          })),
        ),
      );
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
      const fresh = createJsonFilePointerStore(f.path, { cacheTtlMs: 0 });
      expect(Object.keys((await fresh.get("m")).canary ?? {}).sort()).toEqual([...keys].sort());
      expect((await fresh.history("m")).map((e) => e.to).sort()).toEqual([...keys].sort());
    } finally {
      await f.cleanup();
    }
  });

  it("a lock another process holds past lockWaitMs answers 409 conflict and writes nothing", async () => {
    const f = await file();
    try {
      const store = createJsonFilePointerStore(f.path, { lockWaitMs: 50 });
      await store.set("m", { champion: "1" }, promote("m", "1"));
      await mkdir(`${f.path}.lock`);
      const error = await store.set("m", { champion: "2" }, promote("m", "2", "1")).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "conflict", status: 409 });
      expect((error as Error).message).toMatch(
        /another process .* is changing the pointers in pointers\.json; try again/,
      );
      expect(await createJsonFilePointerStore(f.path, { cacheTtlMs: 0 }).get("m")).toEqual({ champion: "1" });
    } finally {
      await f.cleanup();
    }
  });

  it("a stale lock (its holder died) is taken over", async () => {
    const f = await file();
    try {
      await mkdir(`${f.path}.lock`);
      const old = new Date(Date.now() - 60_000);
      await utimes(`${f.path}.lock`, old, old);
      const store = createJsonFilePointerStore(f.path, { lockWaitMs: 50 });
      await store.set("m", { champion: "1" }, promote("m", "1"));
      expect(await store.get("m")).toEqual({ champion: "1" });
    } finally {
      await f.cleanup();
    }
  });

  it.each([
    ["truncated JSON", (path: string) => writeFile(path, '{"models": {"m": {"champ')],
    ["not a pointer document", (path: string) => writeFile(path, '{"models": {"m": {"champion": 3}}}')],
    ["a folder in its place", (path: string) => mkdir(path)],
  ])(
    "a pointer file that cannot be read (%s) is a 503 registry_unavailable, never overwritten",
    async (_label, damage) => {
      const f = await file();
      try {
        await damage(f.path);
        const store = createJsonFilePointerStore(f.path);
        const error = await store.get("m").catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EdgeMLError);
        expect(error).toMatchObject({ code: "registry_unavailable", status: 503 });
        expect((error as Error).message).toMatch(/the pointer file \(pointers\.json\) cannot be read/);
        expect((error as Error).message).not.toContain(f.dir);
        const before = await readFile(f.path, "utf8").catch(() => "folder");
        await expect(store.set("m", { champion: "1" }, promote("m", "1"))).rejects.toMatchObject({
          code: "registry_unavailable",
        });
        expect(await readFile(f.path, "utf8").catch(() => "folder")).toBe(before);
      } finally {
        await f.cleanup();
      }
    },
  );

  it("flushes the new file (fsync) before renaming it into place, and the folder after", async () => {
    const f = await file();
    const probe = await open(join(f.dir, "probe"), "w");
    const handles = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    await rm(join(f.dir, "probe"));
    const sync = vi.spyOn(handles, "sync");
    try {
      await createJsonFilePointerStore(f.path).set("m", { champion: "1" }, promote("m", "1"));
      expect(sync).toHaveBeenCalledTimes(2);
    } finally {
      sync.mockRestore();
      await f.cleanup();
    }
  });

  it("leaves no temporary or lock files behind", async () => {
    const f = await file();
    try {
      const store = createJsonFilePointerStore(f.path);
      await Promise.all(["1", "2", "3"].map((v) => store.set("m", { champion: v }, promote("m", v))));
      expect(await readdir(f.dir)).toEqual(["pointers.json"]);
    } finally {
      await f.cleanup();
    }
  });
});

describe("audit logs: a capped list per model", () => {
  const logs: [string, (limit: number) => AuditLog][] = [
    ["process memory", (limit) => createMemoryAuditLog({ limit })],
    [
      "Upstash Redis",
      (limit) =>
        createUpstashAuditLog(upstash.client(), { prefix: upstash.freshPrefix(), limit, timeoutMs: 15_000 }),
    ],
  ];
  it.each(logs)(
    "%s: keeps the newest entries past the limit, oldest first, models apart",
    async (_label, make) => {
      const log = make(3);
      for (const v of ["1", "2", "3", "4", "5"]) await log.append(promote("m", v));
      await log.append(promote("constructor", "9"));
      expect((await log.history("m")).map((e) => e.to)).toEqual(["3", "4", "5"]);
      expect((await log.history("constructor")).map((e) => e.to)).toEqual(["9"]);
      expect(await log.history("toString")).toEqual([]);
    },
  );
});
