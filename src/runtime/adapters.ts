import { Redis } from "@upstash/redis";
import { parseConnectionString } from "@vercel/edge-config";
import { z } from "zod";
import type { ArtifactStore } from "../storage/artifacts.js";
import { createMemoryAuditLog, createUpstashAuditLog } from "../storage/audit-log.js";
import { createBlobArtifactStore } from "../storage/blob-artifacts.js";
import type { PredictionCache } from "../storage/cache.js";
import { type Counters, createMemoryCounters } from "../storage/counters.js";
import { createEdgeConfigPointerStore } from "../storage/edge-config-pointers.js";
import { createMemoryJobStore, type JobStore } from "../storage/jobs.js";
import { createMemoryCache } from "../storage/memory-cache.js";
import type { PointerStore } from "../storage/pointers.js";
import { createMemoryRateLimiter, type RateLimiter } from "../storage/ratelimit.js";
import { createUpstashCache, upstashClientOptions } from "../storage/upstash-cache.js";
import { createUpstashCounters } from "../storage/upstash-counters.js";
import { createUpstashJobStore } from "../storage/upstash-jobs.js";
import { createUpstashRateLimiter } from "../storage/upstash-ratelimit.js";

type Env = Record<string, string | undefined>;

/** The storage ports of the app, and which adapter each one got (for the start-up banner and /v2 health). */
export interface Adapters {
  artifacts: ArtifactStore;
  pointers: PointerStore;
  cache: PredictionCache;
  jobs: JobStore;
  counters: Counters;
  rateLimiter: RateLimiter;
}

/** What the runtime offers when a production service is not configured: the embedded adapters it can run. */
export interface EmbeddedFallback {
  artifacts: () => ArtifactStore;
  pointers: () => PointerStore;
}

const blank = (value: string | undefined) => (value === undefined || value.trim() === "" ? undefined : value);
const optionalInt = z.coerce.number().int().nonnegative().optional();

/**
 * The production services' variables. Each service is configured by its variables being present; a service half
 * configured (a URL without its token) fails at start with the name of what is missing.
 */
const AdapterEnvSchema = z
  .object({
    UPSTASH_REDIS_REST_URL: z.url("UPSTASH_REDIS_REST_URL must be a URL").optional(),
    UPSTASH_REDIS_REST_TOKEN: z.string().optional(),
    UPSTASH_KEY_PREFIX: z.string().optional(),
    UPSTASH_TIMEOUT_MS: optionalInt,
    EDGE_CONFIG: z
      .string()
      .refine((cs) => parseConnectionString(cs) !== null, {
        message:
          "EDGE_CONFIG is not an Edge Config connection string (https://edge-config.vercel.com/ecfg_…?token=…)",
      })
      .optional(),
    EDGE_CONFIG_ID: z.string().optional(),
    EDGE_CONFIG_KEY_PREFIX: z.string().optional(),
    EDGE_CONFIG_CACHE_TTL_MS: optionalInt,
    VERCEL_API_TOKEN: z.string().optional(),
    VERCEL_TEAM_ID: z.string().optional(),
    VERCEL_API_URL: z.url("VERCEL_API_URL must be a URL").optional(),
    BLOB_READ_WRITE_TOKEN: z.string().optional(),
    BLOB_PREFIX: z.string().optional(),
    BLOB_ACCESS: z.enum(["public", "private"], "BLOB_ACCESS must be public or private").optional(),
    ADMIN_TOKEN: z.string().optional(),
  })
  .superRefine((env, ctx) => {
    const missing = (variable: string, because: string) =>
      ctx.addIssue({ code: "custom", path: [variable], message: `${variable} is required ${because}` });
    if (env.UPSTASH_REDIS_REST_URL && !env.UPSTASH_REDIS_REST_TOKEN)
      missing("UPSTASH_REDIS_REST_TOKEN", "when UPSTASH_REDIS_REST_URL is set");
    if (env.UPSTASH_REDIS_REST_TOKEN && !env.UPSTASH_REDIS_REST_URL)
      missing("UPSTASH_REDIS_REST_URL", "when UPSTASH_REDIS_REST_TOKEN is set");
    if (!env.EDGE_CONFIG) {
      for (const variable of ["EDGE_CONFIG_ID", "VERCEL_API_TOKEN"] as const) {
        if (env[variable]) missing("EDGE_CONFIG", `when ${variable} is set (the read connection string)`);
      }
    } else if (env.ADMIN_TOKEN && !env.VERCEL_API_TOKEN) {
      // The admin API promotes and rolls back by writing Edge Config; without a token every such call would fail.
      missing(
        "VERCEL_API_TOKEN",
        "to write Edge Config pointers when the admin API is enabled (ADMIN_TOKEN is set)",
      );
    }
    if (env.BLOB_READ_WRITE_TOKEN && !/^vercel_blob_rw_[^_]+_.+/.test(env.BLOB_READ_WRITE_TOKEN)) {
      ctx.addIssue({
        code: "custom",
        path: ["BLOB_READ_WRITE_TOKEN"],
        message: "BLOB_READ_WRITE_TOKEN must be a read-write token (vercel_blob_rw_<storeId>_<secret>)",
      });
    }
  });

