/**
 * The variables the edge app reads, from `process.env` on Vercel Edge. Each is named literally: Vercel (like
 * Next.js for edge code) may provide only the variables it finds referenced as `process.env.NAME`, so the wiring
 * never reads `process.env` by a computed key. test/runtime/vercel-env.test.ts keeps this list in step with
 * configFromEnv and adaptersFromEnv.
 */
export function vercelEdgeEnv(): Record<string, string | undefined> {
  return {
    // The app (src/runtime/env.ts)
    ADMIN_TOKEN: process.env.ADMIN_TOKEN,
    INFER_TIMEOUT_MS: process.env.INFER_TIMEOUT_MS,
    SESSION_CACHE_MAX: process.env.SESSION_CACHE_MAX,
    SESSION_CACHE_MAX_BYTES: process.env.SESSION_CACHE_MAX_BYTES,
    MAX_MODEL_BYTES: process.env.MAX_MODEL_BYTES,
    MAX_INFER_BYTES: process.env.MAX_INFER_BYTES,
    MAX_OUTPUT_BYTES: process.env.MAX_OUTPUT_BYTES,
    // Read by the shared configuration (and validated against MAX_MODEL_BYTES); the edge has no inference worker.
    WORKER_MAX_MEMORY_BYTES: process.env.WORKER_MAX_MEMORY_BYTES,
    WORKER_RECYCLE_BYTES: process.env.WORKER_RECYCLE_BYTES,
    REGISTRY_LIST_TTL_MS: process.env.REGISTRY_LIST_TTL_MS,
    BEST_METRIC: process.env.BEST_METRIC,
    PREDICTION_CACHE_TTL_MS: process.env.PREDICTION_CACHE_TTL_MS,
    JOB_WRITE_ATTEMPTS: process.env.JOB_WRITE_ATTEMPTS,
    JOB_WRITE_BACKOFF_MS: process.env.JOB_WRITE_BACKOFF_MS,
    RATE_LIMIT_PUBLIC: process.env.RATE_LIMIT_PUBLIC,
    RATE_LIMIT_ADMIN: process.env.RATE_LIMIT_ADMIN,
    RATE_LIMIT_COLD_LOAD: process.env.RATE_LIMIT_COLD_LOAD,
    API_KEYS: process.env.API_KEYS,
    // The production stores (src/runtime/adapters.ts)
    UPSTASH_REDIS_REST_URL: process.env.UPSTASH_REDIS_REST_URL,
    UPSTASH_REDIS_REST_TOKEN: process.env.UPSTASH_REDIS_REST_TOKEN,
    UPSTASH_KEY_PREFIX: process.env.UPSTASH_KEY_PREFIX,
    UPSTASH_TIMEOUT_MS: process.env.UPSTASH_TIMEOUT_MS,
    EDGE_CONFIG: process.env.EDGE_CONFIG,
    EDGE_CONFIG_ID: process.env.EDGE_CONFIG_ID,
    EDGE_CONFIG_KEY_PREFIX: process.env.EDGE_CONFIG_KEY_PREFIX,
    EDGE_CONFIG_CACHE_TTL_MS: process.env.EDGE_CONFIG_CACHE_TTL_MS,
    VERCEL_API_TOKEN: process.env.VERCEL_API_TOKEN,
    VERCEL_TEAM_ID: process.env.VERCEL_TEAM_ID,
    VERCEL_API_URL: process.env.VERCEL_API_URL,
    BLOB_READ_WRITE_TOKEN: process.env.BLOB_READ_WRITE_TOKEN,
    BLOB_PREFIX: process.env.BLOB_PREFIX,
    BLOB_ACCESS: process.env.BLOB_ACCESS,
  };
}
