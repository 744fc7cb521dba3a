import { cp } from "node:fs/promises";
import { join } from "node:path";
import { type AppDeps, createApp } from "../../src/app.js";
import type { InferenceEngine } from "../../src/inference/engine.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import type { PredictionLog } from "../../src/storage/prediction-log.js";
import { ADMIN_TOKEN, testEngine } from "../support/app.js";
import { DATA_AS_OF, MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/** The shipped BTC-24h: v1 gbdt, v2 ridge, v3 naive (the champion the selection policy chose). */
export const MODEL = "BTC-24h";

/** Side effects handed to waitUntil, awaited by the tests (the shadow runs and log writes included). */
export function deferred() {
  const pending: Promise<unknown>[] = [];
  return {
    waitUntil: (work: Promise<unknown>) => {
      pending.push(work);
    },
    async settled() {
      // Deferred work may defer more (a log write, then its telemetry): until nothing is left.
      while (pending.length > 0) await Promise.all(pending.splice(0));
    },
  };
}

/** The shipped models copied to a temporary MODELS_DIR (pointers included), the CSVs, a log and cache of its own. */
export async function rolloutApp(overrides: Partial<AppDeps> = {}, engine: InferenceEngine = testEngine()) {
  const dir = await tempDir("edgeml-rollout-");
  const models = join(dir.path, "models");
  await cp(join(REPO_ROOT, "models"), models, { recursive: true });
  const work = deferred();
  const log: PredictionLog = createMemoryPredictionLog();
  const pointers = createJsonFilePointerStore(join(models, "pointers.json"));
  const app = createApp({
    artifacts: createFsArtifactStore(models),
    pointers,
    engine,
    market: createCsvMarketData({ dir: MARKET_DATA }),
    cache: createMemoryCache(),
    predictionLog: log,
    waitUntil: work.waitUntil,
    logger: silentLogger,
    ...overrides,
    config: { adminToken: ADMIN_TOKEN, ...overrides.config },
  });
  const request = (path: string, init: RequestInit = {}) => app.app.request(path, init);
  const admin = (path: string, init: RequestInit = {}) =>
    request(path, {
      ...init,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        "content-type": "application/json",
        ...init.headers,
      },
    });
  return {
    app,
    log,
    pointers,
    work,
    request,
    admin,
    /** `POST /api/ml/serve` for BTC 24h as of `asOf` (default the CSVs' last close), as client `clientId`. */
    serve: (clientId?: string, asOf = DATA_AS_OF, headers: Record<string, string> = {}) =>
      request("/api/ml/serve", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(clientId === undefined ? {} : { "x-client-id": clientId }),
          ...headers,
        },
        body: JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: asOf }),
      }),
    startRollout: (body: unknown) =>
      admin(`/api/ml/models/${MODEL}/rollout`, { method: "POST", body: JSON.stringify(body) }),
    cleanup: dir.cleanup,
  };
}

export type RolloutApp = Awaited<ReturnType<typeof rolloutApp>>;
