import { Redis } from "@upstash/redis";
import { parseConnectionString } from "@vercel/edge-config";
import type { ArtifactStore } from "../storage/artifacts.js";
import { createMemoryAuditLog, createUpstashAuditLog } from "../storage/audit-log.js";
import { createBlobArtifactStore } from "../storage/blob-artifacts.js";
import type { PredictionCache } from "../storage/cache.js";
import { type Counters, createMemoryCounters } from "../storage/counters.js";
import { createEdgeConfigPointerStore } from "../storage/edge-config-pointers.js";
import { createMemoryJobStore, type JobStore } from "../storage/jobs.js";
import { createMemoryCache } from "../storage/memory-cache.js";
import { createMemoryPredictionLog } from "../storage/memory-prediction-log.js";
import type { PointerStore } from "../storage/pointers.js";
import type { PredictionLog } from "../storage/prediction-log.js";
import { createMemoryRateLimiter, type RateLimiter } from "../storage/ratelimit.js";
import { createUpstashCache, upstashClientOptions } from "../storage/upstash-cache.js";
import { createUpstashCounters } from "../storage/upstash-counters.js";
import { createUpstashJobStore } from "../storage/upstash-jobs.js";
import { createUpstashPredictionLog } from "../storage/upstash-prediction-log.js";
import { createUpstashRateLimiter } from "../storage/upstash-ratelimit.js";
import { createMemoryMetricsStore, type MetricsStore } from "../telemetry/store.js";
import { createUpstashMetricsStore } from "../telemetry/upstash-store.js";
import { parseEnv, type RawEnv } from "./env-schema.js";

/** The storage ports of the app, and which adapter each one got (for the start-up banner and /v2 health). */
export interface Adapters {
  artifacts: ArtifactStore;
  pointers: PointerStore;
  cache: PredictionCache;
  jobs: JobStore;
  counters: Counters;
  /** Telemetry series: per process without Upstash, which on the edge means per isolate (see README, Metrics). */
  metrics: MetricsStore;
  rateLimiter: RateLimiter;
  predictionLog: PredictionLog;
}

/** What the runtime offers when a production service is not configured: the embedded adapters it can run. */
export interface EmbeddedFallback {
  artifacts: () => ArtifactStore;
  pointers: () => PointerStore;
  /**
   * The prediction log without Upstash: Node's SQLite file. Left out where there is no disk (the edge): process
   * memory then. Takes the cap per model from `PREDICTION_LOG_CAP`.
   */
  predictionLog?: (options: { capPerModel?: number }) => PredictionLog;
}

/**
 * The storage adapters from the environment: each port gets its production adapter when that service's
 * variables are present, its embedded one otherwise. The variables are validated by the environment's schema
 * (src/runtime/env-schema.ts): a service half configured (a URL without its token) fails at start naming what is
 * missing.
 *
 * - `UPSTASH_REDIS_REST_URL` + `UPSTASH_REDIS_REST_TOKEN` → prediction cache, training jobs, usage counters, metrics and rate limits in Upstash Redis
 *   (`UPSTASH_KEY_PREFIX`, default `edgeml:`; `UPSTASH_TIMEOUT_MS`, default 1000); otherwise process memory. The
 *   prediction log too (`PREDICTION_LOG_CAP` records per model, `PREDICTION_LOG_TTL_SECONDS`); otherwise the
 *   runtime's embedded log (SQLite on Node), process memory where it has none.
 * - `EDGE_CONFIG` → version pointers read from Edge Config; writes (promote, rollback, pin) through the Vercel API
 *   with `VERCEL_API_TOKEN`, to `EDGE_CONFIG_ID` (default: the id in `EDGE_CONFIG`), `VERCEL_TEAM_ID` (optional),
 *   `VERCEL_API_URL` (default https://api.vercel.com). `EDGE_CONFIG_KEY_PREFIX` (default `edgeml`),
 *   `EDGE_CONFIG_CACHE_TTL_MS` (default 5000). The audit log of pointer changes goes to Upstash Redis when it is
 *   configured (a capped list per model), to process memory otherwise. Otherwise the runtime's embedded pointers.
 * - `BLOB_READ_WRITE_TOKEN` → model artifacts in Vercel Blob (`BLOB_PREFIX`, default `models/`; `BLOB_ACCESS`,
 *   default `public`). The Blob client itself reads `VERCEL_BLOB_API_URL` (a local emulator) and
 *   `VERCEL_BLOB_RETRIES`. Otherwise the runtime's embedded artifacts.
 */
