import { describe, expect, it, vi } from "vitest";
import { outageReporter } from "../../src/logger.js";
import type { Counters } from "../../src/storage/counters.js";
import { createUsageTracker } from "../../src/tracking/usage.js";

/** A dependency's outage under load is one warning and one recovery line, not one line per request. */
describe("outageReporter", () => {
  it("warns on the first failure, counts the rest, and reports the recovery once", () => {
    const warn = vi.fn();
    const outage = outageReporter(warn, "counters");
    outage.succeeded();
    for (let i = 0; i < 1000; i++) outage.failed(new Error("down"));
    outage.succeeded();
    outage.succeeded();
    outage.failed(new Error("down again"));
    expect(warn.mock.calls).toEqual([
      ["counters unavailable; further failures are counted until it recovers", new Error("down")],
      ["counters recovered after 1000 failed call(s)"],
      ["counters unavailable; further failures are counted until it recovers", new Error("down again")],
    ]);
  });
});

describe("usage tracker during a counter outage", () => {
  it("500 failed increments are one warning; the first success after them is the recovery line", async () => {
    let up = false;
    const counters: Counters = {
      kind: "flaky",
      increment: async () => {
        if (!up) throw new Error("redis is unavailable");
      },
      read: async () => ({}),
    };
    const work: Promise<unknown>[] = [];
    const warn = vi.fn();
    const usage = createUsageTracker({ counters, defer: (p) => work.push(p), warn });
    for (let i = 0; i < 500; i++) usage.record("BTC-24h", "1", { inferences: 1 });
    await Promise.all(work);
    up = true;
    usage.record("BTC-24h", "1", { inferences: 1 });
    await Promise.all(work);
    expect(warn.mock.calls.map(([message]) => message)).toEqual([
      "usage counters (writes) unavailable; further failures are counted until it recovers",
      "usage counters (writes) recovered after 500 failed call(s)",
    ]);
  });
});
