import { describe, expect, it } from "vitest";
import { asEdgeMLError } from "../../src/errors.js";
import { createMemoryJobStore } from "../../src/storage/jobs.js";
import { createUpstashJobStore, JOB_TTL_SECONDS } from "../../src/storage/upstash-jobs.js";
import { jobStoreContract } from "./job-store.contract.js";
import { eventually } from "./support/eventually.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "./support/upstash.js";

const upstash = useLocalUpstash();
const client = () => upstash.client();
const freshPrefix = () => upstash.freshPrefix();

jobStoreContract("process memory (embedded)", async () => ({ store: createMemoryJobStore() }));

jobStoreContract("Upstash Redis (@upstash/redis → Upstash REST bridge → redis-server)", async () => ({
  store: createUpstashJobStore(client(), { prefix: freshPrefix(), timeoutMs: TEST_STORE_TIMEOUT_MS }),
}));

describe("Upstash jobs", () => {
  const job = {
    request_id: "7b1f6c1e-9f0a-4d2e-8a51-3f4c2b1d0e9a",
    model_id: "BTC",
    state: "queued" as const,
    created_at: "2026-01-01T00:00:00.000Z",
  };

  it("keeps a job a day: one key per job with a 24 h expiry", async () => {
    const prefix = freshPrefix();
    await createUpstashJobStore(client(), { prefix }).put(job);
    const ttl = await client().ttl(`${prefix}job:${job.request_id}`);
    expect(ttl).toBeGreaterThan(JOB_TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(JOB_TTL_SECONDS);
  });

  it("an outage is a 503 with a message, not a missing job", async () => {
    const jobs = createUpstashJobStore(client(), { prefix: freshPrefix(), timeoutMs: TEST_STORE_TIMEOUT_MS });
    await upstash.redisServer.kill();
    try {
      // A typed store failure, which the API answers 503 store_unavailable.
      const read = await jobs.get(job.request_id).catch((e: unknown) => e);
      expect(read).toMatchObject({ store: "Upstash Redis", failure: "unavailable" });
      expect(asEdgeMLError(read)).toMatchObject({ code: "store_unavailable", status: 503 });
      await expect(jobs.put(job)).rejects.toMatchObject({ failure: "unavailable" });
    } finally {
      await upstash.redisServer.restart();
      await eventually(async () => upstash.bridge.redisReady(), "the bridge reconnects");
    }
  });

  it("a stored value that is not a job is reported, not returned", async () => {
    const prefix = freshPrefix();
    await client().set(`${prefix}job:${job.request_id}`, JSON.stringify({ state: "exploded" }));
    await expect(createUpstashJobStore(client(), { prefix }).get(job.request_id)).rejects.toThrow(
      /stored state of training job .* is not valid/,
    );
  });
});
