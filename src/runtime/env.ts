import { type AppConfig, type AppConfigInput, AppConfigSchema } from "../config.js";
import { createOrtEngine, type InferenceEngine, type RuntimeInitializer } from "../inference/engine.js";

import { parseEnv, type RawEnv } from "./env-schema.js";

/**
 * The app configuration from environment variables, shared by every runtime's wiring. The environment is parsed
 * by its schema (src/runtime/env-schema.ts), which throws naming each variable that is wrong; unset variables keep
 * the defaults documented in src/config.ts, and the settings that span variables are checked when the app is built.
 */
export function configFromEnv(raw: RawEnv): AppConfigInput {
  const env = parseEnv(raw);
  return {
    adminToken: env.ADMIN_TOKEN,
    metricsToken: env.METRICS_TOKEN,
    inferTimeoutMs: env.INFER_TIMEOUT_MS,
    sessionCacheMax: env.SESSION_CACHE_MAX,
    sessionCacheMaxBytes: env.SESSION_CACHE_MAX_BYTES,
    maxModelBytes: env.MAX_MODEL_BYTES,
    maxInferBytes: env.MAX_INFER_BYTES,
    maxOutputBytes: env.MAX_OUTPUT_BYTES,
    workerMaxMemoryBytes: env.WORKER_MAX_MEMORY_BYTES,
    workerRecycleBytes: env.WORKER_RECYCLE_BYTES,
    registryListTtlMs: env.REGISTRY_LIST_TTL_MS,
    bestMetric: env.BEST_METRIC,
    selectionPolicy: env.SELECTION_POLICY,
    retainVersions: env.RETAIN_VERSIONS,
    cacheTtlMs: env.PREDICTION_CACHE_TTL_MS,
    staleGraceSeconds: env.MARKET_STALE_GRACE_SECONDS,
    intervalLevel: env.FORECAST_INTERVAL_LEVEL,
    shadowMaxQueueDepth: env.SHADOW_MAX_QUEUE_DEPTH,
    rolloutMinOutcomes: env.ROLLOUT_MIN_OUTCOMES,
    rolloutMaxDurationSeconds: env.ROLLOUT_MAX_DURATION_SECONDS,
    rateLimitPublic: env.RATE_LIMIT_PUBLIC,
    rateLimitAdmin: env.RATE_LIMIT_ADMIN,
    rateLimitColdLoad: env.RATE_LIMIT_COLD_LOAD,
    apiKeys: env.API_KEYS,
    jobWriteAttempts: env.JOB_WRITE_ATTEMPTS,
    jobWriteBackoffMs: env.JOB_WRITE_BACKOFF_MS,
  };
}

/** Wraps the in-process engine in one that runs some models elsewhere (the Node server's worker thread). */
export type Isolation = (inline: InferenceEngine, settings: AppConfig) => InferenceEngine;

/**
 * The inference engine sized by the configuration. An invalid setting is reported by createApp, with every issue
 * named; the engine takes the defaults meanwhile rather than throwing a second, partial message first.
 *
 * The Node server passes `isolate` (isolateInWorker): every model whose cost its input does not bound (control
 * flow, outputs sized by input values) runs in a worker thread that a deadline can terminate. It is a parameter,
 * not an import, so the edge bundles never see node:worker_threads: the edge runtimes have no Worker, the engine
 * stays inline there, and the platform's CPU and memory limits end a runaway run (docs/edge.md).
 */
export function engineFromConfig(
  config: AppConfigInput,
  initialize?: RuntimeInitializer,
  isolate?: Isolation,
): InferenceEngine {
  const settings = AppConfigSchema.safeParse(config).data ?? AppConfigSchema.parse({});
  const inline = createOrtEngine({
    maxSessions: settings.sessionCacheMax,
    maxSessionBytes: settings.sessionCacheMaxBytes,
    maxOutputBytes: settings.maxOutputBytes,
    timeoutMs: settings.inferTimeoutMs,
    initialize,
  });
  return isolate ? isolate(inline, settings) : inline;
}
