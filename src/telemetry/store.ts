/**
 * The metrics store: what telemetry needs from a store of integers shared by every instance. Per-isolate counters
 * mean nothing on the edge (each request may land on a fresh isolate), so every series is added into one store and
 * the exposition reads the aggregate. Adapters: process memory (embedded default) and Upstash Redis (production).
 *
 * Unlike the usage `Counters`, the store keeps an index of the series it has seen: the exposition lists every series
 * without knowing label values in advance. Keys are opaque strings; label bounding is the recorder's job.
 */
export interface MetricsStore {
  readonly kind: string;
  /** Adds each amount to its series (created at 0) and sets each gauge (the last write wins). */
  write(batch: MetricsBatch): Promise<void>;
  /** Every series ever written, with its value. */
  readAll(): Promise<Record<string, number>>;
}

export interface MetricsBatch {
  add: Readonly<Record<string, number>>;
  set?: Readonly<Record<string, number>>;
}

/** Series in process memory: per instance, gone on restart (the Node server without Upstash). */
export function createMemoryMetricsStore(): MetricsStore {
  const values = new Map<string, number>();
  return {
    kind: "memory",
    async write({ add, set = {} }) {
      for (const [key, by] of Object.entries(add)) values.set(key, (values.get(key) ?? 0) + Math.trunc(by));
      for (const [key, value] of Object.entries(set)) values.set(key, Math.trunc(value));
    },
    async readAll() {
      return Object.fromEntries(values);
    },
  };
}