export type AdapterEnv = z.output<typeof AdapterEnvSchema>;

/** Validates the production services' variables; throws one message naming every problem. */
export function parseAdapterEnv(env: Env): AdapterEnv {
  const parsed = AdapterEnvSchema.safeParse(
    Object.fromEntries(Object.keys(AdapterEnvSchema.shape).map((key) => [key, blank(env[key])])),
  );
  if (!parsed.success) {
    throw new Error(`edgeml: invalid environment: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  }
  return parsed.data;
}

/**
 * The storage adapters from the environment: each port gets its production adapter when that service's
 * variables are present, its embedded one otherwise.
 *
 * - `UPSTASH_REDIS_REST_URL` + `UPSTASH_REDIS_REST_TOKEN` → prediction cache, training jobs, usage counters and rate limits in Upstash Redis
 *   (`UPSTASH_KEY_PREFIX`, default `edgeml:`; `UPSTASH_TIMEOUT_MS`, default 1000); otherwise process memory.
 * - `EDGE_CONFIG` → version pointers read from Edge Config; writes (promote, rollback, pin) through the Vercel API
 *   with `VERCEL_API_TOKEN`, to `EDGE_CONFIG_ID` (default: the id in `EDGE_CONFIG`), `VERCEL_TEAM_ID` (optional),
 *   `VERCEL_API_URL` (default https://api.vercel.com). `EDGE_CONFIG_KEY_PREFIX` (default `edgeml`),
 *   `EDGE_CONFIG_CACHE_TTL_MS` (default 5000). The audit log of pointer changes goes to Upstash Redis when it is
 *   configured (a capped list per model), to process memory otherwise. Otherwise the runtime's embedded pointers.
 * - `BLOB_READ_WRITE_TOKEN` → model artifacts in Vercel Blob (`BLOB_PREFIX`, default `models/`; `BLOB_ACCESS`,
 *   default `public`). The Blob client itself reads `VERCEL_BLOB_API_URL` (a local emulator) and
 *   `VERCEL_BLOB_RETRIES`. Otherwise the runtime's embedded artifacts.
 */
export function adaptersFromEnv(env: Env, embedded: EmbeddedFallback): Adapters {
  const e = parseAdapterEnv(env);
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
    // Shared by every instance in production; per process otherwise (each instance then allows the full budget).
    rateLimiter: redis ? createUpstashRateLimiter(redis, upstash) : createMemoryRateLimiter(),
  };
}

/** One line per port naming its adapter, for start-up logs. */
export function describeAdapters(adapters: Partial<Record<keyof Adapters, { kind: string }>>): string {
  const kind = (port: keyof Adapters) => adapters[port]?.kind ?? "memory";
  return `artifacts: ${kind("artifacts")}, pointers: ${kind("pointers")}, cache: ${kind("cache")}, jobs: ${kind("jobs")}, counters: ${kind("counters")}`;
}
