import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Counters } from "../../src/storage/counters.js";
import type { Subject } from "./artifact-store.contract.js";

/** The behaviour every Counters adapter must have (src/storage/counters.ts). */
export function countersContract(name: string, make: () => Promise<Subject<Counters>>): void {
  describe(`Counters contract: ${name}`, () => {
    let subject: Subject<Counters>;
    let counters: Counters;
    beforeEach(async () => {
      subject = await make();
      counters = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup?.();
    });

    it("reads 0 for a counter never incremented", async () => {
      expect(await counters.read(["usage:m@1:inferences"])).toEqual({ "usage:m@1:inferences": 0 });
    });

    it("reads nothing for no keys", async () => {
      expect(await counters.read([])).toEqual({});
    });

    it("adds each amount to its own counter", async () => {
      await counters.increment({ a: 1, b: 64 });
      await counters.increment({ a: 2 });
      await counters.increment({});
      expect(await counters.read(["a", "b", "c"])).toEqual({ a: 3, b: 64, c: 0 });
    });

    it("loses no increment under concurrency", async () => {
      await Promise.all(Array.from({ length: 50 }, () => counters.increment({ hits: 1, rows: 3 })));
      expect(await counters.read(["hits", "rows"])).toEqual({ hits: 50, rows: 150 });
    });

    it("keeps keys with the characters model names use apart", async () => {
      await counters.increment({ "usage:sk_gbr.v2@1:rows": 5, "usage:sk_gbr-v2@1:rows": 7 });
      expect(await counters.read(["usage:sk_gbr.v2@1:rows", "usage:sk_gbr-v2@1:rows"])).toEqual({
        "usage:sk_gbr.v2@1:rows": 5,
        "usage:sk_gbr-v2@1:rows": 7,
      });
    });
  });
}
