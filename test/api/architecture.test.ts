import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { bundleEdge } from "../../scripts/edge/bundle.js";
import { DEFAULT_MODELS_DIR, readRegistryDir } from "../../scripts/edge/embed.js";
import { type AppDeps, createApp } from "../../src/app.js";
import { trainSymbol } from "../../src/forecast/training.js";
import { createHttpApp } from "../../src/http.js";
import { silentLogger } from "../../src/logger.js";
import { adminRoutes } from "../../src/routes/admin.js";
import { createServices } from "../../src/services/index.js";
import type { PredictionCache } from "../../src/storage/cache.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { ADMIN_TOKEN, postJson, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";
import { DATA_AS_OF, REPO_ROOT } from "../support/paths.js";

type Operation = { security?: unknown[] };
type OpenApi = { paths: Record<string, Record<string, Operation>> };

/** A path of the OpenAPI document with its parameters filled in. */
const concrete = (path: string) => path.replace("{name}", "m").replace("{version}", "1");

describe("routes as sub-apps: auth is declared per route", () => {
  let t: TestApp;
  let doc: OpenApi;
  beforeAll(async () => {
    t = await testApp();
    doc = (await (await t.request("/openapi.json")).json()) as OpenApi;
  });
  afterAll(() => t.cleanup());

  it("every operation that declares `security` refuses a request without the token (401), and no other asks for one", async () => {
    let guarded = 0;
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const res = await t.request(concrete(path), {
          method: method.toUpperCase(),
          headers: { "content-type": "application/json" },
          ...(method !== "get" && { body: "{}" }),
        });
        if (operation.security) {
          guarded += 1;
          expect(res.status, `${method} ${path}`).toBe(401);
        } else expect(res.status, `${method} ${path}`).not.toBe(401);
      }
    }
    // The registry's nine (restore and backfill included), training and its status, the prediction log's listing
    // and track, /metrics, a rollout's start, state and end, and its evaluation.
    expect(guarded).toBe(18);
  });

  it("the admin group carries its guard wherever it is mounted: not an app.use by path", async () => {
    const services = createServices({ ...t.deps }, { ...t.deps });
    // The group alone in an HTTP app of its own (what the training function does with its group).
    const { app } = createHttpApp(services, {}, [adminRoutes(services)]);
    expect((await app.request("/api/ml/models")).status).toBe(401);
    const authorized = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
    expect((await app.request("/api/ml/models", authorized)).status).toBe(200);
    expect((await app.request("/v2/health/live")).status).toBe(404);
  });

  it("a path under the admin prefix that is no route is a 404 that says so, not a 401", async () => {
    const res = await t.request("/api/ml/models/m/no-such-thing");
    expect(res.status).toBe(404);
    expect((await res.json()).code).toBe("not_found");
  });
});

describe("the trainer is a port", () => {
  it("without a trainer, POST /api/ml/train answers 501 training_unavailable saying where training runs; status still answers", async () => {
    const t = await testApp({}, undefined, { trainer: undefined });
    try {
      const res = await t.admin("/api/ml/train", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model_id: "BTC" }),
      });
      expect(res.status).toBe(501);
      expect(await res.json()).toMatchObject({
        code: "training_unavailable",
        error: expect.stringMatching(/training does not run in this deployment.*npm run train/),
      });
      const status = await t.admin(`/api/ml/train/status?request_id=${crypto.randomUUID()}`);
      expect(status.status).toBe(404);
    } finally {
      await t.cleanup();
    }
  });
});

/** The repository files an entry bundles (its imports, followed; packages left out). */
async function bundledFiles(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [join(REPO_ROOT, entry)],
    bundle: true,
    write: false,
    metafile: true,
    platform: "node",
    format: "esm",
    packages: "external",
    logLevel: "silent",
  });
  return Object.keys(result.metafile.inputs).map((file) => relative(REPO_ROOT, join(process.cwd(), file)));
}

