/**
 * Offline market data from a directory of CSV files (Node only: reads the file system). The embedded default source,
 * used by `npm start`, the unit tests and training on the shipped history.
 *
 * Two fixed formats, both hand parsed: neither has quoted fields or embedded commas, and a hand parser can point at
 * the file and line of every defect, which is what a person fixing a downloaded file needs.
 * - Yahoo Finance daily (`<TICKER>_1d.csv`): header `Date,Open,High,Low,Close,Adj Close,Volume,Ticker`, ascending.
 * - CryptoDataDownload hourly (`<SYM>USDT_1h.csv`): a banner line (the site's URL), then
 *   `unix,date,symbol,open,high,low,close,Volume <SYM>,Volume USDT,tradecount`, descending.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { createAsyncCache } from "../../cache/async-cache.js";
import { EdgeMLError } from "../../errors.js";
import {
  assertGetBarsOptions,
  assertInterval,
  barStep,
  INTERVAL_MS,
  isoTime,
  resolveSymbol,
  SUPPORTED_SYMBOLS,
  selectBars,
} from "../symbols.js";
import type { Bar, Interval, MarketDataSource } from "../types.js";

export interface CsvMarketDataOptions {
  /** Directory holding the files named in SUPPORTED_SYMBOLS (e.g. `../shared/data/market`). */
  dir: string;
  /** Clock for the default `end`, for tests. Default Date.now. */
  now?: () => number;
}

const YAHOO_DAILY_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume,Ticker";
const CDD_HEADER = /^unix,date,symbol,open,high,low,close,Volume (\w+),Volume USDT,tradecount$/;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/**
 * A market-data source over CSV files. Each file is parsed and validated once and kept in memory until its mtime or
 * size changes, so a long-running server picks up a re-downloaded file without a restart.
 */
export function createCsvMarketData(options: CsvMarketDataOptions): MarketDataSource {
  const dir = path.resolve(options.dir);
  const now = options.now ?? Date.now;
  // Policy: memo, keyed by file, mtime and size (a file's content for a given mtime and size does not change):
  // concurrent reads of a file share one parse; a failed parse is not kept, so the next call re-reads the (maybe
  // fixed) file.
  const cache = createAsyncCache<string, readonly Bar[], { file: string; interval: Interval }>({
    policy: { kind: "memo" },
    load: async (_key, { file, interval }) =>
      parseMarketCsv(await readFile(file, "utf8"), path.basename(file), interval),
  });
  /** The key each file is cached under now: a changed file's previous parse is dropped, not kept until evicted. */
  const current = new Map<string, string>();

  /** A file's bars and when they were retrieved: the file's modification time, when it was written. */
  async function load(
    file: string,
    symbol: string,
    interval: Interval,
  ): Promise<{ bars: readonly Bar[]; retrievedAt: number }> {
    let info: { mtimeMs: number; size: number };
    try {
      info = await stat(file);
    } catch (cause) {
      throw new EdgeMLError(
        "market_data_unavailable",
        `no ${interval} bars for ${symbol}: ${file} is missing; put the file there (see SOURCES.md beside the data) or use the Yahoo Finance source`,
        { cause },
      );
    }
    const key = `${file}|${info.mtimeMs}|${info.size}`;
    const previous = current.get(file);
    if (previous !== undefined && previous !== key) cache.delete(previous);
    current.set(file, key);
    return { bars: await cache.get(key, { file, interval }), retrievedAt: info.mtimeMs };
  }

  return {
    name: "csv",
    async getBars(symbol, interval, getOptions = {}) {
      const id = resolveSymbol(symbol);
      assertInterval(interval);
      assertGetBarsOptions(getOptions);
      const file = path.join(dir, SUPPORTED_SYMBOLS[id].csvFiles[interval]);
      const { bars: all, retrievedAt } = await load(file, id, interval);
      // Never past the source's clock nor the moment the file was written, whatever `end` asks: a bar that closes
      // after the data was retrieved was still in progress then (a file saved mid-bar holds it, with the prices so
      // far), and a forecast must not use it.
      const endMs = Math.min(getOptions.end?.getTime() ?? Number.POSITIVE_INFINITY, now(), retrievedAt);
      const bars = selectBars(all, interval, endMs, getOptions.limit);
      if (bars.length === 0) {
        const first = all[0] as Bar;
        throw new EdgeMLError(
          "market_data_unavailable",
          `no ${interval} bars for ${id} closed by ${isoTime(endMs)}: ${path.basename(file)} starts at ${isoTime(first.time)}; ask for a later end`,
        );
      }
      return bars;
    },
  };
}

/**
 * Parses one market CSV (either format, told apart by its first line) into validated bars, ascending. Throws
 * `market_data_unavailable` naming the file and line of the first defect: a malformed line, bars out of order, a
 * duplicate, or a gap at the interval spacing.
 */
