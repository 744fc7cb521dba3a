import { EdgeMLError } from "../errors.js";
import { INTERVAL_MS, isoTime } from "../market/symbols.js";
import type { Interval } from "../market/types.js";
import type { VersionMetadata } from "../registry/metadata.js";
import { AsOfSchema, asOfInstant, asOfText } from "./as-of.js";
import { DEFAULT_HORIZON } from "./horizon.js";

/** Seconds from `asOf` (a bar's close time, ISO 8601) to `at` (ms): how old the data behind an answer is. */
export const ageSeconds = (asOf: string, at: number): number => (at - Date.parse(asOf)) / 1000;

/** Whether a live answer from data as of `asOf` is too old, at `at`, to serve as current. */
export const isStale = (asOf: string, interval: Interval, at: number, graceMs: number): boolean =>
  at - Date.parse(asOf) > INTERVAL_MS[interval] + graceMs;

/**
 * The 503 of a live request whose source's last bar is too old: names the bar, its age, and the request that asks
 * for the forecast as it was made then.
 */
export function staleError(
  marketName: string,
  meta: VersionMetadata,
  horizon: string,
  asOf: string,
  at: number,
  graceSeconds: number,
): EdgeMLError {
  const spec = meta.forecast as NonNullable<VersionMetadata["forecast"]>;
  const close = Date.parse(asOf);
  const lastBarOpen = isoTime(close - INTERVAL_MS[spec.interval]);
  const example = JSON.stringify({
    symbol: spec.symbol,
    ...(horizon !== DEFAULT_HORIZON && { horizon }),
    as_of: asOfText(close),
  });
  const age = ageSeconds(asOf, at);
  return new EdgeMLError(
    "market_data_stale",
    `the ${marketName} market data of ${spec.symbol} ends with the ${spec.interval} bar opened ${spec.interval === "1d" ? lastBarOpen.slice(0, 10) : lastBarOpen}, which closed at ${asOf} (${formatAge(age)} ago); a current forecast needs a bar closed within ${spec.interval} + ${graceSeconds} s. Update the market data, or ask for the forecast as it was made then: ${example}`,
    {
      details: {
        last_bar_close: asOf,
        data_age_seconds: age,
        max_data_age_seconds: INTERVAL_MS[spec.interval] / 1000 + graceSeconds,
      },
    },
  );
}

/**
 * A request's `as_of` as an instant (ms), checked: a date or an ISO 8601 instant with its zone, not after `at`.
 * Undefined for a live forecast. Checked here, not only by the routes: a caller of the service (CLI, scripts) gets
 * the same rule, and a zone-less instant is never read in the server's local time.
 */
export function requestedInstant(asOf: string | undefined, at: number): number | undefined {
  if (asOf === undefined) return undefined;
  const instant = AsOfSchema.safeParse(asOf).success ? asOfInstant(asOf) : Number.NaN;
  if (!Number.isFinite(instant)) {
    throw new EdgeMLError(
      "invalid_request",
      `as_of ${JSON.stringify(asOf)} is not a date (YYYY-MM-DD) or an ISO 8601 instant with its zone`,
    );
  }
  if (instant > at) {
    throw new EdgeMLError(
      "invalid_request",
      `as_of ${asOf} is in the future (now is ${isoTime(at)}): a forecast can only be asked as of an instant that has passed; leave as_of out for the current forecast`,
      { details: { as_of: asOf, now: isoTime(at) } },
    );
  }
  return instant;
}

/** An age in the largest unit that keeps it readable: "40 s", "2.5 h", "247.0 days". */
function formatAge(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7_200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172_800) return `${(seconds / 3_600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} days`;
}
