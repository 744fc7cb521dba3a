import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EdgeConfigEmulatorHandle,
  startEdgeConfigEmulator,
} from "../../scripts/dev/edge-config-emulator";
import { adaptersFromEnv, describeAdapters } from "../../src/runtime/adapters.js";
import { nodeDeps } from "../../src/runtime/node/deps.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { tempDir } from "../support/paths.js";

const embedded = {
  artifacts: () => ({ kind: "embedded-artifacts" }) as never,
  pointers: () => ({ kind: "embedded-pointers" }) as never,
};

const production = {
  UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "AX-token",
  EDGE_CONFIG: "https://edge-config.vercel.com/ecfg_abc123?token=read-token",
  VERCEL_API_TOKEN: "vercel-api-token",
  BLOB_READ_WRITE_TOKEN: "vercel_blob_rw_store123_secret",
};

describe("adaptersFromEnv", () => {
  it("without production variables, every port gets its embedded adapter", () => {
    expect(describeAdapters(adaptersFromEnv({}, embedded))).toBe(
      "artifacts: embedded-artifacts, pointers: embedded-pointers, cache: memory, jobs: memory, counters: memory, metrics: memory, predictions: memory",
    );
  });

  it("with them, Vercel Blob, Edge Config and Upstash Redis", () => {
    expect(describeAdapters(adaptersFromEnv(production, embedded))).toBe(
      "artifacts: vercel-blob, pointers: edge-config, cache: upstash, jobs: upstash, counters: upstash, metrics: upstash, predictions: upstash",
    );
  });

  it("each service on its own: blank values count as unset", () => {
    const onlyBlob = { BLOB_READ_WRITE_TOKEN: production.BLOB_READ_WRITE_TOKEN, EDGE_CONFIG: " " };
    expect(describeAdapters(adaptersFromEnv(onlyBlob, embedded))).toBe(
      "artifacts: vercel-blob, pointers: embedded-pointers, cache: memory, jobs: memory, counters: memory, metrics: memory, predictions: memory",
    );
  });

  it.each([
    [
      "a Redis URL without its token",
      { UPSTASH_REDIS_REST_URL: production.UPSTASH_REDIS_REST_URL },
      /UPSTASH_REDIS_REST_TOKEN: required when UPSTASH_REDIS_REST_URL is set/,
    ],
    ["a Redis token without its URL", { UPSTASH_REDIS_REST_TOKEN: "t" }, /UPSTASH_REDIS_REST_URL: required/],
    [
      "a Redis URL that is not a URL",
      { ...production, UPSTASH_REDIS_REST_URL: "localhost" },
      /UPSTASH_REDIS_REST_URL: must be a URL/,
    ],
    [
      "the admin API on Edge Config without a token to write it",
      { EDGE_CONFIG: production.EDGE_CONFIG, ADMIN_TOKEN: "x".repeat(20) },
      /VERCEL_API_TOKEN: required to write Edge Config pointers when the admin API is enabled/,
    ],
    [
      "an API token without the connection string",
      { VERCEL_API_TOKEN: "t" },
      /EDGE_CONFIG: required when VERCEL_API_TOKEN is set/,
    ],
    [
      "a connection string that is not one",
      { EDGE_CONFIG: "nope" },
      /EDGE_CONFIG: not an Edge Config connection string/,
    ],
    [
      "a read-only Blob token",
      { BLOB_READ_WRITE_TOKEN: "vercel_blob_ro_x" },
      /BLOB_READ_WRITE_TOKEN: must be a read-write token/,
    ],
    [
      "an unknown Blob access",
      { ...production, BLOB_ACCESS: "secret" },
      /BLOB_ACCESS: must be public or private/,
    ],
    [
      "a timeout that is not a number",
      { ...production, UPSTASH_TIMEOUT_MS: "soon" },
      /invalid environment: UPSTASH_TIMEOUT_MS: must be a number/,
    ],
  ])("fails at start on %s, naming the variable", (_label, env, message) => {
    expect(() => adaptersFromEnv(env, embedded)).toThrow(message);
  });

  it("nodeDeps uses it: files and memory by default, the services when configured", async () => {
    const dir = await tempDir();
    try {
      const local = nodeDeps({ MODELS_DIR: dir.path });
      expect([local.artifacts.kind, local.pointers.kind, local.cache?.kind, local.jobs?.kind]).toEqual([
        "fs",
        "json-file",
        "memory",
        "memory",
      ]);
      expect(local.predictionLog?.kind).toBe("sqlite");
      const remote = nodeDeps({ MODELS_DIR: dir.path, ...production });
      expect([remote.artifacts.kind, remote.pointers.kind, remote.cache?.kind, remote.jobs?.kind]).toEqual([
        "vercel-blob",
        "edge-config",
        "upstash",
        "upstash",
      ]);
      expect(remote.predictionLog?.kind).toBe("upstash");
    } finally {
      await dir.cleanup();
    }
  });

  describe("Edge Config writes", () => {
    let edge: EdgeConfigEmulatorHandle;
    beforeAll(async () => {
      edge = await startEdgeConfigEmulator({ id: "ecfg_fromenv" });
    });
    afterAll(async () => {
      await edge?.close();
    });

    it("go to the Edge Config named in EDGE_CONFIG unless EDGE_CONFIG_ID says otherwise", async () => {
      const { pointers } = adaptersFromEnv(
        { EDGE_CONFIG: edge.connectionString, VERCEL_API_TOKEN: edge.apiToken, VERCEL_API_URL: edge.url },
        embedded,
      );
      await pointers.set(
        "m",
        { champion: "1" },
        { at: new Date().toISOString(), model: "m", action: "promote", from: null, to: "1" },
      );
      expect(edge.requests().findLast((r) => r.method === "PATCH")?.path).toBe(
        "/v1/edge-config/ecfg_fromenv/items",
      );
      expect(edge.items()).toMatchObject({ edgeml_pointers_m: { champion: "1" } });
    });
  });

  it("the embedded fallback is only built when used", async () => {
    const dir = await tempDir();
    try {
      let built = 0;
      adaptersFromEnv(production, {
        ...embedded,
        pointers: () => {
          built += 1;
          return createJsonFilePointerStore(`${dir.path}/p.json`);
        },
      });
      expect(built).toBe(0);
    } finally {
      await dir.cleanup();
    }
  });
});
