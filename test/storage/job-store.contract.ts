import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobStore, TrainingJob } from "../../src/storage/jobs.js";
import type { Subject } from "./artifact-store.contract.js";

const job = (overrides: Partial<TrainingJob> = {}): TrainingJob => ({
  request_id: crypto.randomUUID(),
  model_id: "BTC",
  state: "queued",
  created_at: "2026-01-01T00:00:00.000Z",
  ...overrides,
});

/** The behaviour every JobStore adapter must have (src/storage/jobs.ts). */
export function jobStoreContract(name: string, make: () => Promise<Subject<JobStore>>): void {
  describe(`JobStore contract: ${name}`, () => {
    let subject: Subject<JobStore>;
    let jobs: JobStore;
    beforeEach(async () => {
      subject = await make();
      jobs = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup?.();
    });

    it("knows no job it was never given", async () => {
      expect(await jobs.get(crypto.randomUUID())).toBeUndefined();
    });

    it("returns a job exactly as it was put, result and error included", async () => {
      const done = job({
        state: "succeeded",
        started_at: "2026-01-01T00:00:01.000Z",
        finished_at: "2026-01-01T00:00:09.000Z",
        progress: "registering BTC-24h ridge",
        result: { versions: [{ name: "BTC-24h", version: "2", test: { mape: 0.0213 } }], reports: [{}] },
      });
      const failed = job({
        state: "failed",
        error: { code: "market_data_unavailable", message: "edgeml: no bars" },
      });
      await jobs.put(done);
      await jobs.put(failed);
      expect(await jobs.get(done.request_id)).toEqual(done);
      expect(await jobs.get(failed.request_id)).toEqual(failed);
    });

    it("keeps the latest state of a job as it moves from queued to running to succeeded", async () => {
      const queued = job();
      await jobs.put(queued);
      await jobs.put({ ...queued, state: "running", started_at: "2026-01-01T00:00:01.000Z" });
      const finished = { ...queued, state: "succeeded" as const, finished_at: "2026-01-01T00:00:02.000Z" };
      await jobs.put(finished);
      expect(await jobs.get(queued.request_id)).toEqual(finished);
    });

    it("keeps a finished state final: a running state written after it (a late progress write) does not replace it", async () => {
      const queued = job();
      const running = { ...queued, state: "running" as const, progress: "training BTC-24h ridge" };
      const finished = { ...queued, state: "succeeded" as const, finished_at: "2026-01-01T00:00:02.000Z" };
      await jobs.put(running);
      await jobs.put(finished);
      await jobs.put({ ...running, progress: "registering BTC-24h ridge" });
      expect(await jobs.get(queued.request_id)).toEqual(finished);
    });

    it("hands out copies: changing a returned job changes nothing stored", async () => {
      const queued = job();
      await jobs.put(queued);
      const read = (await jobs.get(queued.request_id)) as TrainingJob;
      read.state = "failed";
      expect(await jobs.get(queued.request_id)).toEqual(queued);
    });
  });
}
