import { describe, expect, it } from "vitest";
import { createJobStateWriter } from "../../src/forecast/job-state.js";
import { createMemoryJobStore, type JobStore, type TrainingJob } from "../../src/storage/jobs.js";

const job = (progress: string, state: TrainingJob["state"] = "running"): TrainingJob => ({
  request_id: "7b1f6c1e-9f0a-4d2e-8a51-3f4c2b1d0e9a",
  model_id: "BTC",
  state,
  created_at: "2026-01-01T00:00:00.000Z",
  progress,
});

/** A job store that refuses the next `failures` writes, and records what it was asked to write. */
function flakyStore(failures: number) {
  const inner = createMemoryJobStore();
  const attempts: string[] = [];
  let left = failures;
  const store: JobStore = {
    kind: "flaky",
    async put(written) {
      attempts.push(written.progress ?? written.state);
      if (left-- > 0) throw new Error("edgeml: Upstash answered 500");
      await inner.put(written);
    },
    get: (id) => inner.get(id),
  };
  return { store, attempts };
}

const retry = { attempts: 3, backoffMs: 0, maxBackoffMs: 0 };

describe("createJobStateWriter: a running job's state writes", () => {
  it("retries a failing write, and it lands", async () => {
    const { store, attempts } = flakyStore(2);
    const writer = createJobStateWriter(store, retry, () => {});
    await writer.write(job("a"));
    expect(attempts).toEqual(["a", "a", "a"]);
    expect(writer.stored).toMatchObject({ progress: "a" });
    expect(await store.get(job("a").request_id)).toMatchObject({ progress: "a" });
  });

  it("waits between attempts with exponential backoff, capped", async () => {
    const { store } = flakyStore(Number.POSITIVE_INFINITY);
    const waits: number[] = [];
    const writer = createJobStateWriter(
      store,
      { attempts: 5, backoffMs: 100, maxBackoffMs: 300 },
      () => {},
      async (ms) => {
        waits.push(ms);
      },
    );
    await writer.write(job("a"));
    expect(waits).toEqual([100, 200, 300, 300]);
  });

  it("gives a write up after its attempts, says so, and never rejects", async () => {
    const { store, attempts } = flakyStore(Number.POSITIVE_INFINITY);
    const warnings: string[] = [];
    const writer = createJobStateWriter(store, retry, (message) => warnings.push(message));
    await expect(writer.write(job("a"))).resolves.toBeUndefined();
    expect(attempts).toEqual(["a", "a", "a"]);
    expect(warnings).toEqual([
      expect.stringMatching(/could not store the running state .* after 3 attempts/),
    ]);
    expect(writer.stored).toBeUndefined();
  });

  it("latest wins: a newer state replaces the one being retried, and is what the store ends with", async () => {
    const { store, attempts } = flakyStore(1);
    const writer = createJobStateWriter(store, retry, () => {});
    const first = writer.write(job("a"));
    writer.write(job("b"));
    const done = writer.write(job("done", "succeeded"));
    await Promise.all([first, done]);
    // "a" failed once; by its retry the result was the newest state, so progress "b" was never written.
    expect(attempts).toEqual(["a", "done"]);
    expect(writer.stored).toMatchObject({ state: "succeeded" });
  });

  it("writes one state after another in order when the store is healthy", async () => {
    const { store, attempts } = flakyStore(0);
    const writer = createJobStateWriter(store, retry, () => {});
    await writer.write(job("a"));
    await writer.write(job("b"));
    expect(attempts).toEqual(["a", "b"]);
  });
});
