import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { Bar } from "../../src/market/types.js";
import {
  outcomeFor,
  type PredictionEntry,
  type PredictionLog,
  type PredictionRecord,
  type PredictionSource,
} from "../../src/storage/prediction-log.js";
import { MARKET_DATA } from "../support/paths.js";
import type { Subject } from "./artifact-store.contract.js";

const DAY = 24 * 60 * 60 * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** The last `count` daily BTC bars of the shipped CSV (ascending). */
export async function btcBars(count: number): Promise<Bar[]> {
  return createCsvMarketData({ dir: MARKET_DATA }).getBars("BTC", "1d", { limit: count });
}

/**
 * One forecast per bar after the first, as the service would have made it at that bar's close (a daily bar dated D
 * closes at D + 1 day): `as_of` is that close, `target_time` a day later, and the actual is the next bar's close. The
 * predicted return is a toy momentum rule (half the last bar's log return): the prices are the CSV's, and the
 * forecasts are a deterministic function of them, not invented numbers.
 */
export function forecastsFrom(
  bars: readonly Bar[],
  options: {
    model?: string;
    version?: string;
    source?: PredictionSource;
    id?: (asOf: string) => string;
  } = {},
): { entry: PredictionEntry; actual: { price: number; time: string } }[] {
  const { model = "BTC-24h", version = "1", source = "backfill" } = options;
  const out: { entry: PredictionEntry; actual: { price: number; time: string } }[] = [];
  for (let i = 1; i + 1 < bars.length; i++) {
    const bar = bars[i] as Bar;
    const previous = bars[i - 1] as Bar;
    const next = bars[i + 1] as Bar;
    const asOf = bar.time + DAY;
    const logReturn = 0.5 * Math.log(bar.close / previous.close);
    const entry: PredictionEntry = {
      prediction_id: options.id?.(iso(asOf)) ?? crypto.randomUUID(),
      model,
      version,
      symbol: "BTC",
      horizon: "24h",
      as_of: iso(asOf),
      target_time: iso(asOf + DAY),
      last_close: bar.close,
      predicted_price: bar.close * Math.exp(logReturn),
      predicted_log_return: logReturn,
      served_at: iso(asOf + 90_000),
      chosen_via: "champion",
      source,
    };
    out.push({ entry, actual: { price: next.close, time: iso(next.time + DAY) } });
  }
  return out;
}

const firstOf = <T>(items: readonly T[]): T => {
  if (items.length === 0) throw new Error("no items");
  return items[0] as T;
};

const newestFirst = (records: readonly PredictionRecord[]) =>
  records.map((r) => `${r.target_time} ${r.prediction_id} ${r.version}`);

/** Every page of a listing, following `next_cursor`. */
async function allPages(
  log: PredictionLog,
  model: string,
  options: Parameters<PredictionLog["list"]>[1],
): Promise<{ pages: number; items: PredictionRecord[] }> {
  const items: PredictionRecord[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await log.list(model, { ...options, ...(cursor ? { cursor } : {}) });
    items.push(...page.items);
    cursor = page.next_cursor;
    pages += 1;
    if (pages > 100) throw new Error("listing does not end");
  } while (cursor);
  return { pages, items };
}

export type PredictionLogFactory = (options?: { capPerModel?: number }) => Promise<Subject<PredictionLog>>;

