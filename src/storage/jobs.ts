import { z } from "zod";

export const JobStateSchema = z.enum(["queued", "running", "succeeded", "failed"]);

/** A training job as `GET /api/ml/train/status` reports it. */
export const TrainingJobSchema = z.object({
  request_id: z.string(),
  model_id: z.string(),
  state: JobStateSchema,
  created_at: z.string(),
  started_at: z.string().optional(),
  finished_at: z.string().optional(),
  progress: z.string().optional(),
  /** The registered versions and their evaluation reports, once succeeded. */
  result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type TrainingJob = z.infer<typeof TrainingJobSchema>;

/** Whether a job has its final state. */
export const isFinished = (job: Pick<TrainingJob, "state">) =>
  job.state === "succeeded" || job.state === "failed";

/**
 * Where training jobs' state lives: in process (embedded) or in Upstash Redis (production, across functions).
 * A finished state (succeeded, failed) is final: a later write of a running state does not replace it, since on a
 * remote store a progress write that timed out on our side can still land after the result.
 */
export interface JobStore {
  readonly kind: string;
  put(job: TrainingJob): Promise<void>;
  get(requestId: string): Promise<TrainingJob | undefined>;
}

/** Jobs in process memory, kept for a day: status queries come soon after a run. */
export function createMemoryJobStore(): JobStore {
  const jobs = new Map<string, { job: TrainingJob; at: number }>();
  const ttlMs = 24 * 60 * 60 * 1000;
  return {
    kind: "memory",
    async put(job) {
      const now = Date.now();
      for (const [id, entry] of jobs) if (now - entry.at > ttlMs) jobs.delete(id);
      const state = jobs.get(job.request_id)?.job.state;
      if ((state === "succeeded" || state === "failed") && !isFinished(job)) return;
      jobs.set(job.request_id, { job: structuredClone(job), at: now });
    },
    async get(requestId) {
      const entry = jobs.get(requestId);
      return entry && structuredClone(entry.job);
    },
  };
}
