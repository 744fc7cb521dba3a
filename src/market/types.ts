/** One OHLCV bar. Prices in the quote currency (USD for Yahoo, USDT for the hourly CSVs), volume in the quote currency. */
export interface Bar {
  /** Bar open time, ms since epoch UTC. */
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export type Interval = "1d" | "1h";

export interface GetBarsOptions {
  /**
   * As-of instant: only bars that had closed by `end` (open time + interval <= end) are returned, so a forecast made
   * "as of" a moment never sees a bar still in progress. Default: now. An `end` after the source's clock (or, for a
   * file, after it was written) counts as that instant: a bar that closes after the data was retrieved is never
   * returned.
   */
  end?: Date;
  /** Return at most the `limit` most recent bars. Default: all that the source has. */
  limit?: number;
}

/** The market-data port: all that forecasting needs from a source of bars. */
export interface MarketDataSource {
  readonly name: string;
  /**
   * Bars of `symbol` ("BTC", "ETH") at `interval`, ascending by time, each complete as of `options.end`.
   * Throws EdgeMLError `unknown_symbol` for a symbol outside SUPPORTED_SYMBOLS and `market_data_unavailable` when the
   * source cannot deliver any bar.
   */
  getBars(symbol: string, interval: Interval, options?: GetBarsOptions): Promise<Bar[]>;
}