/** The behaviour every PredictionLog adapter must have (src/storage/prediction-log.ts). */
export function predictionLogContract(name: string, make: PredictionLogFactory): void {
  describe(`PredictionLog contract: ${name}`, () => {
    let bars: Bar[];
    let subject: Subject<PredictionLog>;
    let log: PredictionLog;
    beforeAll(async () => {
      bars = await btcBars(40);
    });
    beforeEach(async () => {
      subject = await make();
      log = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup?.();
    });

    describe("record and get", () => {
      it("knows no prediction it was never given", async () => {
        expect(await log.get("BTC-24h", crypto.randomUUID())).toEqual([]);
        expect(await log.list("BTC-24h")).toEqual({ items: [] });
        expect(await log.due("BTC-24h", new Date(), 10)).toEqual([]);
      });

      it("returns a forecast exactly as recorded, unresolved and with no manual report", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3), { source: "live" }));
        expect(await log.record([entry])).toBe(1);
        const [record] = await log.get("BTC-24h", entry.prediction_id);
        expect(record).toEqual(entry);
        expect(record).not.toHaveProperty("actual_price");
        expect(record).not.toHaveProperty("manual");
      });

      it("is idempotent per (prediction_id, version): the first write wins and is counted once", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3), { source: "live" }));
        expect(await log.record([entry])).toBe(1);
        // A cached answer served again carries the same prediction_id; a retried write may differ in served_at.
        const again = { ...entry, served_at: iso(Date.parse(entry.served_at) + 60_000), predicted_price: 1 };
        expect(await log.record([again, again])).toBe(0);
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([entry]);
        expect((await log.list("BTC-24h")).items).toHaveLength(1);
      });

      it("counts a duplicate inside one batch once", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3)));
        expect(await log.record([entry, { ...entry, chosen_via: "pinned" }])).toBe(1);
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([entry]);
      });

      it("keeps each version's record of one prediction_id, ordered by version", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3)));
        const v2 = { ...entry, version: "2", predicted_price: entry.predicted_price * 1.01 };
        expect(await log.record([v2, entry])).toBe(2);
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([entry, v2]);
      });

      it("keeps models apart: one prediction_id under two models is two logs", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3)));
        const eth = { ...entry, model: "ETH-24h", symbol: "ETH" };
        expect(await log.record([entry, eth])).toBe(2);
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([entry]);
        expect(await log.get("ETH-24h", entry.prediction_id)).toEqual([eth]);
        expect(await log.get("BTC-4h", entry.prediction_id)).toEqual([]);
      });

      it("records shadow forecasts with the prediction they shadow", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3), { source: "live" }));
        const shadow = {
          ...entry,
          prediction_id: crypto.randomUUID(),
          version: "3",
          source: "shadow" as const,
          chosen_via: "mirror",
          shadow_of: entry.prediction_id,
        };
        expect(await log.record([entry, shadow])).toBe(2);
        expect(await log.get("BTC-24h", shadow.prediction_id)).toEqual([shadow]);
      });

      it("keeps a shadow under the answer's own prediction id beside it (as rollouts log them): two versions, one id", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3), { source: "live" }));
        const shadow = {
          ...entry,
          version: "3",
          predicted_price: entry.predicted_price * 1.01,
          source: "shadow" as const,
          chosen_via: "shadow",
          shadow_of: entry.prediction_id,
        };
        expect(await log.record([entry, shadow])).toBe(2);
        const both = await log.get("BTC-24h", entry.prediction_id);
        expect([...both].sort((a, b) => a.version.localeCompare(b.version))).toEqual(
          [entry, shadow].sort((a, b) => a.version.localeCompare(b.version)),
        );
        expect((await log.list("BTC-24h", { source: "shadow" })).items).toEqual([shadow]);
        expect((await log.list("BTC-24h", { source: "live" })).items).toEqual([entry]);
      });

      it.each([
        ["a shadow without shadow_of", { source: "shadow" }],
        ["shadow_of on a live record", { shadow_of: "abc" }],
        ["a negative price", { predicted_price: -1 }],
        ["a time that is not ISO 8601 UTC", { target_time: "2026-03-27" }],
        ["a prediction_id with a space", { prediction_id: "a b" }],
        ["an unknown field", { interval: [1, 2] }],
      ])("rejects the whole batch when an entry has %s, writing none of it", async (_, change) => {
        const [first, second] = forecastsFrom(bars.slice(-4)).map((f) => f.entry) as [
          PredictionEntry,
          PredictionEntry,
        ];
        await expect(log.record([first, { ...second, ...change } as PredictionEntry])).rejects.toMatchObject({
          code: "invalid_request",
        });
        expect(await log.get("BTC-24h", first.prediction_id)).toEqual([]);
      });

      it("hands out copies: changing a returned record changes nothing stored", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3)));
        await log.record([entry]);
        const [read] = (await log.get("BTC-24h", entry.prediction_id)) as [PredictionRecord];
        read.predicted_price = 0;
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([entry]);
      });
    });

    describe("list(model, {version, source, resolved, from, to, limit, cursor})", () => {
      it("lists newest target_time first, ties by prediction_id then version, descending", async () => {
        const v1 = forecastsFrom(bars.slice(-6), { id: (asOf) => `bf-${asOf}` }).map((f) => f.entry);
        const v2 = v1.map((e) => ({ ...e, version: "2" }));
        await log.record([...v1, ...v2]);
        const expected = [...v1, ...v2]
          .sort((a, b) =>
            a.target_time === b.target_time
              ? a.version < b.version
                ? 1
                : -1
              : a.target_time < b.target_time
                ? 1
                : -1,
          )
          .map((e) => `${e.target_time} ${e.prediction_id} ${e.version}`);
        expect(newestFirst((await log.list("BTC-24h")).items)).toEqual(expected);
      });

      it("filters by version, source, resolved, and an inclusive target_time range", async () => {
        const live = forecastsFrom(bars.slice(-12, -1), { source: "live" });
        const backfill = forecastsFrom(bars.slice(-12, -1), { version: "2", source: "backfill" });
        await log.record([...live, ...backfill].map((f) => f.entry));
        const resolvedNow = live.slice(0, 3);
        await log.resolve(
          "BTC-24h",
          resolvedNow.map(({ entry, actual }) => ({
            ...entry,
            outcome: outcomeFor(entry, actual, new Date("2026-03-28T00:00:00Z")),
          })),
        );
        const ids = async (options: Parameters<PredictionLog["list"]>[1]) =>
          new Set((await log.list("BTC-24h", options)).items.map((r) => `${r.prediction_id}`));
        expect(await ids({ source: "live" })).toEqual(new Set(live.map((f) => f.entry.prediction_id)));
        expect(await ids({ version: "2" })).toEqual(new Set(backfill.map((f) => f.entry.prediction_id)));
        expect(await ids({ version: "2", source: "live" })).toEqual(new Set());
        expect(await ids({ resolved: true })).toEqual(new Set(resolvedNow.map((f) => f.entry.prediction_id)));
        expect((await ids({ resolved: false })).size).toBe(live.length + backfill.length - 3);
        const from = (live[2] as { entry: PredictionEntry }).entry.target_time;
        const to = (live[4] as { entry: PredictionEntry }).entry.target_time;
        const inRange = (await log.list("BTC-24h", { from, to, source: "live" })).items;
        expect(inRange.map((r) => r.target_time)).toEqual(
          [live[4], live[3], live[2]].map((f) => f?.entry.target_time),
        );
      });

      it("pages with an opaque cursor: every record once, in order, next_cursor only while more match", async () => {
        // 27 forecasts × 2 versions = 54 records, target times shared by pairs, so a page boundary splits a tie.
        const v1 = forecastsFrom(bars.slice(-29), { id: (asOf) => `bf-${asOf}` }).map((f) => f.entry);
        const records = [...v1, ...v1.map((e) => ({ ...e, version: "2" }))];
        await log.record(records);
        const whole = (await log.list("BTC-24h", { limit: 1000 })).items;
        expect(whole).toHaveLength(54);
        for (const limit of [1, 5, 7, 27, 54]) {
          const { pages, items } = await allPages(log, "BTC-24h", { limit });
          expect(newestFirst(items), `limit ${limit}`).toEqual(newestFirst(whole));
          expect(pages).toBe(Math.ceil(54 / limit));
        }
        const filtered = await allPages(log, "BTC-24h", { limit: 4, version: "2" });
        expect(newestFirst(filtered.items)).toEqual(newestFirst(whole.filter((r) => r.version === "2")));
        expect((await log.list("BTC-24h", { limit: 54 })).next_cursor).toBeUndefined();
        expect((await log.list("BTC-24h", { limit: 53 })).next_cursor).toEqual(expect.any(String));
      });

      it("pages a filtered listing through more records than one read of the store covers", async () => {
        // 150 forecasts × 2 versions: version 2 is every other record, so each page of 100 reads ~200 entries.
        const v1 = forecastsFrom(await btcBars(152), { id: (asOf) => `bf-${asOf}` }).map((f) => f.entry);
        await log.record([...v1, ...v1.map((e) => ({ ...e, version: "2" }))]);
        const { pages, items } = await allPages(log, "BTC-24h", { limit: 100, version: "2" });
        expect(pages).toBe(2);
        expect(items.map((r) => r.target_time)).toEqual(v1.map((e) => e.target_time).reverse());
        expect(new Set(items.map((r) => r.version))).toEqual(new Set(["2"]));
      });

      it("a cursor it did not hand out is a 400 that says what to do", async () => {
        for (const cursor of ["not-a-cursor", btoa("[1]"), btoa('["x", "a b"]')]) {
          await expect(log.list("BTC-24h", { cursor })).rejects.toMatchObject({
            code: "invalid_request",
            message: expect.stringMatching(/next_cursor/),
          });
        }
        await expect(log.list("BTC-24h", { limit: 0 })).rejects.toMatchObject({ code: "invalid_request" });
        await expect(log.list("BTC-24h", { from: "yesterday" })).rejects.toMatchObject({
          code: "invalid_request",
        });
      });
    });

    describe("due(model, now, limit) and resolve(model, resolutions)", () => {
      it("finds unresolved records whose target_time has passed, oldest first, at most limit", async () => {
        const forecasts = forecastsFrom(bars.slice(-10));
        await log.record(forecasts.map((f) => f.entry));
        const now = new Date((forecasts[4] as { entry: PredictionEntry }).entry.target_time);
        const due = await log.due("BTC-24h", now, 100);
        expect(due.map((r) => r.target_time)).toEqual(forecasts.slice(0, 5).map((f) => f.entry.target_time));
        expect((await log.due("BTC-24h", now, 2)).map((r) => r.prediction_id)).toEqual(
          forecasts.slice(0, 2).map((f) => f.entry.prediction_id),
        );
        await expect(log.due("BTC-24h", now, 0)).rejects.toMatchObject({ code: "invalid_request" });
      });

      it("resolves against the CSV's close at target_time; resolved records are no longer due", async () => {
        const forecasts = forecastsFrom(bars.slice(-8));
        await log.record(forecasts.map((f) => f.entry));
        const now = new Date("2026-06-01T00:00:00Z");
        const resolvedAt = new Date("2026-03-28T00:05:00Z");
        const first = forecasts.slice(0, 4);
        const n = await log.resolve(
          "BTC-24h",
          first.map(({ entry, actual }) => ({ ...entry, outcome: outcomeFor(entry, actual, resolvedAt) })),
        );
        expect(n).toBe(4);
        const [{ entry, actual }] = first as [(typeof forecasts)[number]];
        const [record] = (await log.get("BTC-24h", entry.prediction_id)) as [PredictionRecord];
        expect(record).toEqual({ ...entry, ...outcomeFor(entry, actual, resolvedAt) });
        expect(record.actual_price).toBe(actual.price);
        expect(record.actual_time).toBe(entry.target_time);
        expect((await log.due("BTC-24h", now, 100)).map((r) => r.prediction_id)).toEqual(
          forecasts.slice(4).map((f) => f.entry.prediction_id),
        );
      });

      it("keeps the first outcome: a second resolution of the same record changes nothing and counts 0", async () => {
        const { entry, actual } = firstOf(forecastsFrom(bars.slice(-3)));
        await log.record([entry]);
        const outcome = outcomeFor(entry, actual, new Date("2026-03-28T00:05:00Z"));
        expect(await log.resolve("BTC-24h", [{ ...entry, outcome }])).toBe(1);
        const later = { ...outcome, resolved_at: "2026-03-29T00:00:00.000Z", actual_price: actual.price * 2 };
        expect(await log.resolve("BTC-24h", [{ ...entry, outcome: later }])).toBe(0);
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([{ ...entry, ...outcome }]);
        // Recording the forecast again does not reopen it.
        expect(await log.record([entry])).toBe(0);
        expect(await log.due("BTC-24h", new Date("2026-06-01T00:00:00Z"), 10)).toEqual([]);
      });

      it("skips keys it does not hold, and resolves one version without touching the other", async () => {
        const { entry, actual } = firstOf(forecastsFrom(bars.slice(-3)));
        const v2 = { ...entry, version: "2" };
        await log.record([entry, v2]);
        const outcome = outcomeFor(entry, actual, new Date("2026-03-28T00:05:00Z"));
        const n = await log.resolve("BTC-24h", [
          { prediction_id: crypto.randomUUID(), version: "1", outcome },
          { prediction_id: entry.prediction_id, version: "9", outcome },
          { prediction_id: entry.prediction_id, version: "2", outcome },
        ]);
        expect(n).toBe(1);
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([entry, { ...v2, ...outcome }]);
        expect(await log.get("BTC-24h", "nothing")).toEqual([]);
      });

      it("rejects an outcome that is not one", async () => {
        const { entry } = firstOf(forecastsFrom(bars.slice(-3)));
        await log.record([entry]);
        const bad = { actual_price: Number.NaN } as unknown as ReturnType<typeof outcomeFor>;
        await expect(log.resolve("BTC-24h", [{ ...entry, outcome: bad }])).rejects.toMatchObject({
          code: "invalid_request",
        });
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual([entry]);
      });
    });

    describe("track(model, prediction_id, manual)", () => {
      it("stores a manual report beside the market outcome, never over it, on every version", async () => {
        const { entry, actual } = firstOf(forecastsFrom(bars.slice(-3)));
        const v2 = { ...entry, version: "2" };
        await log.record([entry, v2]);
        const outcome = outcomeFor(entry, actual, new Date("2026-03-28T00:05:00Z"));
        await log.resolve("BTC-24h", [{ ...entry, outcome }]);
        // A reported actual that contradicts the CSV's close.
        const manual = {
          predicted_value: entry.predicted_price,
          actual_value: actual.price + 1234.5,
          tracked_at: "2026-03-28T09:00:00.000Z",
        };
        const updated = await log.track("BTC-24h", entry.prediction_id, manual);
        expect(updated).toEqual([
          { ...entry, ...outcome, manual },
          { ...v2, manual },
        ]);
        expect(await log.get("BTC-24h", entry.prediction_id)).toEqual(updated);
        const replaced = { ...manual, actual_value: actual.price, tracked_at: "2026-03-28T10:00:00.000Z" };
        expect((await log.track("BTC-24h", entry.prediction_id, replaced))[0]?.manual).toEqual(replaced);
        // The market outcome stays the market's.
        expect((await log.get("BTC-24h", entry.prediction_id))[0]?.actual_price).toBe(actual.price);
      });

      it("answers [] for a prediction_id it does not hold (the route's 404), storing nothing", async () => {
        const manual = { predicted_value: 1, actual_value: 2, tracked_at: "2026-03-28T09:00:00.000Z" };
        expect(await log.track("BTC-24h", "unknown-id", manual)).toEqual([]);
        expect(await log.get("BTC-24h", "unknown-id")).toEqual([]);
      });
    });

    describe("bounds", () => {
      it("keeps at most capPerModel records per model, dropping the oldest target times", async () => {
        const capped = await make({ capPerModel: 5 });
        try {
          const forecasts = forecastsFrom(bars.slice(-10)).map((f) => f.entry);
          const eth = forecastsFrom(bars.slice(-4), { model: "ETH-24h" }).map((f) => f.entry);
          expect(await capped.store.record(forecasts.slice(0, 4))).toBe(4);
          expect(await capped.store.record([...forecasts.slice(4), ...eth])).toBe(4 + eth.length);
          const kept = forecasts.slice(-5);
          expect(newestFirst((await capped.store.list("BTC-24h")).items)).toEqual(
            newestFirst(kept.reverse()),
          );
          expect(await capped.store.get("BTC-24h", (forecasts[0] as PredictionEntry).prediction_id)).toEqual(
            [],
          );
          expect(
            (await capped.store.due("BTC-24h", new Date("2026-06-01T00:00:00Z"), 100)).map(
              (r) => r.target_time,
            ),
          ).toEqual(forecasts.slice(-5).map((e) => e.target_time));
          expect((await capped.store.list("ETH-24h")).items).toHaveLength(eth.length);
        } finally {
          await capped.cleanup?.();
        }
      });
    });
  });
}
