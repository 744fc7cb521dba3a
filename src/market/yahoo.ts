/**
 * Live market data from Yahoo Finance through yahoo-finance2's `chart()` (the v8 chart API). Runtime-agnostic: all it
 * needs is a `fetch`, which tests inject to serve recorded-format responses.
 */
import createYahooFinance from "yahoo-finance2/createYahooFinance";
import chart from "yahoo-finance2/modules/chart";
import { createAsyncCache } from "../cache/async-cache.js";
import { EdgeMLError, isEdgeMLError } from "../errors.js";
import {
  assertGetBarsOptions,
  assertInterval,
  INTERVAL_MS,
  isoTime,
  resolveSymbol,
  SUPPORTED_SYMBOLS,
  selectBars,
} from "./symbols.js";
import type { Bar, GetBarsOptions, Interval, MarketDataSource } from "./types.js";

// Only the chart module: the full client pulls in every Yahoo endpoint, which the edge bundle does not need.
const YahooFinance = createYahooFinance({ modules: { chart } });

export interface YahooMarketDataOptions {
  /** The fetch used for every request. Default: the runtime's global fetch. */
  fetch?: typeof fetch;
  /** Retries after the first attempt, for network failures, 429 and 5xx only. Default 3. */
  retries?: number;
  /** Wait before the first retry; doubles each retry. Default 500 ms. */
  backoffMs?: number;
  /**
   * How long an answer is reused for the same symbol, interval, limit and last closed bar. Default 60 s: bars change
   * at most once an hour, and a bar that Yahoo publishes a little after its close is picked up within a minute.
   */
  cacheTtlMs?: number;
  /** Per-attempt timeout. Default 10 s, so that retries fit in the API's 30 s prediction budget. */
  timeoutMs?: number;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
}

/**
 * Yahoo keeps hourly bars for the last 730 days only and refuses a range that starts earlier; one day of margin
 * keeps the default request valid whatever the clock skew.
 */
const HOURLY_HISTORY_MS = 729 * 86_400_000;

/** Bars requested beyond `limit`: Yahoo's null bars are dropped and the bar in progress is cut, so ask for a few more. */
const LIMIT_SLACK = (limit: number) => Math.ceil(limit * 0.1) + 5;

/**
 * A market-data source over Yahoo Finance. Requests are retried with exponential backoff, answers are kept for
 * `cacheTtlMs` (concurrent identical requests share one fetch), and every failure surfaces as
 * `market_data_unavailable` with the cause attached.
 */
