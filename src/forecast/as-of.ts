import { z } from "zod";
import { INTERVAL_MS } from "../market/symbols.js";
import type { Interval } from "../market/types.js";

/**
 * A requested `as_of` as a client writes it: a date (`2026-03-20`, meaning 00:00Z that day) or an ISO 8601 instant
 * with its zone (`2026-03-20T12:34:56Z`, `…+02:00`, minutes or seconds). An instant without a zone is refused: which
 * bar it means would depend on the server's time zone.
 */
export const AsOfSchema = z
  .union([z.iso.date(), z.iso.datetime({ offset: true }), z.iso.datetime({ offset: true, precision: -1 })])
  .describe(
    "Forecast as it would have been made at this instant (logged as replay): a date (YYYY-MM-DD, 00:00 UTC) or an ISO 8601 instant with its zone, floored to the last bar closed by then",
  );

/** The instant an `as_of` text names, in ms since epoch UTC (a date is its 00:00Z). */
export function asOfInstant(text: string): number {
  return Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
}

/**
 * The close time of the last bar closed by `instant`: bars sit on the interval's UTC grid, so it is the instant
 * rounded down to the grid. A forecast's `as_of` is always such a close time.
 */
export const lastCloseBy = (instant: number, interval: Interval): number =>
  Math.floor(instant / INTERVAL_MS[interval]) * INTERVAL_MS[interval];

/**
 * How to write a bar's close time back as a request's `as_of`: the date alone when it is midnight UTC (the daily
 * grid), else the full instant.
 */
export function asOfText(closeMs: number): string {
  const iso = new Date(closeMs).toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : iso;
}
