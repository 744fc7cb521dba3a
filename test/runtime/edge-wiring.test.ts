import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readRegistryDir } from "../../scripts/edge/embed.js";
import { edgeEnvIsCurrent, edgeEnvNames } from "../../scripts/edge/env.js";
import type { AppDeps } from "../../src/app.js";
import { isEdgeMLError } from "../../src/errors.js";
import type { InferenceEngine } from "../../src/inference/engine.js";
import { silentLogger } from "../../src/logger.js";
import { adaptersFromEnv } from "../../src/runtime/adapters.js";
import { edgeDeps } from "../../src/runtime/edge/deps.js";
import { createEdgeHandler, type EdgeContext, INIT_HEADER } from "../../src/runtime/edge/handler.js";
import { configFromEnv } from "../../src/runtime/env.js";
import { type EnvName, NODE_ONLY_ENV } from "../../src/runtime/env-schema.js";
import { vercelEdgeEnv } from "../../src/runtime/vercel/edge-env.js";
import {
  createEmbeddedArtifactStore,
  createEmbeddedPointerStore,
  type EmbeddedRegistry,
} from "../../src/storage/embedded.js";
import { tempDir } from "../support/paths.js";

const REGISTRY: EmbeddedRegistry = {
  source: "test",
  models: {
    m: {
      "1": { metadata: '{"name":"m","version":"1"}', model: Buffer.from([1, 2, 3, 255]).toString("base64") },
      "2": { metadata: '{"name":"m","version":"2"}', model: Buffer.from([7]).toString("base64") },
    },
  },
  pointers: {
    models: { m: { champion: "1" } },
    audit: [{ at: "2026-01-01T00:00:00.000Z", model: "m", action: "promote", from: null, to: "1" }],
  },
};

const rejection = async (work: Promise<unknown>) => {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
};

describe("the embedded registry on the edge", () => {
  it("lists, reads and decodes what the bundle carries", async () => {
    const store = createEmbeddedArtifactStore(REGISTRY);
    expect(await store.listModels()).toEqual(["m"]);
    expect(await store.listVersions("m")).toEqual(["1", "2"]);
    expect(await store.listVersions("other")).toEqual([]);
    expect(await store.getMetadata("m", "2")).toBe('{"name":"m","version":"2"}');
    expect(await store.getModel("m", "1")).toEqual(new Uint8Array([1, 2, 3, 255]));
    expect(await store.getModel("m", "3")).toBeNull();
    expect(await store.getMetadata("toString", "1")).toBeNull();
  });

  it("is read-only: publishing and pointer writes are refused with 403 forbidden, saying where writes go", async () => {
    const artifacts = createEmbeddedArtifactStore(REGISTRY);
    const pointers = createEmbeddedPointerStore(REGISTRY);
    for (const error of [
      await rejection(artifacts.publish("m", "3", { model: new Uint8Array([1]), metadata: "{}" })),
      await rejection(
        pointers.set("m", { champion: "2" }, { at: "", model: "m", action: "promote", from: "1", to: "2" }),
      ),
    ]) {
      expect(isEdgeMLError(error) && error.code).toBe("forbidden");
      expect((error as Error).message).toMatch(/read-only on the edge.*BLOB_READ_WRITE_TOKEN.*EDGE_CONFIG/);
    }
  });

  it("serves the bundled pointers and their audit log; a malformed pointers document fails at construction", async () => {
    const pointers = createEmbeddedPointerStore(REGISTRY);
    expect(await pointers.get("m")).toEqual({ champion: "1" });
    expect(await pointers.get("other")).toEqual({});
    expect(await pointers.history("m")).toHaveLength(1);
    expect(() =>
      createEmbeddedPointerStore({ ...REGISTRY, pointers: { models: { m: { champion: 1 } } } }),
    ).toThrow(/embedded pointers.json is not valid/);
  });

  describe("readRegistryDir (what `npm run build:edge` embeds)", () => {
    let cleanup: (() => Promise<void>) | undefined;
    afterEach(() => cleanup?.());

    it("takes complete numbered versions only, with the pointers file", async () => {
      const dir = await tempDir("edgeml-embed-");
      cleanup = dir.cleanup;
      const write = async (path: string, content: string | Uint8Array) => {
        await mkdir(join(dir.path, path, ".."), { recursive: true });
        await writeFile(join(dir.path, path), content);
      };
      await write("a/1/model.onnx", new Uint8Array([9, 8]));
      await write("a/1/metadata.json", "{}");
      await write("a/2/model.onnx", new Uint8Array([1])); // no metadata: a version being written
      await write("a/.staging-x/model.onnx", new Uint8Array([1]));
      await write("empty/README", "not a version");
      await write("pointers.json", JSON.stringify({ models: { a: { pinned: "1" } } }));
      const registry = await readRegistryDir(dir.path);
      expect(Object.keys(registry.models)).toEqual(["a"]);
      expect(registry.models.a?.["1"]).toEqual({ metadata: "{}", model: "CQg=" });
      expect(registry.pointers).toEqual({ models: { a: { pinned: "1" } }, audit: [] });

      await write("pointers.json", JSON.stringify({ models: { a: { pinned: 1 } } }));
      await expect(readRegistryDir(dir.path)).rejects.toThrow(/pointers.json is not valid/);
    });
  });
});

