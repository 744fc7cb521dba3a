import { describe, expect, it } from "vitest";
import { EdgeMLError } from "../../src/errors.js";
import { INTERVAL_MS } from "../../src/market/symbols.js";
import type { Bar, Interval, MarketDataSource } from "../../src/market/types.js";

/**
 * What every market-data adapter promises, run against each of them (csv.test.ts, yahoo.test.ts). The factory gets
 * the clock the source should use for its default `end`.
 */
export function marketDataContract(name: string, makeSource: (now: () => number) => MarketDataSource): void {
  /** As-of instants inside the data of both sources, and a clock at which each series' last bar has just closed. */
  const cases: { interval: Interval; end: string; latest: { now: string; lastBar: string } }[] = [
    {
      interval: "1d",
      end: "2024-01-01T00:00:00Z",
      latest: { now: "2026-03-28T06:30:00Z", lastBar: "2026-03-27T00:00:00.000Z" },
    },
    {
      interval: "1h",
      end: "2022-01-01T00:00:00Z",
      latest: { now: "2022-06-13T01:30:00Z", lastBar: "2022-06-13T00:00:00.000Z" },
    },
  ];
  const fixedClock = () => Date.parse("2026-03-28T06:30:00Z");

  describe(`MarketDataSource contract: ${name}`, () => {
    for (const { interval, end, latest } of cases) {
      const step = INTERVAL_MS[interval];
      describe(`getBars(symbol, "${interval}")`, () => {
        it.each(["BTC", "ETH"])(
          "returns %s bars ascending at the interval spacing, every field a finite number",
          async (symbol) => {
            const bars = await makeSource(fixedClock).getBars(symbol, interval, {
              end: new Date(end),
              limit: 500,
            });
            expect(bars.length).toBe(500);
            bars.forEach((bar, i) => {
              for (const value of [bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume])
                expect(Number.isFinite(value)).toBe(true);
              expect(Math.min(bar.open, bar.high, bar.low, bar.close)).toBeGreaterThan(0);
              expect(bar.volume).toBeGreaterThanOrEqual(0);
              if (i > 0) expect(bar.time - (bars[i - 1] as Bar).time).toBe(step);
            });
          },
        );

        it("honours end: every bar has closed by it, and the last is the latest that has", async () => {
          const endMs = Date.parse(end) + step / 2;
          const bars = await makeSource(fixedClock).getBars("BTC", interval, {
            end: new Date(endMs),
            limit: 10,
          });
          const last = bars[bars.length - 1] as Bar;
          expect(last.time + step).toBeLessThanOrEqual(endMs);
          expect(last.time + 2 * step).toBeGreaterThan(endMs);
          expect(new Date(last.time).toISOString()).toBe(new Date(Date.parse(end) - step).toISOString());
        });

        it("honours limit: the most recent `limit` bars", async () => {
          const source = makeSource(fixedClock);
          const wide = await source.getBars("ETH", interval, { end: new Date(end), limit: 50 });
          const narrow = await source.getBars("ETH", interval, { end: new Date(end), limit: 7 });
          expect(narrow).toEqual(wide.slice(-7));
        });

        it("without options: the latest bars closed at the source's clock", async () => {
          const bars = await makeSource(() => Date.parse(latest.now)).getBars("BTC", interval);
          expect(new Date((bars[bars.length - 1] as Bar).time).toISOString()).toBe(latest.lastBar);
          expect(bars.length).toBeGreaterThan(1000);
        });

        it("accepts the symbol in any case", async () => {
          const upper = await makeSource(fixedClock).getBars("BTC", interval, {
            end: new Date(end),
            limit: 3,
          });
          expect(
            await makeSource(fixedClock).getBars(" btc ", interval, { end: new Date(end), limit: 3 }),
          ).toEqual(upper);
        });
      });
    }

    it("never returns a bar that closes after the source's clock, even for a later end", async () => {
      // Mid-bar of 2026-03-27: that bar is in the data (saved later, or served in progress) but had not closed.
      const midBar = () => Date.parse("2026-03-27T12:00:00Z");
      const bars = await makeSource(midBar).getBars("BTC", "1d", {
        end: new Date("2026-03-29T00:00:00Z"),
        limit: 3,
      });
      expect(new Date((bars.at(-1) as Bar).time).toISOString()).toBe("2026-03-26T00:00:00.000Z");
    });

    it("rejects an unknown symbol with unknown_symbol, naming the supported ones", async () => {
      const error = await makeSource(fixedClock)
        .getBars("DOGE", "1d")
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EdgeMLError);
      expect(error).toMatchObject({ code: "unknown_symbol", status: 400 });
      expect((error as Error).message).toMatch(/DOGE.*BTC, ETH/);
    });

    it("answers market_data_unavailable when no bar had closed by `end`", async () => {
      await expect(
        makeSource(fixedClock).getBars("BTC", "1d", { end: new Date("2010-01-01T00:00:00Z") }),
      ).rejects.toMatchObject({
        code: "market_data_unavailable",
        status: 503,
      });
    });

    it.each([
      ["limit 0", { limit: 0 }],
      ["limit 2.5", { limit: 2.5 }],
      ["an invalid end", { end: new Date(Number.NaN) }],
    ])("rejects %s with invalid_request", async (_, options) => {
      await expect(makeSource(fixedClock).getBars("BTC", "1d", options)).rejects.toMatchObject({
        code: "invalid_request",
      });
    });

    it("rejects an unsupported interval with invalid_request", async () => {
      await expect(makeSource(fixedClock).getBars("BTC", "5m" as Interval)).rejects.toMatchObject({
        code: "invalid_request",
      });
    });
  });
}
