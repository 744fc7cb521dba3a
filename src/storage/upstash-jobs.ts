import { EdgeMLError, errorMessage } from "../errors.js";
import { StoreError } from "./errors.js";
import { isFinished, type JobStore, TrainingJobSchema } from "./jobs.js";
import { withTimeout } from "./timeout.js";
import { type UpstashAdapterOptions, upstashSettings } from "./upstash-cache.js";

/** A job's state is kept a day, as the in-process store does: status queries come soon after a run. */
export const JOB_TTL_SECONDS = 24 * 60 * 60;

/** All the job store needs from `@upstash/redis`'s `Redis`. */
export interface UpstashJobsRedisLike {
  set(key: string, value: string, options: { ex: number }): Promise<unknown>;
  mget<T extends unknown[]>(...keys: string[]): Promise<T>;
}

/**
 * Training jobs on Upstash Redis, so that the function that trains and the one that answers status queries (two
 * invocations, perhaps two regions) see the same job: one JSON document per job at `<prefix>job:<request_id>`,
 * rewritten whole on every state change with a 24 h expiry, and the finished state in a key of its own
 * (`…:<request_id>:final`), read first. A progress write that timed out on our side may still land at Redis after
 * the result was written; in its own key, it can never overwrite the result. Unlike the cache, an outage here is an
 * error: the caller asked for a job's state and we cannot tell it.
 */
export function createUpstashJobStore(
  redis: UpstashJobsRedisLike,
  options: UpstashAdapterOptions = {},
): JobStore {
  const { prefix, timeoutMs } = upstashSettings(options, "job");
  const unavailable = (error: unknown) =>
    new StoreError(
      "Upstash Redis",
      "unavailable",
      // @upstash/redis ends its messages with the command it sent (a job's whole JSON): the cause keeps it.
      `training job state is unavailable (${errorMessage(error).replace(/,? *command was: .*$/s, "")}); try again shortly`,
      { cause: error },
    );
  return {
    kind: "upstash",
    async put(job) {
      const key = `${prefix}${job.request_id}${isFinished(job) ? ":final" : ""}`;
      await withTimeout(
        redis.set(key, JSON.stringify(job), { ex: JOB_TTL_SECONDS }),
        timeoutMs,
        "Upstash Redis (job put)",
      ).catch((error) => Promise.reject(unavailable(error)));
    },
    async get(requestId) {
      const [latest, final] = await withTimeout(
        redis.mget<[unknown, unknown]>(prefix + requestId, `${prefix}${requestId}:final`),
        timeoutMs,
        "Upstash Redis (job get)",
      ).catch((error) => Promise.reject(unavailable(error)));
      const value = final ?? latest;
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