/** An engine that only counts start-ups: the handler's behaviour does not depend on onnxruntime. */
function countingEngine(init: () => Promise<void> = async () => {}): InferenceEngine & { inits: number } {
  const engine = {
    inits: 0,
    async init() {
      engine.inits += 1;
      await init();
    },
    signature: async () => ({ inputs: [], outputs: [] }),
    run: async () => ({}),
    evict: () => {},
    stats: () => ({ initMs: null, sessionsCreated: 0, runs: 0, warmSessions: 0 }),
  };
  return engine;
}

function depsWith(engine: InferenceEngine): AppDeps {
  return {
    artifacts: createEmbeddedArtifactStore(REGISTRY),
    pointers: createEmbeddedPointerStore(REGISTRY),
    engine,
    market: {
      name: "none",
      getBars: async () => {
        throw new Error("no market in this test");
      },
    },
    logger: silentLogger,
  };
}

describe("createEdgeHandler: the app once per isolate", () => {
  const quiet = { logger: silentLogger };

  it("builds the app and starts the engine on the first request only, even when requests arrive together", async () => {
    const engine = countingEngine(() => new Promise((resolve) => setTimeout(resolve, 20)));
    const builds: string[] = [];
    const handler = createEdgeHandler((env: { NAME: string }) => {
      builds.push(env.NAME);
      return depsWith(engine);
    }, quiet);
    const responses = await Promise.all(
      [1, 2, 3].map(() => handler.fetch(new Request("http://edge/v2/health/live"), { NAME: "first" })),
    );
    await handler.fetch(new Request("http://edge/v2/health/live"), { NAME: "later" });
    expect(builds).toEqual(["first"]);
    expect(engine.inits).toBe(1);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    // Only the request that started the isolate carries the timing.
    expect(responses.map((r) => r.headers.has(INIT_HEADER))).toEqual([true, false, false]);
    expect(responses[0]?.headers.get("server-timing")).toMatch(/^edgeml-init;dur=/);
  });

  it("hands deferred work to the waitUntil of the request being answered", async () => {
    let defer: ((work: Promise<unknown>) => void) | undefined;
    const handler = createEdgeHandler((_env: object, d) => {
      defer = d;
      return depsWith(countingEngine());
    }, quiet);
    const context = {
      waiting: [] as Promise<unknown>[],
      waitUntil(work: Promise<unknown>) {
        context.waiting.push(work);
      },
    };
    await handler.fetch(new Request("http://edge/v2/health/live"), {}, context satisfies EdgeContext);
    expect(context.waiting).toHaveLength(0);

    let finish: () => void = () => {};
    const work = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let settled = false;
    defer?.(
      work.then(() => {
        settled = true;
      }),
    );
    await handler.fetch(new Request("http://edge/v2/health/live"), {}, context);
    expect(context.waiting).toHaveLength(1);
    let idle = false;
    context.waiting[0]?.then(() => {
      idle = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(idle).toBe(false);
    finish();
    await context.waiting[0];
    expect(settled).toBe(true);
  });

  it("answers 503 not_ready with the reason when the app cannot start, and does not retry on every request", async () => {
    let builds = 0;
    const errors: string[] = [];
    const handler = createEdgeHandler(
      () => {
        builds += 1;
        return depsWith(
          countingEngine(async () => {
            throw new Error("wasm would not instantiate");
          }),
        );
      },
      { logger: { ...silentLogger, error: (message) => errors.push(message) } },
    );
    for (let i = 0; i < 2; i++) {
      const response = await handler.fetch(new Request("http://edge/v2/health/live"), {});
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        error: "edgeml: the server could not start: wasm would not instantiate",
        code: "not_ready",
      });
    }
    expect(builds).toBe(1);
    expect(errors).toEqual(["the edge app could not start"]);
  });
});

