import { parseConnectionString } from "@vercel/edge-config";
import { z } from "zod";
import { AppConfigFields, BearerSecret, rateLimitSetting } from "../config.js";

/**
 * Every environment variable edgeml reads, in one zod schema: the README's Configuration table is checked against
 * it (test/architecture/env-schema.test.ts), and the literal `process.env.NAME` reads Vercel Edge needs are
 * generated from it (src/runtime/vercel/edge-env.ts, by scripts/edge/gen-env.ts). Each variable is parsed from
 * its text to the type the wiring uses, and every error names the variable: `INFER_TIMEOUT_MS: must be > 0 (got
 * "-1")`. The ranges of the app's settings are those of src/config.ts (each variable pipes into its field there).
 *
 * Not listed, because no one configures them: `VERCEL` (set by the platform) and the Blob client's own
 * `VERCEL_BLOB_API_URL` / `VERCEL_BLOB_RETRIES` (read by @vercel/blob itself; the dev stack and tests use them).
 */

/** Text to number, then the field's own checks (int, > 0, …) from src/config.ts; its default stays the app's. */
const numberFrom = (field: z.ZodDefault<z.ZodNumber>) =>
  z
    .string()
    .transform((text, ctx) => {
      const value = Number(text.trim());
      if (!Number.isFinite(value)) {
        ctx.addIssue({ code: "custom", message: "must be a number" });
        return z.NEVER;
      }
      return value;
    })
    .pipe(field.unwrap());

const timeoutMs = z.coerce
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .nonnegative("must be >= 0");
// Kept as text: the app parses it (src/config.ts); checked here so that the error names the variable at start.
const rateLimit = z
  .string()
  .refine(
    (text) => rateLimitSetting("").safeParse(text).success,
    'must be "<requests>/<window>" such as "600/60s" (units ms, s, m, h) or "off"',
  );
const positiveInt = z.coerce
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .positive("must be > 0");
const url = z.url({ error: "must be a URL" });

/** Header names as RFC 9110 spells tokens; anything else in TRUST_PROXY is a typo worth stopping for. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

const fields = {
  // Where the Node server listens (npm start). 0 asks the system for a free port.
  PORT: z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(0, "must be a port number, 0 to 65535")
    .max(65_535, "must be a port number, 0 to 65535"),
  HOST: z.string().regex(/^[\w.:[\]%-]+$/, "must be a host name or an IP address"),
  // Processes `npm start` serves with (src/runtime/node/cluster.ts); unset: every core.
  WORKERS: z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(1, "must be 1 or more (1: one process, no primary)")
    .max(256, "must be at most 256"),
  // The Node server's embedded registry and market data.
  MODELS_DIR: z.string(),
  POINTERS_FILE: z.string(),
  MARKET_DATA_DIR: z.string(),
  // The Node server's prediction log (SQLite) when Upstash is not configured.
  PREDICTION_LOG_FILE: z.string(),
  TRUST_PROXY: z.string().regex(HEADER_NAME, "must name one HTTP header (e.g. x-forwarded-for)"),
  // The Vercel training function's cron.
  CRON_SECRET: BearerSecret("CRON_SECRET"),

  // The app (src/config.ts).
  ADMIN_TOKEN: BearerSecret("ADMIN_TOKEN"),
  METRICS_TOKEN: BearerSecret("METRICS_TOKEN"),
  INFER_TIMEOUT_MS: numberFrom(AppConfigFields.shape.inferTimeoutMs),
  SESSION_CACHE_MAX: numberFrom(AppConfigFields.shape.sessionCacheMax),
  SESSION_CACHE_MAX_BYTES: numberFrom(AppConfigFields.shape.sessionCacheMaxBytes),
  MAX_MODEL_BYTES: numberFrom(AppConfigFields.shape.maxModelBytes),
  MAX_INFER_BYTES: numberFrom(AppConfigFields.shape.maxInferBytes),
  MAX_OUTPUT_BYTES: numberFrom(AppConfigFields.shape.maxOutputBytes),
  WORKER_MAX_MEMORY_BYTES: numberFrom(AppConfigFields.shape.workerMaxMemoryBytes),
  WORKER_RECYCLE_BYTES: numberFrom(AppConfigFields.shape.workerRecycleBytes),
  REGISTRY_LIST_TTL_MS: numberFrom(AppConfigFields.shape.registryListTtlMs),
  BEST_METRIC: z.string(),
  SELECTION_POLICY: AppConfigFields.shape.selectionPolicy.unwrap(),
  RETAIN_VERSIONS: numberFrom(AppConfigFields.shape.retainVersions),
  PREDICTION_CACHE_TTL_MS: numberFrom(AppConfigFields.shape.cacheTtlMs),
  MARKET_STALE_GRACE_SECONDS: numberFrom(AppConfigFields.shape.staleGraceSeconds),
  FORECAST_INTERVAL_LEVEL: numberFrom(AppConfigFields.shape.intervalLevel),
  SHADOW_MAX_QUEUE_DEPTH: numberFrom(AppConfigFields.shape.shadowMaxQueueDepth),
  ROLLOUT_MIN_OUTCOMES: numberFrom(AppConfigFields.shape.rolloutMinOutcomes),
  ROLLOUT_MAX_DURATION_SECONDS: numberFrom(AppConfigFields.shape.rolloutMaxDurationSeconds),
  JOB_WRITE_ATTEMPTS: numberFrom(AppConfigFields.shape.jobWriteAttempts),
  JOB_WRITE_BACKOFF_MS: numberFrom(AppConfigFields.shape.jobWriteBackoffMs),
  RATE_LIMIT_PUBLIC: rateLimit,
  RATE_LIMIT_ADMIN: rateLimit,
  RATE_LIMIT_COLD_LOAD: rateLimit,
  // Comma or whitespace separated, so a list pasted from a secrets manager with newlines works too.
  API_KEYS: z
    .string()
    .transform((text) => text.split(/[\s,]+/).filter((key) => key !== ""))
    .pipe(AppConfigFields.shape.apiKeys.unwrap()),

  // The production adapters (src/runtime/adapters.ts, docs/production-adapters.md).
  UPSTASH_REDIS_REST_URL: url,
  UPSTASH_REDIS_REST_TOKEN: z.string(),
  UPSTASH_KEY_PREFIX: z.string(),
  UPSTASH_TIMEOUT_MS: timeoutMs,
  EDGE_CONFIG: z.string().refine((cs) => parseConnectionString(cs) !== null, {
    message: "not an Edge Config connection string (https://edge-config.vercel.com/ecfg_…?token=…)",
  }),
  EDGE_CONFIG_ID: z.string(),
  EDGE_CONFIG_KEY_PREFIX: z.string(),
  EDGE_CONFIG_CACHE_TTL_MS: timeoutMs,
  VERCEL_API_TOKEN: z.string(),
  VERCEL_TEAM_ID: z.string(),
  VERCEL_API_URL: url,
  BLOB_READ_WRITE_TOKEN: z
    .string()
    .regex(/^vercel_blob_rw_[^_]+_.+/, "must be a read-write token (vercel_blob_rw_<storeId>_<secret>)"),
  BLOB_PREFIX: z.string(),
  BLOB_ACCESS: z.enum(["public", "private"], "must be public or private"),
  // The prediction log's bounds (src/storage/prediction-log.ts): records per model, and Upstash's expiry.
  PREDICTION_LOG_CAP: positiveInt,
  PREDICTION_LOG_TTL_SECONDS: positiveInt,
};

export type EnvName = keyof typeof fields;

/** Every variable's name, in the schema's order. */
export const ENV_NAMES = Object.keys(fields) as EnvName[];

