import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A stand-in for Yahoo's chart endpoint, answering yahoo-finance2 with responses in Yahoo's real JSON format
 * (`/v8/finance/chart/{ticker}?period1&period2&interval`), built at test time from the real bars in the market
 * data directory. The CSVs are parsed here independently of src/market/node/csv.ts, so that comparing the two adapters
 * checks both parsers.
 *
 * Like Yahoo: bars are served for open times in [period1, period2) up to the clock, the bar in progress included;
 * `liveTick` appends the off-grid "live quote" point Yahoo adds; `nullAt` pads chosen bars with nulls; a range with
 * no bars gets the empty-chart answer; an unknown ticker gets Yahoo's 404 body.
 */
export interface FakeYahooOptions {
  dir: string;
  /** The fake's "now" in ms: no bar opens after it. Default: serve every bar. */
  now?: () => number;
  liveTick?: boolean;
  /** Open times (ms) of bars served as nulls. */
  nullAt?: number[];
  /**
   * Answers given, in order, before serving normally: an HTTP status with an HTML body (what Yahoo's edge sends
   * when overloaded), "not-found" for Yahoo's own 404 answer, or "throw" for a network failure.
   */
  failures?: (number | "throw" | "not-found")[];
}

export interface FakeYahoo {
  fetch: typeof fetch;
  /** Every URL requested, in order. */
  calls: string[];
}

interface SeriesBar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

const FILES: Record<string, Record<string, string>> = {
  "BTC-USD": { "1d": "BTC-USD_1d.csv", "1h": "BTCUSDT_1h.csv" },
  "ETH-USD": { "1d": "ETH-USD_1d.csv", "1h": "ETHUSDT_1h.csv" },
};
const STEP: Record<string, number> = { "1d": 86_400_000, "1h": 3_600_000 };

const seriesCache = new Map<string, SeriesBar[]>();

function series(dir: string, file: string): SeriesBar[] {
  const key = join(dir, file);
  const cached = seriesCache.get(key);
  if (cached) return cached;
  const lines = readFileSync(key, "utf8").trim().split("\n");
  let bars: SeriesBar[];
  if (file.endsWith("_1d.csv")) {
    // Date,Open,High,Low,Close,Adj Close,Volume,Ticker
    bars = lines.slice(1).map((line) => {
      const c = line.split(",");
      return {
        time: Date.parse(`${c[0]}T00:00:00Z`),
        open: Number(c[1]),
        high: Number(c[2]),
        low: Number(c[3]),
        close: Number(c[4]),
        volume: Number(c[6]),
      };
    });
  } else {
    // banner, then unix,date,symbol,open,high,low,close,Volume X,Volume USDT,tradecount — newest first
    bars = lines
      .slice(2)
      .map((line) => {
        const c = line.split(",");
        return {
          time: Number(c[0]),
          open: Number(c[3]),
          high: Number(c[4]),
          low: Number(c[5]),
          close: Number(c[6]),
          volume: Number(c[8]),
        };
      })
      .reverse();
  }
  seriesCache.set(key, bars);
  return bars;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json;charset=utf-8" },
  });
}

/** `meta` as Yahoo sends it for a crypto pair (field set of a recorded BTC-USD answer). */
function meta(ticker: string, interval: string, served: SeriesBar[], period1: number, period2: number) {
  const last = served[served.length - 1];
  const period = {
    timezone: "UTC",
    start: Math.floor(period1 / 1000),
    end: Math.floor(period2 / 1000),
    gmtoffset: 0,
  };
  return {
    currency: "USD",
    symbol: ticker,
    exchangeName: "CCC",
    fullExchangeName: "CCC",
    instrumentType: "CRYPTOCURRENCY",
    firstTradeDate: 1410912000,
    regularMarketTime: last ? Math.floor(last.time / 1000) : period.end,
    hasPrePostMarketData: false,
    gmtoffset: 0,
    timezone: "UTC",
    exchangeTimezoneName: "UTC",
    regularMarketPrice: last?.close ?? 0,
    fiftyTwoWeekHigh: last?.high ?? 0,
    fiftyTwoWeekLow: last?.low ?? 0,
    regularMarketDayHigh: last?.high ?? 0,
    regularMarketDayLow: last?.low ?? 0,
    regularMarketVolume: last?.volume ?? 0,
    chartPreviousClose: served[0]?.open ?? 0,
    priceHint: 2,
    currentTradingPeriod: { pre: period, regular: period, post: period },
    dataGranularity: interval,
    range: "",
    validRanges: ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
  };
}

function notFound(): Response {
  return json(
    {
      chart: {
        result: null,
        error: { code: "Not Found", description: "No data found, symbol may be delisted" },
      },
    },
    404,
  );
}

export function fakeYahoo(options: FakeYahooOptions): FakeYahoo {
  const calls: string[] = [];
  const failures = [...(options.failures ?? [])];
  const nullAt = new Set(options.nullAt ?? []);

  const fakeFetch = async (input: RequestInfo | URL, _init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    calls.push(url.toString());
    const failure = failures.shift();
    if (failure === "throw") throw new TypeError("fetch failed");
    if (failure === "not-found") return notFound();
    if (typeof failure === "number") return new Response(`<html>${failure}</html>`, { status: failure });

    const match = /^\/v8\/finance\/chart\/([^/]+)$/.exec(url.pathname);
    if (url.hostname !== "query2.finance.yahoo.com" || !match) {
      return new Response("not a chart request", { status: 404 });
    }
    const ticker = decodeURIComponent(match[1] as string);
    const interval = url.searchParams.get("interval") ?? "1d";
    const file = FILES[ticker]?.[interval];
    if (!file) return notFound();
    const period1 = Number(url.searchParams.get("period1")) * 1000;
    const period2 = Number(url.searchParams.get("period2")) * 1000;
    const now = options.now?.() ?? Number.POSITIVE_INFINITY;
    const served = series(options.dir, file).filter(
      (b) => b.time >= period1 && b.time < period2 && b.time <= now,
    );
    const result: Record<string, unknown> = { meta: meta(ticker, interval, served, period1, period2) };
    if (served.length === 0) {
      result.indicators = { quote: [{}] };
    } else {
      const points = served.map((b) =>
        nullAt.has(b.time) ? { ...b, open: null, high: null, low: null, close: null, volume: null } : b,
      );
      if (options.liveTick) {
        const last = served[served.length - 1] as SeriesBar;
        points.push({ ...last, time: last.time + Math.floor((STEP[interval] as number) / 3) + 60_000 });
      }
      result.timestamp = points.map((p) => Math.floor(p.time / 1000));
      const quote = {
        open: points.map((p) => p.open),
        high: points.map((p) => p.high),
        low: points.map((p) => p.low),
        close: points.map((p) => p.close),
        volume: points.map((p) => p.volume),
      };
      result.indicators =
        interval === "1d" ? { quote: [quote], adjclose: [{ adjclose: quote.close }] } : { quote: [quote] };
    }
    return json({ chart: { result: [result], error: null } });
  };
  return { fetch: fakeFetch as typeof fetch, calls };
}
