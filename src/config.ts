import { z } from "zod";

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
 * Every tunable of the app, with its default and why it has that value. Validated once, when the app is built,
 * so a setting that cannot work fails at start-up rather than on the first request.
 */
export const AppConfigSchema = z.object({
  /** A prediction that has not finished after this long answers 504; the users' service documents 30 s. */
  inferTimeoutMs: z.number().int().positive().default(30_000),
  /** Sessions kept warm. Each costs its model's bytes and some wasm heap; 16 covers a registry of a few models × versions. */
  sessionCacheMax: z.number().int().positive().default(16),
  /** Byte budget of warm sessions (model bytes as a proxy for their heap). The wasm heap tops out at 4 GiB. */
  sessionCacheMaxBytes: z
    .number()
    .int()
    .positive()
    .default(512 * 1024 * 1024),
  /** Largest model upload. Tree ensembles of a few thousand trees stay well under it; Vercel Blob takes 5 TB but the edge does not. */
  maxModelBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** Largest infer request body: 8 MiB is about a million FP32 numbers as JSON, more than a batch should be. */
  maxInferBytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  /** How long a forecast is reused: the users' service caches predictions for 5 minutes. */
  cacheTtlMs: z
    .number()
    .int()
    .positive()
    .default(5 * 60 * 1000),
  /** The registry listing is cached this long per process, so version resolution costs no I/O per request. */
  registryListTtlMs: z.number().int().nonnegative().default(5_000),
  /** The metric that ranks versions when no champion is set, and whether higher is better. */
  bestMetric: z.string().min(1).default("skill"),
  bestMetricHigherIsBetter: z.boolean().default(true),
  /** Bearer token of the admin routes. Unset means the admin API is refused, never open. */
  adminToken: BearerSecret("ADMIN_TOKEN").optional(),
  /** Attempts per state write of a running training job (the first included); each retry waits twice as long. */
  jobWriteAttempts: z.number().int().positive().default(5),
  /** Wait before a job write's first retry: 200 ms doubling to 3.2 s rides out a restarted Redis (seconds). */
  jobWriteBackoffMs: z.number().int().nonnegative().default(200),
  serverName: z.string().default("edgeml"),
});

export type AppConfig = z.output<typeof AppConfigSchema>;
export type AppConfigInput = z.input<typeof AppConfigSchema>;

export const VERSION = "0.1.0";
