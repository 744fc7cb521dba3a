import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type EdgeConfigEmulatorHandle,
  startEdgeConfigEmulator,
} from "../../scripts/dev/edge-config-emulator";
import { EdgeMLError } from "../../src/errors.js";
import {
  createEdgeConfigPointerStore,
  type EdgeConfigPointerStoreOptions,
  edgeConfigKeyPart,
  edgeConfigKeys,
} from "../../src/storage/edge-config-pointers.js";
import { createJsonFilePointerStore } from "../../src/storage/json-file-pointers.js";
import type { AuditEntry } from "../../src/storage/pointers.js";
import { tempDir } from "../support/paths.js";
import { pointerStoreContract } from "./pointer-store.contract.js";

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
  "Vercel Edge Config (@vercel/edge-config + REST API against the local emulator)",
  async () => {
    const keyPrefix = freshPrefix();
    return {
      store: edgeStore({ keyPrefix }),
      sibling: () => edgeStore({ keyPrefix, cacheTtlMs: 0 }),
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
    expect(await edgeConfigKeys(model)).toEqual({
      pointers: `edgeml_pointers_${part}`,
      audit: `edgeml_audit_${part}`,
    });
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

  it("writes both items in one PATCH of the Vercel REST API, with the API token", async () => {
    const keyPrefix = freshPrefix();
    const store = edgeStore({ keyPrefix });
    const e = { ...promote("sk.gbr", "2"), reason: "beats naive" };
    await store.set("sk.gbr", { champion: "2" }, e);
    const patch = edge.requests().findLast((r) => r.method === "PATCH");
    expect(patch).toMatchObject({
      path: `/v1/edge-config/${edge.id}/items`,
      status: 200,
      headers: { authorization: `Bearer ${edge.apiToken}`, "content-type": "application/json" },
    });
    expect(edge.items()).toMatchObject({
      [`${keyPrefix}_pointers_sk_dgbr`]: { champion: "2" },
      [`${keyPrefix}_audit_sk_dgbr`]: [e],
    });
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

  it("keeps only the newest audit entries past the limit", async () => {
    const store = edgeStore({ auditLimit: 3 });
    for (const v of ["1", "2", "3", "4", "5"]) await store.set("m", { champion: v }, promote("m", v));
    expect((await store.history("m")).map((e) => e.to)).toEqual(["3", "4", "5"]);
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
    await edgeStore({ keyPrefix }).set("m", { champion: "2" }, promote("m", "2"));
    const store = edgeStore({ keyPrefix, cacheTtlMs: 0 });
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
      // Writes fail (nothing can be promoted blind), with a 503 as well.
      await expect(store.set("m", { champion: "3" }, promote("m", "3", "2"))).rejects.toMatchObject({
        code: "model_unavailable",
      });
    } finally {
      await up();
    }
    expect(await store.get("m")).toEqual({ champion: "2" });
  });

  it("a write the API refuses (bad token) is an internal error with the API's message", async () => {
    const store = edgeStore({ write: { id: edge.id, token: "wrong", apiBase: edge.url } });
    await expect(store.set("m", { champion: "1" }, promote("m", "1"))).rejects.toMatchObject({
      code: "internal",
      message: expect.stringMatching(/answered 403 .*Not authorized/),
    });
  });

  it("without write settings the store is read-only and says what to set", async () => {
    const store = edgeStore({ write: undefined });
    await expect(store.set("m", { champion: "1" }, promote("m", "1"))).rejects.toThrow(
      /EDGE_CONFIG_ID and VERCEL_API_TOKEN/,
    );
  });

  it("rejects settings that cannot work when it is built", () => {
    expect(() => edgeStore({ keyPrefix: "has.dot" })).toThrow(/keyPrefix must match/);
    expect(() => edgeStore({ connectionString: "" })).toThrow(/EDGE_CONFIG/);
    expect(() => edgeStore({ write: { id: "nope", token: "t" } })).toThrow(/starts with ecfg_/);
  });
});