export function parseMarketCsv(text: string, fileName: string, interval: Interval): readonly Bar[] {
  const lines = text.split(/\r?\n/);
  const fail = (line: number, problem: string): never => {
    throw new EdgeMLError(
      "market_data_unavailable",
      `${fileName}:${line}: ${problem}; fix or re-download the file (see SOURCES.md beside the data)`,
      { details: { file: fileName, line } },
    );
  };

  const first = lines[0]?.trim() ?? "";
  let rows: { bar: Bar; line: number }[];
  let descending: boolean;
  if (first === YAHOO_DAILY_HEADER) {
    rows = parseYahooDaily(lines, fail);
    descending = false;
  } else if (/^https?:\/\//.test(first) && CDD_HEADER.test(lines[1]?.trim() ?? "")) {
    rows = parseCryptoDataDownload(lines, fail);
    descending = true;
  } else {
    return fail(
      1,
      `unrecognised header ${JSON.stringify(first.slice(0, 80))} (expected Yahoo daily or CryptoDataDownload)`,
    );
  }
  if (rows.length === 0) return fail(lines.length, "no bars in the file");

  const step = INTERVAL_MS[interval];
  for (let i = 1; i < rows.length; i++) {
    const prev = rows[i - 1] as { bar: Bar; line: number };
    const row = rows[i] as { bar: Bar; line: number };
    // Compare in file order, so the message names the lines as a person reads them.
    const how = descending
      ? barStep(row.bar.time, prev.bar.time, interval)
      : barStep(prev.bar.time, row.bar.time, interval);
    if (how === "duplicate")
      fail(row.line, `duplicate bar ${isoTime(row.bar.time)} (also on line ${prev.line})`);
    if (how === "out_of_order") {
      fail(
        row.line,
        `bar ${isoTime(row.bar.time)} out of order after line ${prev.line} (file must be ${descending ? "descending" : "ascending"})`,
      );
    }
    if (how === "gap") {
      fail(
        row.line,
        `gap between ${isoTime(Math.min(prev.bar.time, row.bar.time))} and ${isoTime(Math.max(prev.bar.time, row.bar.time))} (expected ${interval} spacing)`,
      );
    }
  }
  for (const row of rows) {
    if (row.bar.time % step !== 0)
      fail(row.line, `bar time ${isoTime(row.bar.time)} is not on the ${interval} grid (UTC)`);
  }

  const bars = rows.map((row) => Object.freeze(row.bar));
  if (descending) bars.reverse();
  return Object.freeze(bars);
}

type Fail = (line: number, problem: string) => never;

/** A tuple of `N` strings: the fields of one CSV line, once their count is checked. */
type Fields<N extends number, T extends string[] = []> = T["length"] extends N
  ? T
  : Fields<N, [...T, string]>;

/** The data lines from index `first` on (blank lines skipped), each split into exactly `width` fields. */
function* records<N extends number>(
  lines: string[],
  first: number,
  width: N,
  fail: Fail,
): Generator<{ cells: Fields<N>; line: number }> {
  for (let i = first; i < lines.length; i++) {
    const text = lines[i]?.trim() ?? "";
    if (text === "") continue;
    const cells = text.split(",");
    if (cells.length !== width) fail(i + 1, `expected ${width} fields, got ${cells.length}`);
    yield { cells: cells as Fields<N>, line: i + 1 };
  }
}

function parseYahooDaily(lines: string[], fail: Fail): { bar: Bar; line: number }[] {
  const rows: { bar: Bar; line: number }[] = [];
  let ticker: string | undefined;
  for (const { cells, line } of records(lines, 1, 8, fail)) {
    const [date, open, high, low, close, , volume, rowTicker] = cells;
    const day = DAY.exec(date);
    if (!day) return fail(line, `bad date ${JSON.stringify(date)} (expected YYYY-MM-DD)`);
    ticker ??= rowTicker;
    if (rowTicker !== ticker) fail(line, `ticker ${rowTicker} differs from ${ticker} above`);
    const time = Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]));
    rows.push({ bar: ohlcv(time, open, high, low, close, volume, line, fail), line });
  }
  return rows;
}

function parseCryptoDataDownload(lines: string[], fail: Fail): { bar: Bar; line: number }[] {
  const rows: { bar: Bar; line: number }[] = [];
  let symbol: string | undefined;
  for (const { cells, line } of records(lines, 2, 10, fail)) {
    const [unix, date, rowSymbol, open, high, low, close, , volumeQuote] = cells;
    let time = Number(unix);
    if (!Number.isInteger(time) || time <= 0) fail(line, `bad unix time ${JSON.stringify(unix)}`);
    // CryptoDataDownload switched from seconds to milliseconds over the years; older files mix both.
    if (time < 1e11) time *= 1000;
    const stamp = DATE_TIME.exec(date);
    if (!stamp) return fail(line, `bad date ${JSON.stringify(date)} (expected YYYY-MM-DD HH:MM:SS)`);
    const part = (k: number) => Number(stamp[k]);
    const fromDate = Date.UTC(part(1), part(2) - 1, part(3), part(4), part(5), part(6));
    if (fromDate !== time) fail(line, `unix time ${unix} disagrees with date ${date} (UTC)`);
    symbol ??= rowSymbol;
    if (rowSymbol !== symbol) fail(line, `symbol ${rowSymbol} differs from ${symbol} above`);
    // Volume in the quote currency (USDT), the unit Yahoo reports for BTC-USD, so both sources mean the same thing.
    rows.push({ bar: ohlcv(time, open, high, low, close, volumeQuote, line, fail), line });
  }
  return rows;
}

function ohlcv(
  time: number,
  openText: string,
  highText: string,
  lowText: string,
  closeText: string,
  volumeText: string,
  line: number,
  fail: Fail,
): Bar {
  const price = (name: string, text: string): number => {
    const value = Number(text);
    if (text === "" || !Number.isFinite(value) || value <= 0)
      fail(line, `bad ${name} ${JSON.stringify(text)} (expected a positive number)`);
    return value;
  };
  const open = price("open", openText);
  const high = price("high", highText);
  const low = price("low", lowText);
  const close = price("close", closeText);
  const volume = Number(volumeText);
  if (volumeText === "" || !Number.isFinite(volume) || volume < 0)
    fail(line, `bad volume ${JSON.stringify(volumeText)}`);
  if (low > Math.min(open, close) || high < Math.max(open, close)) {
    fail(line, `inconsistent bar: low ${low} / high ${high} do not bracket open ${open} and close ${close}`);
  }
  return { time, open, high, low, close, volume };
}
