import { z } from "zod";
import { DEFAULT_INTERVAL_LEVEL, INTERVAL_LEVELS, isIntervalLevel } from "./forecast/interval.js";

const RATE_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

// Messages without the field's name: the environment schema (src/runtime/env-schema.ts) prefixes the variable's
// name ("INFER_TIMEOUT_MS: must be > 0"), createApp the field's.
const positiveInt = () => z.number().int("must be a whole number").positive("must be > 0");
const nonNegativeInt = () => z.number().int("must be a whole number").nonnegative("must be >= 0");

/**
 * A per-client rate limit as the README documents it: `"600/60s"` (600 requests per 60 seconds; units ms, s, m, h;
 * `"60/m"` is 60 a minute) or `"off"` (null).
 */
export const rateLimitSetting = (variable: string) =>
  z.string().transform((text, ctx) => {
    const trimmed = text.trim().toLowerCase();
    if (trimmed === "off") return null;
    const match = /^(\d+)\s*\/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h)$/.exec(trimmed);
    const limit = Number(match?.[1]);
    const windowMs = Math.round(
      Number(match?.[2] ?? "1") * (RATE_UNITS_MS[match?.[3] as keyof typeof RATE_UNITS_MS] ?? 0),
    );
    if (match && limit >= 1 && windowMs >= 1) return { limit, windowMs };
    ctx.addIssue({
      code: "custom",
      message: `${variable} must be "<requests>/<window>" such as "600/60s" (units ms, s, m, h) or "off"; got "${text}"`,
    });
    return z.NEVER;
  });

/**
 * A secret sent as `Authorization: Bearer <secret>`: 16+ characters, none of them whitespace. A value with a space
 * or a trailing newline (a secrets file written with `echo`) would be accepted and could never match a header, so
 * it is refused at start with the reason instead.
 */
export const BearerSecret = (variable: string) =>
  z
    .string()
    .min(16, `${variable} must be at least 16 characters`)
    .regex(
      /^[\x21-\x7e]+$/,
      `${variable} must be printable ASCII without spaces or line breaks (a trailing newline from a secrets file?): such a token can never match an Authorization header`,
    );

/**
 * Versions retention keeps per model, newest first, beside every pinned, champion, canary, naive and restored one: a
 * week of daily retrains of both families (two versions a day; a retrain that changed nothing registers nothing),
 * as far back as a rollback goes in practice; older ones are archived, still listed and restorable.
 */
export const DEFAULT_RETAIN_VERSIONS = 14;

/**
 * Every tunable of the app, with its default and why it has that value. Validated once, when the app is built,
 * so a setting that cannot work fails at start-up rather than on the first request.
 */
