import type { Counters } from "./counters.js";
import { withTimeout } from "./timeout.js";
import { type UpstashAdapterOptions, upstashSettings } from "./upstash-cache.js";

/** All the counters need from `@upstash/redis`'s `Redis`: a pipeline of INCRBY and one MGET. */
export interface UpstashCountersRedisLike {
  pipeline(): { incrby(key: string, by: number): unknown; exec(): Promise<unknown[]> };
  mget<T extends unknown[]>(...keys: string[]): Promise<T>;
}

/**
 * Counters on Upstash Redis (`<prefix>counter:<key>`): one request per `increment`, however many counters it
 * touches (a pipeline of INCRBY), and one MGET per `read`. Fails fast like the cache: counting is a side effect,
 * never worth a stalled request.
 */
export function createUpstashCounters(
  redis: UpstashCountersRedisLike,
  options: UpstashAdapterOptions = {},
): Counters {
  const { prefix, timeoutMs } = upstashSettings(options, "counter");
  return {
    kind: "upstash",
    async increment(amounts) {
      const entries = Object.entries(amounts);
      if (entries.length === 0) return;
      const pipeline = redis.pipeline();
      for (const [key, by] of entries) pipeline.incrby(prefix + key, Math.trunc(by));
      await withTimeout(pipeline.exec(), timeoutMs, "Upstash Redis (counters)");
    },
    async read(keys) {
      if (keys.length === 0) return {};
      const values = await withTimeout(
        redis.mget<(number | string | null)[]>(...keys.map((k) => prefix + k)),
        timeoutMs,
        "Upstash Redis (counters read)",
      );
      return Object.fromEntries(keys.map((key, i) => [key, Number(values[i] ?? 0)]));
    },
  };
}