describe("edgeDeps: the edge wiring from the environment", () => {
  it("a setting that cannot work makes every request 503, naming the setting", async () => {
    const handler = createEdgeHandler(
      (env: Record<string, string>, defer) =>
        edgeDeps({ env, wasm: {} as WebAssembly.Module, embedded: REGISTRY, defer }),
      { logger: silentLogger },
    );
    const response = await handler.fetch(new Request("http://edge/v2/health/live"), { ADMIN_TOKEN: "short" });
    expect(response.status).toBe(503);
    expect((await response.json()).error).toBe(
      "edgeml: the server could not start: edgeml: invalid environment: ADMIN_TOKEN must be at least 16 characters (got 5 characters)",
    );
  });

  it("serves the embedded registry when no production store is configured", () => {
    const deps = edgeDeps({ env: {}, wasm: {} as WebAssembly.Module, embedded: REGISTRY, defer: () => {} });
    expect([deps.artifacts.kind, deps.pointers.kind, deps.market.name]).toEqual([
      "embedded",
      "embedded",
      "yahoo",
    ]);
  });
});

describe("vercelEdgeEnv", () => {
  it("names every variable the app and the production adapters read (Vercel may only provide those named)", () => {
    const read = new Set<string>();
    const recorder = new Proxy({} as Record<string, string | undefined>, {
      get: (_, key) => {
        if (typeof key === "string") read.add(key);
        return undefined;
      },
    });
    configFromEnv(recorder);
    adaptersFromEnv(recorder, {
      artifacts: () => createEmbeddedArtifactStore(REGISTRY),
      pointers: () => createEmbeddedPointerStore(REGISTRY),
    });
    expect(read.size).toBeGreaterThan(10);
    const edgeRead = [...read].filter((name) => !NODE_ONLY_ENV.has(name as EnvName));
    expect(Object.keys(vercelEdgeEnv()).sort()).toEqual(expect.arrayContaining(edgeRead.sort()));
  });

  it("is generated from the environment schema (npm run gen:edge-env), every variable but the Node-only ones", async () => {
    expect(
      await edgeEnvIsCurrent(),
      "src/runtime/vercel/edge-env.ts is stale: run npm run gen:edge-env",
    ).toBe(true);
    expect(Object.keys(vercelEdgeEnv())).toEqual(edgeEnvNames());
    expect(edgeEnvNames()).toEqual(
      expect.arrayContaining(["INFER_TIMEOUT_MS", "BEST_METRIC", "EDGE_CONFIG"]),
    );
    expect(edgeEnvNames()).not.toEqual(expect.arrayContaining(["PORT"]));
  });
});
