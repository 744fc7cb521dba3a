import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { Bar } from "../../src/market/types.js";
import { createYahooMarketData, type YahooMarketDataOptions } from "../../src/market/yahoo.js";
import { MARKET_DATA } from "../support/paths.js";
import { marketDataContract } from "./contract.js";
import { type FakeYahooOptions, fakeYahoo } from "./fake-yahoo.js";

marketDataContract("yahoo (recorded-format responses)", (now) =>
  createYahooMarketData({
    fetch: fakeYahoo({ dir: MARKET_DATA, now, liveTick: true }).fetch,
    now,
    backoffMs: 1,
  }),
);

const DAY = 86_400_000;
const AS_OF = Date.parse("2024-01-01T00:00:00Z");

function yahoo(fake: FakeYahooOptions | Omit<FakeYahooOptions, "dir">, options: YahooMarketDataOptions = {}) {
  const server = fakeYahoo({ dir: MARKET_DATA, ...fake });
  const source = createYahooMarketData({ fetch: server.fetch, backoffMs: 1, now: () => AS_OF, ...options });
  return { server, source };
}

describe("yahoo market data", () => {
  // yahoo-finance2 prints the URL of every non-2xx answer; the tests below provoke several.
  beforeEach(() => {
    vi.spyOn(console, "error").mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("serves the same bars as the CSV source for the same as-of and limit", async () => {
    const csv = createCsvMarketData({ dir: MARKET_DATA });
    const { source } = yahoo({ liveTick: true });
    for (const [interval, end] of [
      ["1d", "2021-05-19T12:00:00Z"],
      ["1h", "2021-05-19T12:00:00Z"],
    ] as const) {
      const options = { end: new Date(end), limit: 300 };
      expect(await source.getBars("ETH", interval, options)).toEqual(
        await csv.getBars("ETH", interval, options),
      );
    }
  });

  it("asks only the chart endpoint, with the interval and a period ending at the as-of instant (no cookie or crumb)", async () => {
    const { server, source } = yahoo({});
    await source.getBars("BTC", "1h", { end: new Date("2022-01-01T00:00:00Z"), limit: 10 });
    expect(server.calls).toHaveLength(1);
    const url = new URL(server.calls[0] as string);
    expect(`${url.origin}${url.pathname}`).toBe("https://query2.finance.yahoo.com/v8/finance/chart/BTC-USD");
    expect(url.searchParams.get("interval")).toBe("1h");
    expect(Number(url.searchParams.get("period2")) * 1000).toBe(Date.parse("2022-01-01T00:00:00Z"));
  });

  it("drops bars that Yahoo padded with nulls", async () => {
    const missing = Date.parse("2023-12-25T00:00:00Z");
    const { source } = yahoo({ nullAt: [missing] });
    const bars = await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 10 });
    expect(bars.map((b) => b.time)).not.toContain(missing);
    expect(bars.map((b) => b.time)).toContain(missing - DAY);
    expect(bars.map((b) => b.time)).toContain(missing + DAY);
  });

  it("drops the live quote and the bar still in progress", async () => {
    const now = Date.parse("2023-12-31T15:00:00Z");
    const { source } = yahoo({ now: () => now, liveTick: true }, { now: () => now });
    const bars = await source.getBars("BTC", "1d");
    expect(new Date((bars.at(-1) as Bar).time).toISOString()).toBe("2023-12-30T00:00:00.000Z");
    expect(bars.every((b) => b.time % DAY === 0)).toBe(true);
  });

  describe("retries", () => {
    it.each([500, 502, 503, 429])("retries after HTTP %i and then serves", async (status) => {
      const { server, source } = yahoo({ failures: [status] });
      const bars = await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 5 });
      expect(bars).toHaveLength(5);
      expect(server.calls).toHaveLength(2);
    });

    it("backs off exponentially between attempts", async () => {
      const { server, source } = yahoo({ failures: [500, 500, 500] }, { backoffMs: 20 });
      const started = performance.now();
      await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 5 });
      expect(server.calls).toHaveLength(4);
      // 20 + 40 + 80 ms of waiting at least.
      expect(performance.now() - started).toBeGreaterThanOrEqual(135);
    });

    it("gives up after `retries` retries with market_data_unavailable carrying the cause", async () => {
      const { server, source } = yahoo({ failures: [503, 503, 503] }, { retries: 2 });
      const error = await source.getBars("BTC", "1d", { end: new Date(AS_OF) }).catch((e: unknown) => e);
      expect(server.calls).toHaveLength(3);
      expect(error).toMatchObject({ code: "market_data_unavailable", status: 503 });
      expect((error as Error).message).toMatch(
        /Yahoo Finance did not deliver 1d bars for BTC-USD \(HTTP 503.*\); retry later or serve from the CSV/,
      );
      expect((error as Error).cause).toBeInstanceOf(Error);
    });

    it("answers market_data_unavailable when Yahoo is unreachable (fetch throws)", async () => {
      const { server, source } = yahoo({ failures: ["throw", "throw", "throw", "throw"] });
      const error = await source
        .getBars("ETH", "1h", { end: new Date("2022-01-01T00:00:00Z") })
        .catch((e: unknown) => e);
      expect(server.calls).toHaveLength(4);
      expect(error).toMatchObject({ code: "market_data_unavailable" });
      expect((error as Error).message).toMatch(/TypeError: fetch failed/);
    });

    it.each([
      ["HTTP 404", 404, /HTTP 404/],
      ["HTTP 400", 400, /HTTP 400/],
      ["Yahoo's own 404 answer", "not-found", /No data found, symbol may be delisted/],
    ] as const)("does not retry an answer that will not change: %s", async (_, failure, message) => {
      const { server, source } = yahoo({ failures: [failure] });
      const error = await source.getBars("BTC", "1d", { end: new Date(AS_OF) }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "market_data_unavailable" });
      expect((error as Error).message).toMatch(message);
      expect(server.calls).toHaveLength(1);
    });
  });

  describe("cache", () => {
    it("reuses an answer within cacheTtlMs and asks again after it", async () => {
      let clock = AS_OF;
      const { server, source } = yahoo({}, { now: () => clock, cacheTtlMs: 60_000 });
      const first = await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 20 });
      clock += 59_000;
      expect(await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 20 })).toEqual(first);
      expect(server.calls).toHaveLength(1);
      clock += 2_000;
      await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 20 });
      expect(server.calls).toHaveLength(2);
    });

    it("shares one request among concurrent identical calls", async () => {
      const { server, source } = yahoo({});
      const results = await Promise.all(
        Array.from({ length: 5 }, () => source.getBars("ETH", "1d", { end: new Date(AS_OF), limit: 3 })),
      );
      expect(server.calls).toHaveLength(1);
      for (const bars of results) expect(bars).toEqual(results[0]);
    });

    it("keeps separate answers per symbol, interval, end and limit", async () => {
      const { server, source } = yahoo({});
      await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 3 });
      await source.getBars("ETH", "1d", { end: new Date(AS_OF), limit: 3 });
      await source.getBars("BTC", "1h", { end: new Date("2022-01-01T00:00:00Z"), limit: 3 });
      await source.getBars("BTC", "1d", { end: new Date(AS_OF - DAY), limit: 3 });
      await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 4 });
      expect(server.calls).toHaveLength(5);
    });

    it("keys an answer by the last closed bar: calls at different instants of one bar share one fetch", async () => {
      let clock = AS_OF + 60_000;
      const { server, source } = yahoo({}, { now: () => clock });
      const first = await source.getBars("BTC", "1d", { end: new Date(AS_OF + 3_600_000), limit: 20 });
      expect(await source.getBars("BTC", "1d", { end: new Date(AS_OF + 7 * 3_600_000), limit: 20 })).toEqual(
        first,
      );
      // No `end` is "now": the same bar, and the same answer, until the next bar closes.
      expect(await source.getBars("BTC", "1d", { limit: 20 })).toEqual(first);
      clock += 30_000;
      expect(await source.getBars("BTC", "1d", { limit: 20 })).toEqual(first);
      expect(server.calls).toHaveLength(1);
      // The next bar, once it has closed (an `end` past the clock counts as the clock).
      clock = AS_OF + DAY + 60_000;
      await source.getBars("BTC", "1d", { end: new Date(AS_OF + DAY), limit: 20 });
      expect(server.calls).toHaveLength(2);
    });

    it("does not cache a failure", async () => {
      const { server, source } = yahoo({ failures: ["throw", "throw"] }, { retries: 1 });
      await expect(source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 3 })).rejects.toMatchObject({
        code: "market_data_unavailable",
      });
      expect(await source.getBars("BTC", "1d", { end: new Date(AS_OF), limit: 3 })).toHaveLength(3);
      expect(server.calls).toHaveLength(3);
    });
  });

  it("rejects settings that cannot work when it is built", () => {
    expect(() => createYahooMarketData({ retries: -1 })).toThrow(/retries/);
    expect(() => createYahooMarketData({ timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
