import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type AppDeps, createApp } from "../../src/app.js";
import { type AppConfigInput, AppConfigSchema } from "../../src/config.js";
import { createOrtEngine, type InferenceEngine } from "../../src/inference/engine.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { ArtifactStore } from "../../src/storage/artifacts.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { productionAdapters } from "../storage/support/production-adapters.js";
import { BYO_MODELS, MARKET_DATA, tempDir } from "./paths.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789";

/**
 * The one switch of the production-adapters run (vitest project `production-adapters`, `npm run
 * test:production-adapters`): with EDGEML_ADAPTERS=production, testApp wires Vercel Blob, Edge Config and Upstash
 * Redis against the local servers instead of files and memory. The same tests run on both.
 */
export const ADAPTERS: "embedded" | "production" =
  process.env.EDGEML_ADAPTERS === "production" ? "production" : "embedded";
/** For the few tests that reach into the embedded adapters' files on disk: `it.runIf(onEmbeddedAdapters)(…)`. */
export const onEmbeddedAdapters = ADAPTERS === "embedded";

/** The storage ports of a test app: files under `dir`, or the production adapters in a namespace of their own. */
function storage(
  dir: string,
): Pick<AppDeps, "artifacts" | "pointers" | "cache" | "jobs" | "counters" | "metrics"> {
  if (ADAPTERS === "embedded") {
    return {
      artifacts: createFsArtifactStore(join(dir, "models")),
      pointers: createJsonFilePointerStore(join(dir, "pointers.json")),
    };
  }
  const { artifacts, pointers, cache, jobs, counters, metrics } = productionAdapters();
  return { artifacts, pointers, cache, jobs, counters, metrics };
}

/** One engine per test file: onnxruntime-web initialises once per process anyway. */
let sharedEngine: InferenceEngine | undefined;
export function testEngine(): InferenceEngine {
  sharedEngine ??= createOrtEngine({
    maxSessions: 32,
    maxSessionBytes: 1 << 30,
    timeoutMs: 30_000,
    // The production default, so the suites see oversize outputs refused as a deployed server does.
    maxOutputBytes: AppConfigSchema.parse({}).maxOutputBytes,
  });
  return sharedEngine;
}

export interface TestApp {
  request: (path: string, init?: RequestInit) => Promise<Response>;
  admin: (path: string, init?: RequestInit) => Promise<Response>;
  deps: AppDeps;
  dir: string;
  cleanup: () => Promise<void>;
  app: ReturnType<typeof createApp>;
}

/**
 * The app on embedded adapters in a temporary directory (or, in the production-adapters run, on the production
 * adapters in a namespace of their own), with an admin token set unless `config` overrides it.
 */
export async function testApp(
  config: AppConfigInput = {},
  engine: InferenceEngine = testEngine(),
  overrides: Partial<AppDeps> = {},
): Promise<TestApp> {
  const dir = await tempDir();
  const deps: AppDeps = {
    market: createCsvMarketData({ dir: MARKET_DATA }),
    ...storage(dir.path),
    engine,
    // Node trains: the suites' POST /api/ml/train runs the real trainer.
    trainer: trainForecaster,
    config: { adminToken: ADMIN_TOKEN, ...config },
    logger: silentLogger,
    ...overrides,
  };
  const app = createApp(deps);
  return { ...clientOf(app), deps, dir: dir.path, cleanup: dir.cleanup, app };
}

/** In-process requests to an app: `admin` adds the admin token unless the request carries its own. */
function clientOf(app: ReturnType<typeof createApp>) {
  const request = async (path: string, init?: RequestInit) => app.app.request(path, init);
  const admin = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has("authorization")) headers.set("authorization", `Bearer ${ADMIN_TOKEN}`);
    return request(path, { ...init, headers });
  };
  const adminPost = (path: string, body: unknown) =>
    admin(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  return { request, admin, adminPost };
}

/**
 * The app on the embedded file stores at the paths given (the Node server's layout; no directory of its own). Each
 * call is what a fresh process would build over the same files: how a restart is tested.
 */
export function appOverFiles(
  paths: { modelsDir: string; pointersFile: string },
  options: { artifacts?: ArtifactStore; config?: AppConfigInput } = {},
) {
  const app = createApp({
    artifacts: options.artifacts ?? createFsArtifactStore(paths.modelsDir),
    pointers: createJsonFilePointerStore(paths.pointersFile),
    engine: testEngine(),
    market: createCsvMarketData({ dir: MARKET_DATA }),
    config: { adminToken: ADMIN_TOKEN, ...options.config },
    logger: silentLogger,
  });
  return { ...clientOf(app), registry: app.registry };
}

/** Registers ONNX bytes through the admin API; metadata goes in the X-Model-Metadata header. */
export async function upload(
  t: Pick<TestApp, "admin">,
  name: string,
  bytes: Uint8Array,
  metadata?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return t.admin(`/api/ml/models/${name}/versions`, {
    method: "POST",
    headers: {
      "content-type": "application/octet-stream",
      ...(metadata !== undefined && { "x-model-metadata": JSON.stringify(metadata) }),
      ...headers,
    },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
}

export function postJson(t: Pick<TestApp, "request">, path: string, body: unknown): Promise<Response> {
  return t.request(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

export interface ByoCase {
  file: string;
  model: string;
  input: { name: string; datatype: "FP32" | "FP64"; shape: number[]; data: number[] };
  output_name: string;
  expected_sklearn_predict: number[];
  feature_names: string[];
}

export async function byoCase(file: string): Promise<{ spec: ByoCase; bytes: Uint8Array }> {
  const spec = JSON.parse(await readFile(join(BYO_MODELS, file), "utf8")) as ByoCase;
  const bytes = new Uint8Array(await readFile(join(BYO_MODELS, spec.model)));
  return { spec: { ...spec, file }, bytes };
}
