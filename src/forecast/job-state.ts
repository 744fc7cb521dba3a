import type { JobStore, TrainingJob } from "../storage/jobs.js";

/** How a running job's state writes are retried when the job store fails. */
export interface JobWriteRetry {
  /** Attempts per state, the first included. */
  attempts: number;
  /** Wait before the first retry; doubles each retry, up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
}

/**
 * Five attempts, 200 ms doubling to 3.2 s: about 6 s of waiting per state, which rides out a store failover or a
 * restarted Redis (seconds) and still ends well inside a training function's run. Bounded, so a store that stays
 * down costs a log line, never a job that never finishes.
 */
export const JOB_WRITE_RETRY: JobWriteRetry = { attempts: 5, backoffMs: 200, maxBackoffMs: 3_200 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The state of one running job, written to the store latest-wins: while a write is failing and being retried, a
 * newer state (the next progress, or the result) replaces the one being retried, so an outage delays the result by
 * at most one backoff and a late progress can never overwrite it. `write` never rejects: a state that could not be
 * stored after its retries is reported to `warn` and left to the next one; `stored` says what the store holds.
 */
export function createJobStateWriter(
  jobs: JobStore,
  retry: JobWriteRetry,
  warn: (message: string, error: unknown) => void,
  wait: (ms: number) => Promise<void> = sleep,
) {
  let pending: TrainingJob | undefined;
  let stored: TrainingJob | undefined;
  let draining: Promise<void> | undefined;

  const drain = async () => {
    let failures = 0;
    let retrying: TrainingJob | undefined;
    while (pending) {
      const job = pending;
      if (job !== retrying) failures = 0;
      try {
        await jobs.put(job);
        stored = job;
        if (pending === job) pending = undefined;
      } catch (error) {
        failures += 1;
        retrying = job;
        if (failures >= retry.attempts) {
          warn(
            `could not store the ${job.state} state of training job ${job.request_id} after ${failures} attempts`,
            error,
          );
          if (pending === job) pending = undefined;
        } else {
          await wait(Math.min(retry.backoffMs * 2 ** (failures - 1), retry.maxBackoffMs));
        }
      }
    }
    // Cleared in the same synchronous step as the loop's last check: a write() after this starts a new drain.
    draining = undefined;
  };

  return {
    /** Queues `job` as the state to store; resolves when it, or a newer state, is stored or given up on. */
    write(job: TrainingJob): Promise<void> {
      pending = job;
      draining ??= drain();
      return draining;
    },
    /** The last state the store acknowledged. */
    get stored() {
      return stored;
    },
  };
}
