/**
 * Usage counters: all the tracking of served predictions needs from a store of integers. Adapters: process memory
 * (embedded default) and Upstash Redis (production, shared by every instance). Keys are opaque strings.
 */
export interface Counters {
  readonly kind: string;
  /** Adds each amount to its counter (creating it at 0). */
  increment(amounts: Readonly<Record<string, number>>): Promise<void>;
  /** Current values; a counter never incremented reads 0. */
  read(keys: readonly string[]): Promise<Record<string, number>>;
}

/** Counters in process memory: per instance, gone on restart. */
export function createMemoryCounters(): Counters {
  const values = new Map<string, number>();
  return {
    kind: "memory",
    async increment(amounts) {
      for (const [key, by] of Object.entries(amounts)) values.set(key, (values.get(key) ?? 0) + by);
    },
    async read(keys) {
      return Object.fromEntries(keys.map((key) => [key, values.get(key) ?? 0]));
    },
  };
}
