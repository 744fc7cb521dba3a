import type { Percentiles } from "../performance/service.js";

/**
 * Upper bounds (seconds) of every latency histogram: 100 µs (a warm tree-ensemble run is ~20 µs, a request through
 * the worker ~0.4 ms) to 30 s (the inference deadline). Fixed, because buckets are counters in a shared store:
 * instances with different bounds could not be added up.
 */
export const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;

/** The `le` label of the bucket an observation falls in: its smallest bound at or above it, or +Inf. */
export function bucketOf(seconds: number): string {
  return BUCKET_LABELS[bucketIndex(seconds)] as string;
}

/** The `le` labels in bucket order, +Inf last. */
export const BUCKET_LABELS: readonly string[] = [...LATENCY_BUCKETS_SECONDS.map(String), "+Inf"];

/** The index in BUCKET_LABELS of the bucket an observation falls in. */
export function bucketIndex(seconds: number): number {
  let i = 0;
  while (i < LATENCY_BUCKETS_SECONDS.length && !(seconds <= (LATENCY_BUCKETS_SECONDS[i] as number))) i++;
  return i;
}

/** A histogram as read back: per-bucket counts (not cumulative, as stored), count and sum. */
export interface HistogramCounts {
  /** Observations per bucket, by `le` ("+Inf" included), each counted in its own bucket only. */
  buckets: Record<string, number>;
  count: number;
  sumSeconds: number;
}

/** Cumulative buckets in Prometheus' sense (each `le` counts every observation at or below it), +Inf last. */
export function cumulative(h: HistogramCounts): { le: string; count: number }[] {
  let running = 0;
  return [...LATENCY_BUCKETS_SECONDS.map(String), "+Inf"].map((le) => {
    running += h.buckets[le] ?? 0;
    return { le, count: running };
  });
}

/**
 * The q-quantile (0..1) estimated from the buckets the way Prometheus' `histogram_quantile` does: find the bucket
 * holding rank q·count and interpolate linearly inside it (from 0 for the first bucket); a rank in the +Inf bucket
 * answers the highest finite bound. An estimate: the true value lies somewhere in that bucket's bounds.
 */
export function quantile(h: HistogramCounts, q: number): number {
  const buckets = cumulative(h);
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of buckets) {
    if (count >= rank && count > 0) {
      if (le === "+Inf") return lower;
      const upper = Number(le);
      const inBucket = count - below;
      return inBucket === 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
    }
    if (le !== "+Inf") lower = Number(le);
    below = count;
  }
  return lower;
}

/** p50/p90/p99 in milliseconds (estimated from the buckets), or null for a histogram with no observation. */
export function percentilesMs(h: HistogramCounts): Percentiles | null {
  if (h.count === 0) return null;
  const ms = (q: number) => Math.round(quantile(h, q) * 1e6) / 1e3;
  return { count: h.count, p50: ms(0.5), p90: ms(0.9), p99: ms(0.99) };
}