/**
 * The variables only Node reads (the server's listening address and files, the training function's cron): the
 * edge bundles leave them out of their literal `process.env` reads.
 */
export const NODE_ONLY_ENV = new Set<EnvName>([
  "PORT",
  "HOST",
  "WORKERS",
  "MODELS_DIR",
  "POINTERS_FILE",
  "MARKET_DATA_DIR",
  "PREDICTION_LOG_FILE",
  "TRUST_PROXY",
  "CRON_SECRET",
]);

const optionalFields = Object.fromEntries(
  Object.entries(fields).map(([name, schema]) => [name, schema.optional()]),
) as { [K in EnvName]: z.ZodOptional<(typeof fields)[K]> };

/** Services configured by half their variables fail at start with the name of what is missing. */
export const EnvSchema = z.object(optionalFields).superRefine((env, ctx) => {
  const missing = (variable: EnvName, because: string) =>
    ctx.addIssue({ code: "custom", path: [variable], message: `required ${because}` });
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
});

export type Environment = z.output<typeof EnvSchema>;

/** What the runtimes hand over: `process.env`, workerd's `env` binding, a test's object. */
export type RawEnv = Record<string, string | undefined>;

const blank = (value: string | undefined) => (value === undefined || value.trim() === "" ? undefined : value);

/** "INFER_TIMEOUT_MS: must be > 0 (got "-1")"; a message that already starts with its variable is kept. */
const describe = (issue: z.core.$ZodIssue, raw: RawEnv): string => {
  const variable = String(issue.path[0] ?? "");
  const got = raw[variable];
  const message = issue.message.startsWith(variable) ? issue.message : `${variable}: ${issue.message}`;
  // Secrets are never echoed, only their length.
  const secret = /TOKEN|SECRET|KEYS/.test(variable);
  const shown = secret ? `${got?.length ?? 0} characters` : `"${got}"`;
  return got === undefined || message.includes("got ") ? message : `${message} (got ${shown})`;
};

const parsed = new WeakMap<RawEnv, Environment>();

/**
 * The environment, validated and typed. Parsed once per environment object: the app's settings
 * (configFromEnv) and the adapters (adaptersFromEnv) read the same parse. Unset and blank variables are absent.
 * Throws one error naming every variable that is wrong.
 */
export function parseEnv(raw: RawEnv): Environment {
  const known = parsed.get(raw);
  if (known) return known;
  const result = EnvSchema.safeParse(Object.fromEntries(ENV_NAMES.map((name) => [name, blank(raw[name])])));
  if (!result.success) {
    throw new Error(
      `edgeml: invalid environment: ${[...new Set(result.error.issues.map((i) => describe(i, raw)))].join("; ")}`,
    );
  }
  parsed.set(raw, result.data);
  return result.data;
}
