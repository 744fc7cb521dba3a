import { type AppConfig, type AppConfigInput, AppConfigSchema } from "../config.js";
import { createOrtEngine, type InferenceEngine, type RuntimeInitializer } from "../inference/engine.js";

type Env = Record<string, string | undefined>;

const number = (value: string | undefined): number | undefined => {
  if (value === undefined || value === "") return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new Error(`edgeml: expected a number, got "${value}"`);
  return parsed;
};

/**
 * The app configuration from environment variables, shared by every runtime's wiring. Unset variables keep the
 * defaults documented in src/config.ts; the app validates the result when it is built.
 */
export function configFromEnv(env: Env): AppConfigInput {
  return {
    adminToken: env.ADMIN_TOKEN || undefined,
    inferTimeoutMs: number(env.INFER_TIMEOUT_MS),
    sessionCacheMax: number(env.SESSION_CACHE_MAX),
    sessionCacheMaxBytes: number(env.SESSION_CACHE_MAX_BYTES),
    maxModelBytes: number(env.MAX_MODEL_BYTES),
    maxInferBytes: number(env.MAX_INFER_BYTES),
    maxOutputBytes: number(env.MAX_OUTPUT_BYTES),
    workerMaxMemoryBytes: number(env.WORKER_MAX_MEMORY_BYTES),
    workerRecycleBytes: number(env.WORKER_RECYCLE_BYTES),
    registryListTtlMs: number(env.REGISTRY_LIST_TTL_MS),
    bestMetric: env.BEST_METRIC || undefined,
    cacheTtlMs: number(env.PREDICTION_CACHE_TTL_MS),
    rateLimitPublic: env.RATE_LIMIT_PUBLIC || undefined,
    rateLimitAdmin: env.RATE_LIMIT_ADMIN || undefined,
    rateLimitColdLoad: env.RATE_LIMIT_COLD_LOAD || undefined,
    // Comma or whitespace separated, so a list pasted from a secrets manager with newlines works too.
    apiKeys: env.API_KEYS?.split(/[\s,]+/).filter((key) => key !== ""),
    jobWriteAttempts: number(env.JOB_WRITE_ATTEMPTS),
    jobWriteBackoffMs: number(env.JOB_WRITE_BACKOFF_MS),
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
