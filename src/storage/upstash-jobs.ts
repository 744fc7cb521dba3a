import { EdgeMLError } from "../errors.js";
import { type JobStore, TrainingJobSchema } from "./jobs.js";
import { withTimeout } from "./timeout.js";
import { UPSTASH_DEFAULTS, type UpstashAdapterOptions, type UpstashRedisLike } from "./upstash-cache.js";

/** A job's state is kept a day, as the in-process store does: status queries come soon after a run. */
export const JOB_TTL_SECONDS = 24 * 60 * 60;

/**
 * Training jobs on Upstash Redis, so that the function that trains and the one that answers status queries (two
 * invocations, perhaps two regions) see the same job: one JSON document per job at `<prefix>job:<request_id>`,
 * rewritten whole on every state change with a 24 h expiry. Unlike the cache, an outage here is an error: the
 * caller asked for a job's state and we cannot tell it.
 */
export function createUpstashJobStore(
  redis: UpstashRedisLike,
  options: UpstashAdapterOptions = {},
): JobStore {
  const prefix = `${options.prefix ?? UPSTASH_DEFAULTS.prefix}job:`;
  const timeoutMs = options.timeoutMs ?? UPSTASH_DEFAULTS.timeoutMs;
  const unavailable = (error: unknown) =>
    new EdgeMLError(
      "not_ready",
      `training job state is unavailable (${error instanceof Error ? error.message : String(error)}); try again shortly`,
      { cause: error },
    );
  return {
    kind: "upstash",
    async put(job) {
      await withTimeout(
        redis.set(prefix + job.request_id, JSON.stringify(job), { ex: JOB_TTL_SECONDS }),
        timeoutMs,
        "Upstash Redis (job put)",
      ).catch((error) => Promise.reject(unavailable(error)));
    },
    async get(requestId) {
      const value = await withTimeout(
        redis.get<unknown>(prefix + requestId),
        timeoutMs,
        "Upstash Redis (job get)",
      ).catch((error) => Promise.reject(unavailable(error)));
      if (value === null || value === undefined) return undefined;
      const parsed = TrainingJobSchema.safeParse(value);
      if (!parsed.success) {
        throw new EdgeMLError(
          "internal",
          `the stored state of training job ${requestId} is not valid: ${parsed.error.message}`,
        );
      }
      return parsed.data;
    },
  };
}
