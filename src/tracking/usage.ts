import { outageReporter } from "../logger.js";
import type { Counters } from "../storage/counters.js";

/** What is counted per model version. */
export const USAGE_EVENTS = [
  /** OIP infer requests answered with outputs. */
  "inferences",
  /** Rows (first input dimension) those requests carried. */
  "rows",
  /** Forecasts answered, cached or not. */
  "forecasts",
  "cache_hit",
  "cache_miss",
  "cache_bypass",
] as const;
export type UsageEvent = (typeof USAGE_EVENTS)[number];
export type Usage = Record<UsageEvent, number>;

const key = (model: string, version: string, event: UsageEvent) => `usage:${model}@${version}:${event}`;

/**
 * Usage per model version, counted off the response path: each record is handed to `defer` (the edge's
 * `waitUntil`), and a counter store that fails is warned about, never surfaced to the client.
 */
export function createUsageTracker(deps: {
  counters: Counters;
  defer: (work: Promise<unknown>) => void;
  warn: (message: string, error: unknown) => void;
}) {
  // Counting is best effort and runs on every request: one warning per outage, not per request.
  const writes = outageReporter(deps.warn, "usage counters (writes)");
  const succeeded = () => writes.succeeded();
  const failed = (error: unknown) => writes.failed(error);
  return {
    record(model: string, version: string, events: Partial<Usage>): void {
      // A plain loop, not entries/filter/map: this runs on every request.
      const amounts: Record<string, number> = {};
      for (const event in events) {
        const by = events[event as UsageEvent];
        if (by) amounts[key(model, version, event as UsageEvent)] = by;
      }
      deps.defer(deps.counters.increment(amounts).then(succeeded, failed));
    },
    /** Usage of each version; all zeros when the counter store cannot be read (say so in `available`). */
    async read(
      model: string,
      versions: readonly string[],
    ): Promise<{ available: boolean; versions: Record<string, Usage> }> {
      const keys = versions.flatMap((v) => USAGE_EVENTS.map((e) => key(model, v, e)));
      let values: Record<string, number> = {};
      let available = true;
      try {
        values = await deps.counters.read(keys);
      } catch (error) {
        available = false;
        deps.warn(`could not read usage of ${model}`, error);
      }
      return {
        available,
        versions: Object.fromEntries(
          versions.map((v) => [
            v,
            Object.fromEntries(USAGE_EVENTS.map((e) => [e, values[key(model, v, e)] ?? 0])) as Usage,
          ]),
        ),
      };
    },
  };
}

export type UsageTracker = ReturnType<typeof createUsageTracker>;
