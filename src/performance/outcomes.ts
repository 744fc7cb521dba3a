import { errorMessage } from "../errors.js";
import { INTERVAL_MS } from "../market/symbols.js";
import type { Bar, Interval, MarketDataSource } from "../market/types.js";
import type { Registry } from "../registry/registry.js";
import {
  outcomeFor,
  type PredictionLog,
  type PredictionRecord,
  type PredictionResolution,
} from "../storage/prediction-log.js";

/** What one resolution run did for a model. */
export interface ResolutionRun {
  /** Records resolved by this run. */
  resolved: number;
  /** Records due (target time passed) that stay unresolved: the source has no bar closing at their target yet. */
  pending: number;
  checked_at: string;
  /** Why the run stopped short (market or log unavailable); absent when it completed. */
  error?: string;
}

export interface OutcomeResolverDeps {
  log: PredictionLog;
  market: MarketDataSource;
  registry: Pick<Registry, "metadata">;
  now: () => Date;
}

/** Due records read per page, and pages per run: a run is bounded, whatever the backlog (the next run goes on). */
const PAGE = 1_000;
const MAX_PAGES = 10;

/**
 * Resolves forecasts whose target time has passed against the market: the actual is the close of the bar that closes
 * at `target_time` (open time = target − interval), from the same source the forecasts used. A record whose bar the
 * source does not have yet stays due for the next run; one the market contradicts is never touched here (the log's
 * `resolve` is final: the first outcome wins).
 */
export function createOutcomeResolver(deps: OutcomeResolverDeps) {
  /** The bar interval a version forecast on, from its metadata. */
  const intervalOf = async (record: PredictionRecord): Promise<Interval> => {
    try {
      const meta = await deps.registry.metadata(record.model, record.version);
      if (meta.forecast?.interval) return meta.forecast.interval;
    } catch {
      // The version is gone (retention) or unreadable: fall through to the grid, below.
    }
    // Forecasts are made at bar closes: an as-of off the daily grid can only be an hourly forecast. (An hourly
    // forecast made at midnight is read as daily here; it happens only once the version's metadata is gone.)
    return Date.parse(record.as_of) % INTERVAL_MS["1d"] === 0 ? "1d" : "1h";
  };

  /** Outcomes for `records` of one symbol and interval, from one market call spanning their targets. */
  const outcomesOf = async (
    symbol: string,
    interval: Interval,
    records: readonly PredictionRecord[],
    now: Date,
  ): Promise<PredictionResolution[]> => {
    const step = INTERVAL_MS[interval];
    const targets = records.map((r) => Date.parse(r.target_time));
    const first = Math.min(...targets);
    const last = Math.max(...targets);
    const bars = await deps.market.getBars(symbol, interval, {
      end: new Date(last),
      limit: Math.round((last - first) / step) + 1,
    });
    const closeAt = new Map<number, Bar>(bars.map((bar) => [bar.time + step, bar]));
    return records.flatMap((record) => {
      const bar = closeAt.get(Date.parse(record.target_time));
      if (!bar) return [];
      const actual = { price: bar.close, time: new Date(bar.time + step).toISOString() };
      return [
        {
          prediction_id: record.prediction_id,
          version: record.version,
          outcome: outcomeFor(record, actual, now),
        },
      ];
    });
  };

  /** Resolves `records` of `model` whose bar the source has: one market call per symbol and interval. */
  const resolveRecords = async (
    model: string,
    records: readonly PredictionRecord[],
    now: Date,
    intervals = new Map<string, Interval>(),
  ): Promise<number> => {
    const groups = new Map<string, PredictionRecord[]>();
    for (const record of records) {
      const version = `${record.model} ${record.version}`;
      const interval = intervals.get(version) ?? (await intervalOf(record));
      intervals.set(version, interval);
      const key = `${record.symbol} ${interval}`;
      groups.set(key, [...(groups.get(key) ?? []), record]);
    }
    let resolved = 0;
    for (const [key, group] of groups) {
      const [symbol, interval] = key.split(" ") as [string, Interval];
      const resolutions = await outcomesOf(symbol, interval, group, now);
      if (resolutions.length > 0) resolved += await deps.log.resolve(model, resolutions);
    }
    return resolved;
  };

  return {
    /**
     * Resolves these records now, if due and their bar is in the source: a replayed forecast (a past `as_of`) is
     * due at once. Rejects when the market or the log fails.
     */
    async resolveNow(model: string, records: readonly PredictionRecord[]): Promise<number> {
      const now = deps.now();
      const due = records.filter(
        (r) => Date.parse(r.target_time) <= now.getTime() && r.actual_price === undefined,
      );
      return due.length === 0 ? 0 : resolveRecords(model, due, now);
    },

    /** Resolves what is due for `model`, a bounded number of records per run. Never rejects: failures are reported. */
    async resolveModel(model: string): Promise<ResolutionRun> {
      const now = deps.now();
      let resolved = 0;
      let pending = 0;
      try {
        // Newest first through the unresolved records due by now, by cursor: a record whose bar never comes (a gap
        // in the source) cannot hold back the others, as it would at the head of an oldest-first queue.
        let cursor: string | undefined;
        const intervals = new Map<string, Interval>();
        for (let page = 0; page < MAX_PAGES; page++) {
          const { items, next_cursor } = await deps.log.list(model, {
            resolved: false,
            to: now.toISOString(),
            limit: PAGE,
            ...(cursor === undefined ? {} : { cursor }),
          });
          const resolvedHere = await resolveRecords(model, items, now, intervals);
          resolved += resolvedHere;
          pending += items.length - resolvedHere;
          if (next_cursor === undefined) break;
          cursor = next_cursor;
        }
        return { resolved, pending, checked_at: now.toISOString() };
      } catch (error) {
        return { resolved, pending, checked_at: now.toISOString(), error: errorMessage(error) };
      }
    },
  };
}

export type OutcomeResolver = ReturnType<typeof createOutcomeResolver>;