export function adaptersFromEnv(env: RawEnv, embedded: EmbeddedFallback): Adapters {
  const e = parseEnv(env);
  const redis =
    e.UPSTASH_REDIS_REST_URL && e.UPSTASH_REDIS_REST_TOKEN
      ? new Redis({
          url: e.UPSTASH_REDIS_REST_URL,
          token: e.UPSTASH_REDIS_REST_TOKEN,
          ...upstashClientOptions(e.UPSTASH_TIMEOUT_MS),
        })
      : undefined;
  const upstash = { prefix: e.UPSTASH_KEY_PREFIX, timeoutMs: e.UPSTASH_TIMEOUT_MS };
  const edgeConfigId = e.EDGE_CONFIG && (e.EDGE_CONFIG_ID ?? parseConnectionString(e.EDGE_CONFIG)?.id);
  return {
    artifacts: e.BLOB_READ_WRITE_TOKEN
      ? createBlobArtifactStore({
          token: e.BLOB_READ_WRITE_TOKEN,
          prefix: e.BLOB_PREFIX,
          access: e.BLOB_ACCESS,
        })
      : embedded.artifacts(),
    pointers: e.EDGE_CONFIG
      ? createEdgeConfigPointerStore({
          connectionString: e.EDGE_CONFIG,
          keyPrefix: e.EDGE_CONFIG_KEY_PREFIX,
          cacheTtlMs: e.EDGE_CONFIG_CACHE_TTL_MS,
          // Edge Config keeps only the pointers (8 KB on Hobby); the audit log is a capped list per model in Redis.
          audit: redis ? createUpstashAuditLog(redis, upstash) : createMemoryAuditLog(),
          write:
            edgeConfigId && e.VERCEL_API_TOKEN
              ? {
                  id: edgeConfigId,
                  token: e.VERCEL_API_TOKEN,
                  teamId: e.VERCEL_TEAM_ID,
                  apiBase: e.VERCEL_API_URL,
                }
              : undefined,
        })
      : embedded.pointers(),
    cache: redis ? createUpstashCache(redis, upstash) : createMemoryCache(),
    jobs: redis ? createUpstashJobStore(redis, upstash) : createMemoryJobStore(),
    counters: redis ? createUpstashCounters(redis, upstash) : createMemoryCounters(),
    metrics: redis ? createUpstashMetricsStore(redis, upstash) : createMemoryMetricsStore(),
    // Shared by every instance in production; per process otherwise (each instance then allows the full budget).
    rateLimiter: redis ? createUpstashRateLimiter(redis, upstash) : createMemoryRateLimiter(),
    predictionLog: redis
      ? createUpstashPredictionLog(redis, {
          ...upstash,
          capPerModel: e.PREDICTION_LOG_CAP,
          ttlSeconds: e.PREDICTION_LOG_TTL_SECONDS,
        })
      : (embedded.predictionLog?.({ capPerModel: e.PREDICTION_LOG_CAP }) ??
        createMemoryPredictionLog({ capPerModel: e.PREDICTION_LOG_CAP })),
  };
}

/** One line per port naming its adapter, for start-up logs. */
export function describeAdapters(adapters: Partial<Record<keyof Adapters, { kind: string }>>): string {
  const kind = (port: keyof Adapters) => adapters[port]?.kind ?? "memory";
  return `artifacts: ${kind("artifacts")}, pointers: ${kind("pointers")}, cache: ${kind("cache")}, jobs: ${kind("jobs")}, counters: ${kind("counters")}, metrics: ${kind("metrics")}, predictions: ${kind("predictionLog")}`;
}
