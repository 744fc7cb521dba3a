import { describe, expect, it } from "vitest";
import type { MetricsStore } from "../../src/telemetry/store.js";

/** The behaviour every MetricsStore adapter must have (src/telemetry/store.ts). */
export function metricsStoreContract(name: string, make: () => Promise<MetricsStore>): void {
  describe(`MetricsStore contract: ${name}`, () => {
    it("reads nothing before the first write", async () => {
      expect(await (await make()).readAll()).toEqual({});
    });

    it("adds each amount to its own series and lists every series written", async () => {
      const store = await make();
      await store.write({ add: { a: 1, b: 64 } });
      await store.write({ add: { a: 2 } });
      await store.write({ add: {} });
      expect(await store.readAll()).toEqual({ a: 3, b: 64 });
    });

    it("sets gauges: the last write wins", async () => {
      const store = await make();
      await store.write({ add: {}, set: { last: 1_700_000_000_000 } });
      await store.write({ add: { n: 1 }, set: { last: 1_700_000_000_500 } });
      expect(await store.readAll()).toEqual({ last: 1_700_000_000_500, n: 1 });
    });

    it("loses no increment under concurrency (writes from many isolates add up)", async () => {
      const store = await make();
      await Promise.all(Array.from({ length: 50 }, () => store.write({ add: { hits: 1, us: 250 } })));
      expect(await store.readAll()).toEqual({ hits: 50, us: 12_500 });
    });

    it("keeps series names with the characters labels carry (encoded route templates, le bounds) apart", async () => {
      const store = await make();
      const a = "edgeml_http_requests_total|method=GET|route=%2Fv2%2Fmodels%2F%3Aname|status=200";
      const b = "edgeml_serve_duration_seconds_bucket|le=%2BInf|model=sk_gbr.v2|version=1";
      const c = "edgeml_serve_duration_seconds_bucket|le=0.001|model=sk_gbr-v2|version=1";
      await store.write({ add: { [a]: 2, [b]: 1, [c]: 3 } });
      expect(await store.readAll()).toEqual({ [a]: 2, [b]: 1, [c]: 3 });
    });
  });
}
