import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RateLimiter, RateLimitRule } from "../../src/storage/ratelimit.js";
import type { Subject } from "./artifact-store.contract.js";
import { eventually } from "./support/eventually.js";

/**
 * A window no test run crosses (10 days): the sliding window weighs the previous window in, so a test that
 * crossed a boundary would see a different budget. Tests of the window's end use a short one and poll.
 */
const LONG_WINDOW_MS = 10 * 24 * 3_600_000;
const rule = (limit: number, name = "public", windowMs = LONG_WINDOW_MS): RateLimitRule => ({
  name,
  limit,
  windowMs,
});

/** The behaviour every RateLimiter adapter must have (src/storage/ratelimit.ts). */
export function rateLimiterContract(name: string, make: () => Promise<Subject<RateLimiter>>): void {
  describe(`RateLimiter contract: ${name}`, () => {
    let subject: Subject<RateLimiter>;
    let limiter: RateLimiter;
    beforeEach(async () => {
      subject = await make();
      limiter = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup?.();
    });

    it("allows `limit` requests, counting `remaining` down, then refuses with remaining 0", async () => {
      const outcomes = [];
      for (let i = 0; i < 4; i++) outcomes.push(await limiter.limit("client-a", rule(3)));
      expect(outcomes.map(({ success, limit, remaining }) => ({ success, limit, remaining }))).toEqual([
        { success: true, limit: 3, remaining: 2 },
        { success: true, limit: 3, remaining: 1 },
        { success: true, limit: 3, remaining: 0 },
        { success: false, limit: 3, remaining: 0 },
      ]);
    });

    it("keeps refusing while the window lasts", async () => {
      await limiter.limit("c", rule(1));
      for (let i = 0; i < 3; i++) expect((await limiter.limit("c", rule(1))).success).toBe(false);
    });

    it("gives each key its own budget, IPv6 addresses and API-key fingerprints included", async () => {
      const keys = ["ip:::1", "ip:::", "ip:1.2.3.4", "ip:1.2.3.40", "key:0f3a9c", "ip:203.0.113.7"];
      for (const key of keys) expect((await limiter.limit(key, rule(1))).success).toBe(true);
      for (const key of keys) expect((await limiter.limit(key, rule(1))).success).toBe(false);
    });

    it("gives each rule its own budget for the same key", async () => {
      expect((await limiter.limit("c", rule(1, "public"))).success).toBe(true);
      expect((await limiter.limit("c", rule(1, "public"))).success).toBe(false);
      expect((await limiter.limit("c", rule(1, "admin"))).success).toBe(true);
      expect((await limiter.limit("c", rule(1, "cold-load"))).success).toBe(true);
    });

    it("reports when the window ends: after now, at most one window ahead", async () => {
      const windowMs = 60_000;
      const before = Date.now();
      const outcome = await limiter.limit("c", rule(5, "public", windowMs));
      const after = Date.now();
      expect(outcome.reset).toBeGreaterThan(before);
      expect(outcome.reset).toBeLessThanOrEqual(after + windowMs);
    });

    it("hands back a pending promise that settles (for waitUntil)", async () => {
      const outcome = await limiter.limit("c", rule(5));
      await expect(outcome.pending).resolves.not.toThrow();
    });

    it("counts concurrent requests atomically: exactly `limit` of them succeed", async () => {
      const outcomes = await Promise.all(Array.from({ length: 25 }, () => limiter.limit("burst", rule(10))));
      expect(outcomes.filter((o) => o.success)).toHaveLength(10);
      expect(outcomes.map((o) => o.remaining).sort((a, b) => a - b)).toEqual([
        ...Array<number>(16).fill(0),
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
      ]);
    });

    it("gives the budget back once the window has passed", async () => {
      const short = rule(2, "public", 200);
      await limiter.limit("c", short);
      await limiter.limit("c", short);
      await eventually(async () => (await limiter.limit("c", short)).success, "the budget refills");
    });
  });
}