export function createYahooMarketData(options: YahooMarketDataOptions = {}): MarketDataSource {
  const retries = options.retries ?? 3;
  const backoffMs = options.backoffMs ?? 500;
  const cacheTtlMs = options.cacheTtlMs ?? 60_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  if (!(Number.isInteger(retries) && retries >= 0))
    throw new TypeError("createYahooMarketData: retries must be an integer >= 0");
  if (!(backoffMs >= 0 && cacheTtlMs >= 0 && timeoutMs > 0)) {
    throw new TypeError("createYahooMarketData: backoffMs and cacheTtlMs must be >= 0, timeoutMs > 0");
  }

  const client = new YahooFinance({
    ...(options.fetch ? { fetch: options.fetch } : {}),
    suppressNotices: ["yahooSurvey"],
    versionCheck: false,
  });

  async function fetchChart(
    ticker: string,
    interval: Interval,
    period1: number,
    period2: number,
  ): Promise<unknown> {
    let attempt = 0;
    for (;;) {
      try {
        // validateResult: false because yahoo-finance2's schema covers all of `meta`, whose fields Yahoo changes
        // from time to time; we read only timestamps and OHLCV, and check those ourselves below.
        return await client.chart(
          ticker,
          { period1: new Date(period1), period2: new Date(period2), interval },
          { validateResult: false, fetchOptions: { signal: AbortSignal.timeout(timeoutMs) } },
        );
      } catch (error) {
        if (attempt >= retries || !isTransient(error)) throw error;
        await sleep(backoffMs * 2 ** attempt);
        attempt++;
      }
    }
  }

  async function load(
    id: keyof typeof SUPPORTED_SYMBOLS,
    interval: Interval,
    endMs: number,
    limit?: number,
  ): Promise<Bar[]> {
    const ticker = SUPPORTED_SYMBOLS[id].yahooTicker;
    const step = INTERVAL_MS[interval];
    const period1 =
      limit !== undefined
        ? endMs - (limit + LIMIT_SLACK(limit)) * step
        : interval === "1h"
          ? endMs - HOURLY_HISTORY_MS
          : 0;
    let raw: unknown;
    try {
      raw = await fetchChart(ticker, interval, Math.max(0, period1), endMs);
    } catch (cause) {
      throw new EdgeMLError(
        "market_data_unavailable",
        `Yahoo Finance did not deliver ${interval} bars for ${ticker} (${describe(cause)}); retry later or serve from the CSV market data source`,
        { cause },
      );
    }
    const bars = selectBars(toBars(raw, ticker, step), interval, endMs, limit);
    if (bars.length === 0) {
      throw new EdgeMLError(
        "market_data_unavailable",
        `Yahoo Finance returned no complete ${interval} bars for ${ticker} up to ${isoTime(endMs)}; retry later or ask for an earlier end`,
      );
    }
    return bars;
  }

  // Policy: ttl (`cacheTtlMs`): concurrent identical requests share one fetch; a failure is not kept, so the next
  // request tries Yahoo again.
  const cache = createAsyncCache<
    string,
    Bar[],
    { id: keyof typeof SUPPORTED_SYMBOLS; interval: Interval; lastClose: number; limit: number | undefined }
  >({
    policy: { kind: "ttl", ttlMs: Math.ceil(cacheTtlMs) },
    max: 1_000,
    now,
    load: (_key, { id, interval, lastClose, limit }) => load(id, interval, lastClose, limit),
  });

  return {
    name: "yahoo",
    async getBars(symbol, interval, getOptions: GetBarsOptions = {}) {
      const id = resolveSymbol(symbol);
      assertInterval(interval);
      assertGetBarsOptions(getOptions);
      const at = now();
      // Keyed by the last bar closed by `end`, not by `end` itself: every `end` inside one bar selects the same
      // bars (bars sit on the interval's UTC grid), so calls made at different instants of a bar share one fetch.
      const step = INTERVAL_MS[interval];
      // Never past the clock, whatever `end` asks: Yahoo serves the bar in progress on the grid like a closed one,
      // and a bar that closes after the moment it was fetched must never be used.
      const lastClose = Math.floor(Math.min(getOptions.end?.getTime() ?? at, at) / step) * step;
      const key = `${id}|${interval}|${lastClose}|${getOptions.limit ?? "all"}`;
      const bars = await cache.get(key, { id, interval, lastClose, limit: getOptions.limit });
      return bars.slice();
    },
  };
}

/** Network failures, timeouts, rate limiting and server errors are worth retrying; a 4xx or a Yahoo-reported error is not. */
function isTransient(error: unknown): boolean {
  if (isEdgeMLError(error) || !(error instanceof Error)) return false;
  if (error.name === "HTTPError") {
    const status = (error as Error & { code?: unknown }).code;
    return typeof status === "number" && (status >= 500 || status === 429);
  }
  return error instanceof TypeError || error.name === "TimeoutError" || error.name === "AbortError";
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const status = (error as Error & { code?: unknown }).code;
    const text = error.message.length > 200 ? `${error.message.slice(0, 200)}…` : error.message;
    return typeof status === "number" ? `HTTP ${status}: ${text}` : `${error.name}: ${text}`;
  }
  return String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface ChartQuote {
  date: Date;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  volume: number | null;
}

/**
 * Yahoo's quotes as bars: a bar with any null field is dropped (Yahoo pads missing bars with nulls), and so is a
 * point off the interval grid (the live quote Yahoo appends as the last "bar"). Ascending, one bar per time.
 */
function toBars(raw: unknown, ticker: string, step: number): Bar[] {
  const quotes = (raw as { quotes?: unknown } | null)?.quotes;
  if (!Array.isArray(quotes)) {
    throw new EdgeMLError(
      "market_data_unavailable",
      `Yahoo Finance sent an unexpected chart for ${ticker} (no quotes); retry later`,
    );
  }
  const bars: Bar[] = [];
  for (const quote of quotes as ChartQuote[]) {
    const time = quote.date instanceof Date ? quote.date.getTime() : Number.NaN;
    const { open, high, low, close, volume } = quote;
    if (!Number.isFinite(time) || time % step !== 0) continue;
    if (!isPositive(open) || !isPositive(high) || !isPositive(low) || !isPositive(close)) continue;
    if (typeof volume !== "number" || !(volume >= 0)) continue;
    const last = bars[bars.length - 1];
    if (last && time <= last.time) {
      if (time === last.time) bars.pop();
      else continue;
    }
    bars.push({ time, open, high, low, close, volume });
  }
  return bars;
}

function isPositive(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value > 0;
}