export const AppConfigFields = z.object({
  /** A prediction that has not finished after this long answers 504; the users' service documents 30 s. */
  inferTimeoutMs: positiveInt().default(30_000),
  /** Sessions kept warm. Each costs its model's bytes and some wasm heap; 16 covers a registry of a few models × versions. */
  sessionCacheMax: positiveInt().default(16),
  /** Byte budget of warm sessions (model bytes as a proxy for their heap). The wasm heap tops out at 4 GiB. */
  sessionCacheMaxBytes: positiveInt().default(512 * 1024 * 1024),
  /** Largest model upload. Tree ensembles of a few thousand trees stay well under it; Vercel Blob takes 5 TB but the edge does not. */
  maxModelBytes: positiveInt().default(64 * 1024 * 1024),
  /** Largest infer request body: 8 MiB is about a million FP32 numbers as JSON, more than a batch should be. */
  maxInferBytes: positiveInt().default(8 * 1024 * 1024),
  /**
   * Largest output tensor of one run: 16 MiB is four million FP32 values, four times what the largest infer body
   * carries in, and already 50-100 MB of JSON on the way out (each number prints as 10-20 characters).
   */
  maxOutputBytes: positiveInt().default(16 * 1024 * 1024),
  /**
   * Wasm memory ceiling of the Node server's inference worker: a run needing more is refused with 413 instead of
   * taking the machine. 1 GiB holds the largest allowed model's session (about twice its bytes) many times over.
   */
  workerMaxMemoryBytes: positiveInt().default(1024 * 1024 * 1024),
  /**
   * A worker whose wasm memory is past this after a run is replaced, since wasm memory never shrinks: one large
   * run must not keep its peak for the life of the process. 256 MiB is well above a worker's few warm sessions.
   */
  workerRecycleBytes: positiveInt().default(256 * 1024 * 1024),
  /** How long a forecast is reused: the users' service caches predictions for 5 minutes. */
  cacheTtlMs: positiveInt().default(5 * 60 * 1000),
  /**
   * Seconds past one bar interval a current forecast's last bar may be old before it is refused as stale: Yahoo
   * publishes a bar within a minute or two of its close, and 15 minutes rides out a late one (and its 60 s reuse).
   */
  staleGraceSeconds: nonNegativeInt().default(900),
  /**
   * Level of the prediction interval a forecast request gets when it names none: the central 80 % interval, wide
   * enough to be useful and narrow enough that its coverage is checked on 90 days of data (±10 points).
   */
  intervalLevel: z
    .number()
    .refine(isIntervalLevel, `must be one of the calibrated levels ${INTERVAL_LEVELS.join(", ")}`)
    .default(DEFAULT_INTERVAL_LEVEL),
  /**
   * Shadow forecasts run only while the engine has at most this many runs waiting or running: a mirror must never
   * delay answers, and a depth (not a time) keeps the rule deterministic under load. 4 lets a quiet server mirror
   * every forecast and a busy one drop the mirrors first.
   */
  shadowMaxQueueDepth: nonNegativeInt().default(4),
  /**
   * Resolved outcomes each version of a rollout needs before the evaluation may decide: 30 paired errors are the
   * usual floor of a Diebold–Mariano test's normal approximation.
   */
  rolloutMinOutcomes: positiveInt().default(30),
  /** A rollout undecided after this long is ended: 14 days of daily bars are 14 outcomes of a 24h model per client. */
  rolloutMaxDurationSeconds: positiveInt().default(14 * 24 * 60 * 60),
  /** The registry listing is cached this long per process, so version resolution costs no I/O per request. */
  registryListTtlMs: nonNegativeInt().default(5_000),
  /** Versions kept per model beside the protected ones; older ones are archived when a version registers. */
  retainVersions: positiveInt().default(DEFAULT_RETAIN_VERSIONS),
  /** The metric that ranks versions when no champion is set, and whether higher is better. */
  bestMetric: z.string().min(1).default("skill"),
  bestMetricHigherIsBetter: z.boolean().default(true),
  /**
   * How forecast models pick their serving version when nobody chose one. `strict`: only a version that beats naive
   * with significance (one-sided Diebold–Mariano on its walk-forward, α = 0.05, Holm across candidates), else the
   * naive baseline: a lucky test split never serves. `best`: the highest BEST_METRIC, untested (the old rule).
   */
  selectionPolicy: z.enum(["strict", "best"]).default("strict"),
  /** Bearer token of the admin routes. Unset means the admin API is refused, never open. */
  adminToken: BearerSecret("ADMIN_TOKEN").optional(),
  /** Bearer token a Prometheus scraper sends to GET /metrics (the admin token works too), so it holds no admin rights. */
  metricsToken: BearerSecret("METRICS_TOKEN").optional(),
  /** Attempts per state write of a running training job (the first included); each retry waits twice as long. */
  jobWriteAttempts: positiveInt().default(5),
  /** Wait before a job write's first retry: 200 ms doubling to 3.2 s rides out a restarted Redis (seconds). */
  jobWriteBackoffMs: nonNegativeInt().default(200),
  /**
   * Requests per client (IP, or configured API key) on the public routes: 10 a second on average is far above what
   * an OIP client or a dashboard sends, and low enough that one client cannot take a 2-core server for itself.
   */
  rateLimitPublic: rateLimitSetting("RATE_LIMIT_PUBLIC").prefault("600/60s"),
  /** Requests per client on the admin routes, counted before authentication: it bounds token guessing too. */
  rateLimitAdmin: rateLimitSetting("RATE_LIMIT_ADMIN").prefault("60/60s"),
  /**
   * Requests per client that name a version which is not the one serving (`/v2/models/m/versions/v/...`): each
   * may load a session and evict a warm one, so cycling old versions is bounded well below the public budget.
   */
  rateLimitColdLoad: rateLimitSetting("RATE_LIMIT_COLD_LOAD").prefault("20/60s"),
  /**
   * API keys whose `x-api-key` header identifies a client for rate limiting (instead of its IP): one budget per key
   * across addresses. A key the server was not given is ignored, so a client cannot mint identities.
   */
  apiKeys: z.array(z.string().min(16, "each key in API_KEYS must be at least 16 characters")).default([]),
  serverName: z.string().default("edgeml"),
});

/** The settings with the checks that span fields: combinations that cannot work are refused at start-up. */
export const AppConfigSchema = AppConfigFields.superRefine((config, ctx) => {
  const atLeast = (value: number, variable: string, minimum: number, other: string, why: string) => {
    if (value < minimum) {
      ctx.addIssue({
        code: "custom",
        message: `${variable} (${value}) must be at least ${other} (${minimum}): ${why}`,
      });
    }
  };
  atLeast(
    config.sessionCacheMaxBytes,
    "SESSION_CACHE_MAX_BYTES",
    config.maxModelBytes,
    "MAX_MODEL_BYTES",
    "the session cache must be able to hold the largest model the server accepts, or that model reloads on every request",
  );
  atLeast(
    config.workerMaxMemoryBytes,
    "WORKER_MAX_MEMORY_BYTES",
    config.workerRecycleBytes,
    "WORKER_RECYCLE_BYTES",
    "a worker is recycled once its memory passes the recycle bound, which must fit under its ceiling",
  );
  atLeast(
    config.workerMaxMemoryBytes,
    "WORKER_MAX_MEMORY_BYTES",
    2 * config.maxModelBytes,
    "twice MAX_MODEL_BYTES",
    "a session takes about twice its model's bytes of wasm memory, and the largest model must load in the worker",
  );
});

export type AppConfig = z.output<typeof AppConfigSchema>;
export type AppConfigInput = z.input<typeof AppConfigSchema>;

export const VERSION = "0.1.0";
