import { outageReporter } from "../logger.js";
import { BUCKET_LABELS, bucketIndex } from "./histogram.js";
import { type Labels, seriesKey } from "./series.js";
import type { MetricsBatch, MetricsStore } from "./store.js";

/** What one record adds (and sets) in the store. */
export type TelemetryRecord = { add?: Record<string, number>; set?: Record<string, number> };

/**
 * How long records gather before they are written: at a few thousand requests a second, tens of requests share one
 * write (one store pipeline on Upstash) instead of one each. Short enough that an edge function's waitUntil or a
 * stopping server barely waits for it; readers of this instance's figures flush first (createTelemetry).
 */
const BATCH_WINDOW_MS = 10;

/**
 * One observation of a histogram: its bucket and the sum (µs: the store keeps integers). No count series: the count
 * is the buckets' total, so the exposition's `+Inf` bucket and `_count` agree even when a read lands between two
 * commands of another instance's pipeline.
 */
export function histogram(metric: string, labels: Labels, seconds: number): Record<string, number> {
  // Keys by labels object: the recorders pass the same object for the same labels (a route's, a listed version's),
  // so a request costs a lookup, not building and encoding keys; labels objects are never changed once made.
  let byMetric = histogramKeys.get(labels);
  if (!byMetric) {
    byMetric = new Map();
    histogramKeys.set(labels, byMetric);
  }
  let keys = byMetric.get(metric);
  if (!keys) {
    keys = { buckets: [], sum: seriesKey(`${metric}_sum_us`, labels) };
    byMetric.set(metric, keys);
  }
  const i = bucketIndex(seconds);
  let bucket = keys.buckets[i];
  if (bucket === undefined) {
    bucket = seriesKey(`${metric}_bucket`, { ...labels, le: BUCKET_LABELS[i] as string });
    keys.buckets[i] = bucket;
  }
  return { [bucket]: 1, [keys.sum]: Math.round(seconds * 1e6) };
}

const histogramKeys = new WeakMap<Labels, Map<string, { buckets: string[]; sum: string }>>();

/**
 * The write side of the telemetry. Each record runs off the response path (handed to `defer`, the edge's
 * waitUntil) and is merged into the next write; writes are coalesced, one in flight at a time per instance, the next
 * carrying everything recorded meanwhile. A failed write is dropped, never retried (a pipeline that partly applied
 * would count twice), and warned about once per outage.
 */
export function createWriter(deps: {
  store: MetricsStore;
  defer: (work: Promise<unknown>) => void;
  warn: (message: string, error: unknown) => void;
}) {
  const { store } = deps;
  const writes = outageReporter(
    deps.warn,
    `metrics store (${store.kind}, writes)`,
    "requests are not counted",
  );
  const inflight = new Set<Promise<void>>();
  let add = new Map<string, number>();
  let set = new Map<string, number>();
  let queued: Promise<void> | null = null;
  let last: Promise<void> = Promise.resolve();
  /** Starts the queued write now instead of at the end of its batching window (flush). */
  let startNow: (() => void) | undefined;
  /** Flushes waiting: writes scheduled meanwhile start at once. */
  let flushing = 0;

  /**
   * Writes what has accumulated, after the write in flight and at most BATCH_WINDOW_MS after the first record: the
   * next write takes everything recorded until it starts, so a busy instance writes one batch per window instead of
   * one per request. flush() starts it at once.
   */
  const scheduleWrite = (): Promise<void> => {
    if (queued) return queued;
    const window =
      flushing > 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, BATCH_WINDOW_MS);
            startNow = () => {
              clearTimeout(timer);
              resolve();
            };
          });
    const next = Promise.all([last, window]).then(async () => {
      queued = null;
      startNow = undefined;
      const batch: MetricsBatch = { add: Object.fromEntries(add), set: Object.fromEntries(set) };
      add = new Map();
      set = new Map();
      if (Object.keys(batch.add).length === 0 && Object.keys(batch.set ?? {}).length === 0) return;
      try {
        await store.write(batch);
        writes.succeeded();
      } catch (error) {
        writes.failed(error);
      }
    });
    queued = next;
    last = next;
    return next;
  };

  const merge = (batch: TelemetryRecord) => {
    for (const k in batch.add) add.set(k, (add.get(k) ?? 0) + (batch.add[k] as number));
    for (const k in batch.set) set.set(k, Math.max(set.get(k) ?? 0, batch.set[k] as number));
  };

  return {
    /**
     * Merges what `record` returns into the next write, off the response path. A record known at once (its labels
     * memoised) is merged now, and costs the request no promise of its own: the write it joins is handed to `defer`
     * once, by the first record that schedules it.
     */
    track(record: () => TelemetryRecord | Promise<TelemetryRecord>): void {
      let made: TelemetryRecord | Promise<TelemetryRecord>;
      try {
        made = record();
      } catch (error) {
        writes.failed(error);
        return;
      }
      if (!(made instanceof Promise)) {
        merge(made);
        if (!queued) deps.defer(scheduleWrite());
        return;
      }
      const work = made.then(
        (batch) => {
          merge(batch);
          return scheduleWrite();
        },
        // Labelling reads only the registry's cached listing; a failure there drops one record, loudly.
        (error: unknown) => writes.failed(error),
      );
      inflight.add(work);
      void work.finally(() => inflight.delete(work));
      deps.defer(work);
    },
    /** Resolves once every record made so far is written (or dropped). */
    async flush(): Promise<void> {
      flushing += 1;
      try {
        startNow?.();
        while (inflight.size > 0) await Promise.all([...inflight]);
        await last;
      } finally {
        flushing -= 1;
      }
    },
  };
}

export type Track = ReturnType<typeof createWriter>["track"];
