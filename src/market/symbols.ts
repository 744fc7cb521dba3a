import { EdgeMLError } from "../errors.js";
import type { Bar, GetBarsOptions, Interval } from "./types.js";

/**
 * The symbols users forecast, by their own ids, and where each source keeps them. The hourly CSVs are Binance
 * BTC/USDT and ETH/USDT klines (CryptoDataDownload), the nearest public hourly history to Yahoo's USD pairs.
 */
export const SUPPORTED_SYMBOLS = {
  BTC: { yahooTicker: "BTC-USD", csvFiles: { "1d": "BTC-USD_1d.csv", "1h": "BTCUSDT_1h.csv" } },
  ETH: { yahooTicker: "ETH-USD", csvFiles: { "1d": "ETH-USD_1d.csv", "1h": "ETHUSDT_1h.csv" } },
} as const satisfies Record<string, { yahooTicker: string; csvFiles: Record<Interval, string> }>;

export type MarketSymbol = keyof typeof SUPPORTED_SYMBOLS;

export const INTERVALS: readonly Interval[] = ["1d", "1h"];

/** Length of one bar. Both intervals are fixed-length in UTC (crypto trades around the clock, no DST). */
export const INTERVAL_MS: Readonly<Record<Interval, number>> = { "1d": 86_400_000, "1h": 3_600_000 };

/** The user's id ("btc", " BTC ") normalised to a supported symbol; throws `unknown_symbol` otherwise. */
export function resolveSymbol(symbol: string): MarketSymbol {
  const id = typeof symbol === "string" ? symbol.trim().toUpperCase() : "";
  if (Object.hasOwn(SUPPORTED_SYMBOLS, id)) return id as MarketSymbol;
  throw new EdgeMLError(
    "unknown_symbol",
    `unknown symbol ${JSON.stringify(symbol)}; supported: ${Object.keys(SUPPORTED_SYMBOLS).join(", ")}`,
    { details: { symbol, supported: Object.keys(SUPPORTED_SYMBOLS) } },
  );
}

export function assertInterval(interval: string): asserts interval is Interval {
  if (!(INTERVALS as readonly string[]).includes(interval)) {
    throw new EdgeMLError(
      "invalid_request",
      `unsupported interval ${JSON.stringify(interval)}; use one of ${INTERVALS.join(", ")}`,
    );
  }
}

export function assertGetBarsOptions(options: GetBarsOptions): void {
  const { end, limit } = options;
  if (end !== undefined && !(end instanceof Date && Number.isFinite(end.getTime()))) {
    throw new EdgeMLError("invalid_request", "`end` must be a valid Date");
  }
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
    throw new EdgeMLError("invalid_request", `\`limit\` must be a positive integer, got ${String(limit)}`);
  }
}

/**
 * The part of an ascending series that the options ask for: bars closed by `end` (open + interval <= end), then the
 * last `limit` of them. Shared by every adapter so that they agree on what `end` and `limit` mean.
 */
export function selectBars(bars: readonly Bar[], interval: Interval, endMs: number, limit?: number): Bar[] {
  const lastOpen = endMs - INTERVAL_MS[interval];
  // Binary search for the first bar that opened after lastOpen: the series can be 16k bars long.
  let lo = 0;
  let hi = bars.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((bars[mid] as Bar).time <= lastOpen) lo = mid + 1;
    else hi = mid;
  }
  const start = limit === undefined ? 0 : Math.max(0, lo - limit);
  return bars.slice(start, lo);
}

/**
 * How a bar opening at `next` follows one opening at `prev` on the interval's grid: one interval later ("ok"), or
 * not. Feature windows count bars, not hours, so every consumer of a series (the CSV parser, training, serving)
 * checks it the same way: a missing bar would silently stretch every window across it.
 */
export function barStep(
  prev: number,
  next: number,
  interval: Interval,
): "ok" | "duplicate" | "out_of_order" | "gap" {
  const delta = next - prev;
  if (delta === INTERVAL_MS[interval]) return "ok";
  if (delta === 0) return "duplicate";
  return delta < 0 ? "out_of_order" : "gap";
}

/** The index of the first bar of an ascending series that does not follow its predecessor by one interval, or -1. */
export function firstBreak(bars: readonly Bar[], interval: Interval): number {
  return bars.findIndex((bar, i) => i > 0 && barStep((bars[i - 1] as Bar).time, bar.time, interval) !== "ok");
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
