import { readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EdgeMLError } from "../../src/errors.js";
import { createCsvMarketData, parseMarketCsv } from "../../src/market/node/csv.js";
import type { Bar } from "../../src/market/types.js";
import { MARKET_DATA, tempDir } from "../support/paths.js";
import { marketDataContract } from "./contract.js";

marketDataContract("csv", (now) => createCsvMarketData({ dir: MARKET_DATA, now }));

const DAILY_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume,Ticker";
const HOURLY_BANNER = "https://www.CryptoDataDownload.com";
const HOURLY_HEADER = "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount";

/** The first `n` data lines of a real file, header lines kept. */
async function realLines(file: string, n: number): Promise<string[]> {
  const lines = (await readFile(join(MARKET_DATA, file), "utf8")).split("\n");
  const headerLines = file.endsWith("_1h.csv") ? 2 : 1;
  return lines.slice(0, headerLines + n);
}

function parseError(text: string, file: string, interval: "1d" | "1h"): EdgeMLError {
  try {
    parseMarketCsv(text, file, interval);
  } catch (error) {
    if (error instanceof EdgeMLError) return error;
    throw error;
  }
  throw new Error("expected parseMarketCsv to throw");
}

describe("csv market data", () => {
  describe("the shipped files", () => {
    it.each([
      ["BTC", "1d", 4210, "2014-09-17T00:00:00.000Z", "2026-03-27T00:00:00.000Z"],
      ["ETH", "1d", 3061, "2017-11-09T00:00:00.000Z", "2026-03-27T00:00:00.000Z"],
      ["BTC", "1h", 16319, "2020-08-02T02:00:00.000Z", "2022-06-13T00:00:00.000Z"],
      ["ETH", "1h", 16319, "2020-08-02T02:00:00.000Z", "2022-06-13T00:00:00.000Z"],
    ] as const)(
      "%s %s: %i bars from %s to %s (as SOURCES.md says)",
      async (symbol, interval, count, first, last) => {
        const bars = await createCsvMarketData({ dir: MARKET_DATA }).getBars(symbol, interval);
        expect(bars.length).toBe(count);
        expect(new Date((bars[0] as Bar).time).toISOString()).toBe(first);
        expect(new Date((bars.at(-1) as Bar).time).toISOString()).toBe(last);
      },
    );

    it("reads the Yahoo daily row as it stands (first BTC-USD row)", async () => {
      const [first] = await createCsvMarketData({ dir: MARKET_DATA }).getBars("BTC", "1d", {
        end: new Date("2014-09-18T00:00:00Z"),
      });
      expect(first).toEqual({
        time: Date.parse("2014-09-17T00:00:00Z"),
        open: 465.864013671875,
        high: 468.17401123046875,
        low: 452.4219970703125,
        close: 457.3340148925781,
        volume: 21056800,
      });
    });

    it("reads the CryptoDataDownload hourly file newest-first into ascending bars, volume in USDT", async () => {
      const bars = await createCsvMarketData({ dir: MARKET_DATA }).getBars("BTC", "1h");
      expect(bars.at(-1)).toEqual({
        time: 1655078400000,
        open: 26564.7,
        high: 26853.3,
        low: 26401,
        close: 26718.1,
        volume: 940604773.78413,
      });
    });

    it("returns bars that callers cannot mutate into the cache", async () => {
      const source = createCsvMarketData({ dir: MARKET_DATA });
      const bars = await source.getBars("BTC", "1d", { limit: 1 });
      expect(() => {
        (bars[0] as { close: number }).close = 1;
      }).toThrow(TypeError);
      expect((await source.getBars("BTC", "1d", { limit: 1 }))[0]?.close).toBe(66076.140625);
    });
  });

  describe("parseMarketCsv(text, file, interval): defects are reported by file and line", () => {
    it.each([
      [
        "a field missing",
        (l: string[]) => l.with(3, "2014-09-19,424.1,427.8,384.5,394.8,394.8,37919700"),
        /BTC-USD_1d\.csv:4: expected 8 fields, got 7/,
      ],
      [
        "a bad date",
        (l: string[]) => l.with(2, String(l[2]).replace("2014-09-18", "18/09/2014")),
        /BTC-USD_1d\.csv:3: bad date "18\/09\/2014"/,
      ],
      [
        "a non-numeric close",
        (l: string[]) => l.with(2, String(l[2]).replace("424.44000244140625,424", "n/a,424")),
        /BTC-USD_1d\.csv:3: bad close "n\/a"/,
      ],
      [
        "a negative volume",
        (l: string[]) => l.with(2, String(l[2]).replace(",34483200,", ",-5,")),
        /BTC-USD_1d\.csv:3: bad volume "-5"/,
      ],
      [
        "a low above the close",
        (l: string[]) => l.with(2, String(l[2]).replace("413.10400390625", "430")),
        /BTC-USD_1d\.csv:3: inconsistent bar/,
      ],
      [
        "a duplicate day",
        (l: string[]) => [...l.slice(0, 3), String(l[2]), ...l.slice(3)],
        /BTC-USD_1d\.csv:4: duplicate bar 2014-09-18/,
      ],
      [
        "a missing day",
        (l: string[]) => [...l.slice(0, 3), ...l.slice(4)],
        /BTC-USD_1d\.csv:4: gap between 2014-09-18T00:00:00\.000Z and 2014-09-20/,
      ],
      [
        "days out of order",
        (l: string[]) => [String(l[0]), String(l[2]), String(l[1]), ...l.slice(3)],
        /BTC-USD_1d\.csv:3: bar 2014-09-17.* out of order .* must be ascending/,
      ],
      [
        "a header that is neither format",
        (l: string[]) => ["Date;Open;High", ...l.slice(1)],
        /BTC-USD_1d\.csv:1: unrecognised header/,
      ],
    ])("daily: %s", async (_, edit, message) => {
      const lines = edit(await realLines("BTC-USD_1d.csv", 6));
      const error = parseError(lines.join("\n"), "BTC-USD_1d.csv", "1d");
      expect(error.code).toBe("market_data_unavailable");
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(/fix or re-download the file/);
    });

    it.each([
      [
        "unix time and date disagree",
        (l: string[]) => l.with(3, String(l[3]).replace("2022-06-12 23:00:00", "2022-06-12 22:00:00")),
        /BTCUSDT_1h\.csv:4: unix time 1655074800000 disagrees with date/,
      ],
      [
        "an hour missing",
        (l: string[]) => [...l.slice(0, 3), ...l.slice(4)],
        /BTCUSDT_1h\.csv:4: gap between 2022-06-12T22:00:00\.000Z and 2022-06-13T00:00:00\.000Z/,
      ],
      [
        "hours ascending instead of descending",
        (l: string[]) => [String(l[0]), String(l[1]), ...l.slice(2).reverse()],
        /out of order .* must be descending/,
      ],
      [
        "another pair mixed in",
        (l: string[]) => l.with(4, String(l[4]).replace("BTC/USDT", "ETH/USDT")),
        /BTCUSDT_1h\.csv:5: symbol ETH\/USDT differs from BTC\/USDT/,
      ],
    ])("hourly: %s", async (_, edit, message) => {
      const lines = edit(await realLines("BTCUSDT_1h.csv", 6));
      expect(lines[0]).toBe(HOURLY_BANNER);
      expect(lines[1]).toBe(HOURLY_HEADER);
      expect(parseError(lines.join("\n"), "BTCUSDT_1h.csv", "1h").message).toMatch(message);
    });

    it("accepts CryptoDataDownload's older unix seconds", async () => {
      const lines = await realLines("BTCUSDT_1h.csv", 3);
      const seconds = lines.map((line, i) => (i < 2 ? line : line.replace(/^(\d+)000,/, "$1,")));
      expect(parseMarketCsv(seconds.join("\n"), "BTCUSDT_1h.csv", "1h")).toEqual(
        parseMarketCsv(lines.join("\n"), "BTCUSDT_1h.csv", "1h"),
      );
    });

    it("rejects a file with a header and no bars", () => {
      expect(parseError(`${DAILY_HEADER}\n`, "BTC-USD_1d.csv", "1d").message).toMatch(/no bars in the file/);
    });

    it("rejects daily bars read as hourly (spacing checked against the interval)", async () => {
      const lines = await realLines("BTC-USD_1d.csv", 3);
      expect(parseError(lines.join("\n"), "BTC-USD_1d.csv", "1h").message).toMatch(/expected 1h spacing/);
    });
  });

  describe("createCsvMarketData({ dir })", () => {
    let dir: { path: string; cleanup: () => Promise<void> };
    beforeEach(async () => {
      dir = await tempDir("edgeml-csv-");
    });
    afterEach(async () => {
      await dir.cleanup();
    });

    it("answers market_data_unavailable naming the missing file and what to do", async () => {
      const error = await createCsvMarketData({ dir: dir.path })
        .getBars("ETH", "1h")
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "market_data_unavailable" });
      expect((error as Error).message).toMatch(
        /ETHUSDT_1h\.csv is missing; put the file there .* or use the Yahoo Finance source/,
      );
    });

    it("parses a file once, and again only after it changes on disk", async () => {
      const file = join(dir.path, "BTC-USD_1d.csv");
      const lines = await realLines("BTC-USD_1d.csv", 5);
      await writeFile(file, lines.join("\n"));
      const source = createCsvMarketData({ dir: dir.path });
      const first = await source.getBars("BTC", "1d");
      expect(first).toHaveLength(5);
      expect((await source.getBars("BTC", "1d"))[0]).toBe(first[0]);

      await writeFile(file, (await realLines("BTC-USD_1d.csv", 8)).join("\n"));
      await utimes(file, new Date(), new Date(Date.now() + 5_000));
      expect(await source.getBars("BTC", "1d")).toHaveLength(8);
    });

    it("never returns a bar that closes after the file was written: a file saved mid-bar holds it in progress", async () => {
      const file = join(dir.path, "BTC-USD_1d.csv");
      // Six bars from 2014-09-17; the file written at noon of the sixth (2014-09-22), as a download then would be.
      await writeFile(file, (await realLines("BTC-USD_1d.csv", 6)).join("\n"));
      const savedAt = new Date("2014-09-22T12:00:00Z");
      await utimes(file, savedAt, savedAt);
      const bars = await createCsvMarketData({ dir: dir.path }).getBars("BTC", "1d", {
        end: new Date("2014-09-24T00:00:00Z"),
      });
      expect(bars.map((bar) => new Date(bar.time).toISOString().slice(0, 10))).toEqual([
        "2014-09-17",
        "2014-09-18",
        "2014-09-19",
        "2014-09-20",
        "2014-09-21",
      ]);
    });

    it("does not keep a failed parse: a fixed file is read on the next call", async () => {
      const file = join(dir.path, "BTC-USD_1d.csv");
      const lines = await realLines("BTC-USD_1d.csv", 5);
      await writeFile(file, [...lines.slice(0, 3), ...lines.slice(4)].join("\n"));
      const source = createCsvMarketData({ dir: dir.path });
      await expect(source.getBars("BTC", "1d")).rejects.toMatchObject({ code: "market_data_unavailable" });
      await writeFile(file, lines.join("\n"));
      await utimes(file, new Date(), new Date(Date.now() + 5_000));
      expect(await source.getBars("BTC", "1d")).toHaveLength(5);
    });
  });
});
