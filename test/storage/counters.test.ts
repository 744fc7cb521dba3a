import { describe, expect, it } from "vitest";
import { createMemoryCounters } from "../../src/storage/counters.js";
import { createUpstashCounters } from "../../src/storage/upstash-counters.js";
import { countersContract } from "./counters.contract.js";
import { eventually } from "./support/eventually.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "./support/upstash.js";

const upstash = useLocalUpstash();
const client = () => upstash.client();
const freshPrefix = () => upstash.freshPrefix();

countersContract("process memory (embedded)", async () => ({ store: createMemoryCounters() }));

countersContract("Upstash Redis (@upstash/redis → Upstash REST bridge → redis-server)", async () => ({
  store: createUpstashCounters(client(), { prefix: freshPrefix(), timeoutMs: TEST_STORE_TIMEOUT_MS }),
}));

describe("Upstash counters: keys, pipelining and outages", () => {
  it("keeps integers under <prefix>counter:<key>, one pipelined request per increment", async () => {
    const prefix = freshPrefix();
    const counters = createUpstashCounters(client(), { prefix, timeoutMs: TEST_STORE_TIMEOUT_MS });
    await counters.increment({ "usage:m@1:rows": 64, "usage:m@1:inferences": 1 });
    const raw = upstash.client();
    expect(
      await raw.mget(`${prefix}counter:usage:m@1:rows`, `${prefix}counter:usage:m@1:inferences`),
    ).toEqual([64, 1]);
  });

  it("redis-server killed: increments and reads reject promptly; back up: counting resumes", async () => {
    const counters = createUpstashCounters(client(), {
      prefix: freshPrefix(),
      timeoutMs: TEST_STORE_TIMEOUT_MS,
    });
    await counters.increment({ k: 1 });
    await upstash.redisServer.kill();
    try {
      await expect(counters.increment({ k: 1 })).rejects.toThrow();
      await expect(counters.read(["k"])).rejects.toThrow();
    } finally {
      await upstash.redisServer.restart();
    }
    await eventually(
      async () => (await counters.read(["k"]).catch(() => null)) !== null,
      "bridge reconnects",
    );
    await counters.increment({ k: 2 });
    // The restarted server has no persistence: counting starts again from what arrives after it.
    expect(await counters.read(["k"])).toEqual({ k: 2 });
  });
});