describe("a composition root that is not the HTTP app", () => {
  it.each(["scripts/cli.ts", "scripts/train_models.ts"])(
    "%s reaches the registry through the services, without the app or its routes",
    async (entry) => {
      const files = await bundledFiles(entry);
      expect(files).toContain("src/services/index.ts");
      expect(files).not.toContain("src/app.ts");
      expect(files.filter((f) => f.startsWith("src/routes/"))).toEqual([]);
    },
  );

  it("the Vercel training function serves the training routes only: no OIP, admin or forecast routes in it", async () => {
    const files = await bundledFiles("src/runtime/vercel/train.ts");
    expect(files).toContain("src/routes/training.ts");
    expect(files).not.toContain("src/app.ts");
    for (const route of ["oip", "admin", "forecast"]) expect(files).not.toContain(`src/routes/${route}.ts`);
  });

  it.each(["vercel", "workerd"] as const)(
    "the %s edge bundle carries no trainer: the edge wiring leaves the port out (no stub at bundle time)",
    async (target) => {
      let inputs: string[] = [];
      await bundleEdge(target, {
        registry: await readRegistryDir(DEFAULT_MODELS_DIR),
        minify: false,
        onMetafile: (metafile) => {
          inputs = Object.keys(metafile.inputs);
        },
      });
      expect(inputs).toContain("src/services/index.ts");
      // The training library's typed errors (mapped by src/errors.ts) are all of src/training the edge needs.
      expect(inputs.filter((f) => f.startsWith("src/training/"))).toEqual(["src/training/errors.ts"]);
    },
  );

  it("no module in src/ writes to the console except the default logger and the CLI's own output", async () => {
    const offenders: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (/\.(ts|mjs)$/.test(entry.name)) {
          const file = relative(REPO_ROOT, path);
          if (file === "src/logger.ts" || file.startsWith("src/cli/")) continue;
          if (/\bconsole\.(log|info|warn|error|debug)\b/.test(await readFile(path, "utf8")))
            offenders.push(file);
        }
      }
    };
    await walk(join(REPO_ROOT, "src"));
    expect(offenders).toEqual([]);
  });
});

describe("one deadline per request: a signal passed down, not a timer per layer", () => {
  const BUDGET = 25_000;
  let t: TestApp;
  let deps: AppDeps;
  beforeAll(async () => {
    t = await testApp({ inferTimeoutMs: BUDGET });
    deps = t.deps;
    expect((await upload(t, "m", elementwiseModel({ op: "Add", elem: "FP64", shape: [1] }))).status).toBe(
      201,
    );
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: deps.market,
      registry: t.app.registry,
      plan: { families: ["ridge"] },
    });
  });
  afterAll(() => t.cleanup());
  afterEach(() => vi.restoreAllMocks());

  /** Timers armed with (most of) the request's budget while `request` runs: each is one more copy of the deadline. */
  const budgetTimers = async (request: () => Promise<Response>) => {
    const setTimeoutSpy = vi.spyOn(globalThis, "setTimeout");
    const res = await request();
    const armed = setTimeoutSpy.mock.calls.filter(
      ([, ms]) => typeof ms === "number" && ms > BUDGET * 0.8,
    ).length;
    setTimeoutSpy.mockRestore();
    return { res, armed };
  };

  it("an OIP infer (model warm) arms no timer of its budget below the request", async () => {
    const body = { inputs: [{ name: "x", datatype: "FP64", shape: [1], data: [1] }] };
    expect((await postJson(t, "/v2/models/m/infer", body)).status).toBe(200);
    const { res, armed } = await budgetTimers(() => postJson(t, "/v2/models/m/infer", body));
    expect(res.status).toBe(200);
    expect(armed).toBeLessThanOrEqual(1);
  });

  it("a forecast (model warm, every request computed) arms no timer of its budget below the request", async () => {
    const neverCached: PredictionCache = { kind: "none", get: async () => undefined, set: async () => {} };
    const app = createApp({ ...deps, cache: neverCached, logger: silentLogger });
    const serve = () =>
      postJson({ request: async (path, init) => app.app.request(path, init) }, "/api/ml/serve", {
        symbol: "BTC",
        as_of: DATA_AS_OF,
      });
    // The first request loads and verifies the model (its golden rows run under the verification's own bound).
    expect((await serve()).status).toBe(200);
    const { res, armed } = await budgetTimers(serve);
    expect(res.status).toBe(200);
    expect(armed).toBeLessThanOrEqual(1);
  });
});
