import { resolve } from "node:path";
import type { AppDeps } from "../../app.js";
import { isolateInWorker } from "../../inference/node/isolated-engine.js";
import { createCsvMarketData } from "../../market/node/csv.js";
import { createYahooMarketData } from "../../market/yahoo.js";
import { createFsArtifactStore } from "../../storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../storage/node/json-file-pointers.js";
import { sqlitePredictionLogAt } from "../../storage/node/sqlite-prediction-log.js";
import { dieboldMariano } from "../../training/diebold-mariano.js";
import { trainForecaster } from "../../training/forecaster.js";
import { adaptersFromEnv } from "../adapters.js";
import { configFromEnv, engineFromConfig } from "../env.js";
import { nodeClientAddress } from "./client-address.js";
import { DEFAULT_MODELS_DIR, DEFAULT_PREDICTION_LOG_FILE } from "./paths.js";

export { DEFAULT_MODELS_DIR, DEFAULT_PREDICTION_LOG_FILE } from "./paths.js";

/**
 * Dependencies of the Node runtime: onnxruntime-web in this process, with models whose cost their input does not
 * bound isolated in a worker thread (see engineFromConfig); storage on the production services whose
 * variables are set (see adaptersFromEnv), on embedded defaults otherwise: models and pointers on the local disk
 * (`MODELS_DIR` and `POINTERS_FILE` move them), the prediction log in a SQLite file (`PREDICTION_LOG_FILE`, opened
 * on first use), cache and jobs in memory. Market data comes from Yahoo Finance unless
 * `MARKET_DATA_DIR` names a directory of CSV files (offline). Rate limits count clients by socket address, or by the
 * header a reverse proxy sets when `TRUST_PROXY` names it.
 */
export function nodeDeps(env: Record<string, string | undefined> = process.env): AppDeps {
  const modelsDir = resolve(env.MODELS_DIR || DEFAULT_MODELS_DIR);
  const config = configFromEnv(env);
  const adapters = adaptersFromEnv(env, {
    artifacts: () => createFsArtifactStore(modelsDir),
    pointers: () =>
      createJsonFilePointerStore(resolve(env.POINTERS_FILE || resolve(modelsDir, "pointers.json"))),
    predictionLog: (options) =>
      sqlitePredictionLogAt(resolve(env.PREDICTION_LOG_FILE || DEFAULT_PREDICTION_LOG_FILE), options),
  });
  return {
    ...adapters,
    engine: engineFromConfig(config, undefined, isolateInWorker),
    market: env.MARKET_DATA_DIR
      ? createCsvMarketData({ dir: resolve(env.MARKET_DATA_DIR) })
      : createYahooMarketData(),
    // Node trains (the server's POST /api/ml/train, `npm run train`, the Vercel training function).
    trainer: trainForecaster,
    // Rollout decisions run where training runs: the test's Student-t CDF stays out of the edge bundle.
    pairedTest: dieboldMariano,
    clientKey: nodeClientAddress(env.TRUST_PROXY),
    config,
  };
}
