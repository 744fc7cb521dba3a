import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PredictionCache } from "../../src/storage/cache.js";
import type { Subject } from "./artifact-store.contract.js";
import { eventually } from "./support/eventually.js";

const MINUTE = 60_000;

/** The behaviour every PredictionCache adapter must have (src/storage/cache.ts). */
export function predictionCacheContract(name: string, make: () => Promise<Subject<PredictionCache>>): void {
  describe(`PredictionCache contract: ${name}`, () => {
    let subject: Subject<PredictionCache>;
    let cache: PredictionCache;
    beforeEach(async () => {
      subject = await make();
      cache = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup?.();
    });

    it("misses a key never set", async () => {
      expect(await cache.get("forecast:v1:BTC-24h@1:24h:0")).toBeUndefined();
    });

    it.each([
      [
        "a forecast",
        {
          prediction_id: "4b0c7f5e-8f1b-4c5e-9d1e-2a3b4c5d6e7f",
          model_version: "3",
          predicted_price: 97_123.456789,
          predicted_log_return: -0.000123,
          cached: false,
          nested: { list: [1, "two", { three: 3 }], empty: {} },
        },
      ],
      ["an array", [1, 2.5, "x", false, [null]]],
      ["a string that looks like a number", "123"],
      ["a string that looks like JSON", '{"a":1}'],
      ["a unicode string", "naïve ✓ 予測"],
      ["a number", 42.125],
      ["zero", 0],
      ["false", false],
    ])("returns %s exactly as it was set", async (_label, value) => {
      await cache.set("k", value, MINUTE);
      expect(await cache.get("k")).toEqual(value);
    });

    it("replaces a value set again under the same key, and keeps keys apart", async () => {
      await cache.set("a", { v: 1 }, MINUTE);
      await cache.set("b", { v: 2 }, MINUTE);
      await cache.set("a", { v: 3 }, MINUTE);
      expect(await cache.get("a")).toEqual({ v: 3 });
      expect(await cache.get("b")).toEqual({ v: 2 });
    });

    it("forgets a value once its TTL has passed", async () => {
      await cache.set("short", { v: 1 }, 100);
      await cache.set("long", { v: 2 }, 10 * MINUTE);
      await eventually(async () => (await cache.get("short")) === undefined, "expiry after the TTL");
      expect(await cache.get("long")).toEqual({ v: 2 });
    });

    it("hands out copies: changing a returned value changes nothing cached", async () => {
      await cache.set("k", { list: [1] }, MINUTE);
      const read = (await cache.get<{ list: number[] }>("k")) as { list: number[] };
      read.list.push(2);
      expect(await cache.get("k")).toEqual({ list: [1] });
    });
  });
}
