import { createClient } from "@vercel/edge-config";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type EdgeConfigEmulatorHandle,
  type EdgeConfigValue,
  startEdgeConfigEmulator,
} from "../../scripts/dev/edge-config-emulator";

const INITIAL: Record<string, EdgeConfigValue> = {
  champion: "btc-gbdt@3",
  canary: { version: "btc-gbdt@4", weight: 0.1 },
  pins: ["eth-ridge@1"],
  "kill-switch": false,
};

let emulator: EdgeConfigEmulatorHandle;

beforeAll(async () => {
  emulator = await startEdgeConfigEmulator({ id: "ecfg_test", token: "read-token", apiToken: "api-token" });
});

afterAll(async () => {
  await emulator?.close();
});

beforeEach(() => {
  emulator.setAvailable(true);
  emulator.setItems(INITIAL);
});

/** The production write path: Vercel's REST API. */
async function patchItems(body: unknown, apiToken = emulator.apiToken): Promise<Response> {
  return fetch(`${emulator.url}/v1/edge-config/${emulator.id}/items`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${apiToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("@vercel/edge-config createClient(connectionString)", () => {
  it("parses the emulator's connection string as an external Edge Config", () => {
    const client = createClient(emulator.connectionString);
    expect(client.connection).toEqual({
      type: "external",
      baseUrl: `${emulator.url}/ecfg_test`,
      id: "ecfg_test",
      token: "read-token",
      version: "1",
    });
  });

  describe("get(key)", () => {
    it("returns the value of an existing item", async () => {
      const client = createClient(emulator.connectionString);
      expect(await client.get("champion")).toBe("btc-gbdt@3");
      expect(await client.get("canary")).toEqual({ version: "btc-gbdt@4", weight: 0.1 });
      expect(await client.get("kill-switch")).toBe(false);
    });

    it("returns undefined when the item does not exist", async () => {
      const client = createClient(emulator.connectionString);
      expect(await client.get("no-such-key")).toBeUndefined();
    });

    it("sends the token as a Bearer header and ?version=1", async () => {
      await createClient(emulator.connectionString).get("pins");
      const request = emulator.requests().at(-1);
      expect(request?.path).toBe("/ecfg_test/item/pins?version=1");
      expect(request?.headers.authorization).toBe("Bearer read-token");
    });

    it("revalidates with If-None-Match and reads the new value after a write", async () => {
      const client = createClient(emulator.connectionString);
      expect(await client.get("pins")).toEqual(["eth-ridge@1"]);
      expect(await client.get("pins")).toEqual(["eth-ridge@1"]);
      expect(emulator.requests().at(-1)?.status).toBe(304);

      expect((await patchItems({ items: [{ operation: "upsert", key: "pins", value: [] }] })).status).toBe(
        200,
      );
      expect(await client.get("pins")).toEqual([]);
      expect(emulator.requests().at(-1)?.status).toBe(200);
    });
  });

  describe("getAll(keys?)", () => {
    it("returns every item", async () => {
      expect(await createClient(emulator.connectionString).getAll()).toEqual(INITIAL);
    });

    it("returns only the existing keys asked for", async () => {
      const client = createClient(emulator.connectionString);
      expect(await client.getAll(["champion", "pins", "missing"])).toEqual({
        champion: "btc-gbdt@3",
        pins: ["eth-ridge@1"],
      });
      expect(emulator.requests().at(-1)?.path).toBe(
        "/ecfg_test/items?version=1&key=champion&key=pins&key=missing",
      );
    });

    it("does not take Object.prototype members for items", async () => {
      const client = createClient(emulator.connectionString, { staleIfError: false });
      expect(await client.getAll(["constructor", "toString", "__proto__", "champion"])).toEqual({
        champion: "btc-gbdt@3",
      });
    });
  });

  describe("a plan's size limit", () => {
    it("refuses a write past maxSizeBytes (8 KB: a Hobby plan) as Vercel does", async () => {
      const hobby = await startEdgeConfigEmulator({ maxSizeBytes: 8 * 1024 });
      try {
        const res = await fetch(`${hobby.url}/v1/edge-config/${hobby.id}/items`, {
          method: "PATCH",
          headers: { authorization: `Bearer ${hobby.apiToken}`, "content-type": "application/json" },
          body: JSON.stringify({ items: [{ operation: "upsert", key: "audit", value: "x".repeat(9_000) }] }),
        });
        expect(res.status).toBe(400);
        expect((await res.json()).error.message).toMatch(/exceeds the limit of 8192 bytes/);
      } finally {
        await hobby.close();
      }
    });
  });

  describe("has(key)", () => {
    it("is true for an existing item and false otherwise (HEAD)", async () => {
      const client = createClient(emulator.connectionString);
      expect(await client.has("kill-switch")).toBe(true);
      expect(emulator.requests().at(-1)?.method).toBe("HEAD");
      expect(await client.has("missing")).toBe(false);
    });
  });

  describe("digest()", () => {
    it("changes after a PATCH and stays the same without one", async () => {
      const client = createClient(emulator.connectionString);
      const before = await client.digest();
      expect(before).toBe(emulator.digest());
      expect(await client.digest()).toBe(before);
      await patchItems({ items: [{ operation: "update", key: "champion", value: "btc-gbdt@4" }] });
      const after = await client.digest();
      expect(after).not.toBe(before);
      expect(after).toBe(emulator.digest());
    });
  });

  describe("errors", () => {
    it("rejects with Unauthorized for a wrong token", async () => {
      const client = createClient(`${emulator.url}/ecfg_test?token=wrong`);
      await expect(client.get("champion")).rejects.toThrow("@vercel/edge-config: Unauthorized");
      await expect(client.has("champion")).rejects.toThrow("@vercel/edge-config: Unauthorized");
    });

    it("rejects with 'Edge Config not found' for an unknown id", async () => {
      const client = createClient(`${emulator.url}/ecfg_other?token=read-token`);
      await expect(client.get("champion")).rejects.toThrow("@vercel/edge-config: Edge Config not found");
    });

    it("also accepts the token as ?token= on the request", async () => {
      const res = await fetch(`${emulator.url}/ecfg_test/item/champion?version=1&token=read-token`);
      expect(await res.json()).toBe("btc-gbdt@3");
    });
  });

  describe("during an outage", () => {
    it("rejects with the status when the client has no stale-if-error", async () => {
      // Any options object replaces the default { staleIfError: 604800 }.
      const client = createClient(emulator.connectionString, { cache: "no-store" });
      emulator.setAvailable(false);
      await expect(client.get("champion")).rejects.toThrow("status code 503");
      emulator.setAvailable(true);
      expect(await client.get("champion")).toBe("btc-gbdt@3");
    });

    it("serves the last good value with the default options (stale-if-error for a week)", async () => {
      const client = createClient(emulator.connectionString);
      expect(await client.get("canary")).toEqual(INITIAL.canary);
      emulator.setAvailable(false);
      expect(await client.get("canary")).toEqual(INITIAL.canary);
      expect(emulator.requests().at(-1)?.status).toBe(503);
    });

    it("fails while the emulator is not listening and works again after start()", async () => {
      const client = createClient(emulator.connectionString, { cache: "no-store" });
      await emulator.stop();
      await expect(client.get("champion")).rejects.toThrow();
      await emulator.start();
      expect(await client.get("champion")).toBe("btc-gbdt@3");
    });
  });

  describe("with NODE_ENV=development", () => {
    it("serves stale-while-revalidate unless disableDevelopmentCache is set", async () => {
      const previous = process.env.NODE_ENV;
      process.env.NODE_ENV = "development";
      try {
        // The development cache is keyed by connection string: a distinct one keeps this test independent.
        const connectionString = `${emulator.connectionString}&dev=1`;
        const swr = createClient(connectionString);
        const fresh = createClient(connectionString, { disableDevelopmentCache: true });
        expect(await swr.get("champion")).toBe("btc-gbdt@3");
        await patchItems({ items: [{ operation: "upsert", key: "champion", value: "btc-gbdt@5" }] });
        expect(await swr.get("champion")).toBe("btc-gbdt@3"); // stale, while it refetches in the background
        expect(await fresh.get("champion")).toBe("btc-gbdt@5");
      } finally {
        process.env.NODE_ENV = previous;
      }
    });
  });
});

describe("Vercel REST API", () => {
  describe("PATCH /v1/edge-config/{id}/items", () => {
    it("applies create, update, upsert and delete in one batch", async () => {
      const res = await patchItems({
        items: [
          { operation: "create", key: "new_key", value: { a: 1 }, description: "added by a test" },
          { operation: "update", key: "champion", value: "btc-gbdt@9" },
          { operation: "upsert", key: "pins", value: null },
          { operation: "delete", key: "kill-switch" },
        ],
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ok" });
      expect(emulator.items()).toEqual({
        champion: "btc-gbdt@9",
        canary: INITIAL.canary,
        pins: null,
        new_key: { a: 1 },
      });
    });

    it.each([
      { case: "a key outside ^[\\w-]+$", item: { operation: "upsert", key: "bad key", value: 1 } },
      { case: "a key with a dot", item: { operation: "upsert", key: "model.version", value: 1 } },
      { case: "a key longer than 256", item: { operation: "upsert", key: "k".repeat(257), value: 1 } },
      { case: "an unknown operation", item: { operation: "merge", key: "k", value: 1 } },
      { case: "a missing value", item: { operation: "upsert", key: "k" } },
    ])("answers 400 bad_request for $case", async ({ item }) => {
      const res = await patchItems({ items: [item] });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("bad_request");
      expect(body.error.message).toMatch(/^Invalid request: /);
      expect(emulator.items()).toEqual(INITIAL);
    });

    it("answers 400 for a body without items", async () => {
      expect((await patchItems({})).status).toBe(400);
      expect((await patchItems({ items: [] })).status).toBe(400);
    });

    it("answers 409 to create an existing key and 404 to update or delete a missing one, applying nothing", async () => {
      const conflict = await patchItems({
        items: [
          { operation: "upsert", key: "other", value: 1 },
          { operation: "create", key: "champion", value: "x" },
        ],
      });
      expect(conflict.status).toBe(409);
      expect(emulator.items()).toEqual(INITIAL);
      expect((await patchItems({ items: [{ operation: "update", key: "missing", value: 1 }] })).status).toBe(
        404,
      );
      expect((await patchItems({ items: [{ operation: "delete", key: "missing" }] })).status).toBe(404);
    });

    it("answers 403 for a wrong API token and 404 for an unknown Edge Config", async () => {
      const forbidden = await patchItems(
        { items: [{ operation: "upsert", key: "k", value: 1 }] },
        "read-token",
      );
      expect(forbidden.status).toBe(403);
      expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe("forbidden");
      const unknown = await fetch(`${emulator.url}/v1/edge-config/ecfg_nope/items`, {
        method: "PATCH",
        headers: { authorization: "Bearer api-token", "content-type": "application/json" },
        body: JSON.stringify({ items: [{ operation: "upsert", key: "k", value: 1 }] }),
      });
      expect(unknown.status).toBe(404);
    });
  });

  describe("GET /v1/edge-config/{id}/items", () => {
    it("lists items with their metadata", async () => {
      await patchItems({ items: [{ operation: "upsert", key: "champion", value: "v", description: "why" }] });
      const res = await fetch(`${emulator.url}/v1/edge-config/ecfg_test/items`, {
        headers: { authorization: "Bearer api-token" },
      });
      const items = (await res.json()) as { key: string; edgeConfigId: string; description?: string }[];
      expect(items.map((i) => i.key)).toEqual(["canary", "champion", "kill-switch", "pins"]);
      expect(items.find((i) => i.key === "champion")).toMatchObject({
        value: "v",
        description: "why",
        edgeConfigId: "ecfg_test",
        createdAt: expect.any(Number),
        updatedAt: expect.any(Number),
      });
    });
  });
});
