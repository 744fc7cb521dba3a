import { withTimeout } from "../storage/timeout.js";
import { type UpstashAdapterOptions, upstashSettings } from "../storage/upstash-cache.js";
import type { MetricsStore } from "./store.js";

/** All the metrics store needs from `@upstash/redis`'s `Redis`: one pipeline per write, SMEMBERS and MGET to read. */
export interface UpstashMetricsRedisLike {
  pipeline(): {
    incrby(key: string, by: number): unknown;
    set(key: string, value: number): unknown;
    sadd(key: string, ...members: [string, ...string[]]): unknown;
    exec(): Promise<unknown[]>;
  };
  smembers(key: string): Promise<string[]>;
  mget<T extends unknown[]>(...keys: string[]): Promise<T>;
}

/** Keys per MGET: one request carries a few hundred kilobytes at most, far below Upstash's request size limit. */
const READ_CHUNK = 1_000;

/**
 * Series on Upstash Redis: each value at `<prefix>metrics:<series>`, and the set of series names at
 * `<prefix>metrics:index`. A write is one pipelined request however many series it touches (INCRBY, SET and one
 * SADD of their names); a read is one SMEMBERS and an MGET per thousand series. Fails fast like the other Upstash
 * adapters: telemetry is a side effect, never worth a stalled request.
 */
export function createUpstashMetricsStore(
  redis: UpstashMetricsRedisLike,
  options: UpstashAdapterOptions = {},
): MetricsStore {
  const { prefix, timeoutMs } = upstashSettings(options, "metrics");
  const index = `${prefix}index`;
  const valueKey = (series: string) => `${prefix}v:${series}`;
  return {
    kind: "upstash",
    async write({ add, set = {} }) {
      const names = [...Object.keys(add), ...Object.keys(set)];
      const [first, ...rest] = names;
      if (first === undefined) return;
      const pipeline = redis.pipeline();
      for (const [series, by] of Object.entries(add)) pipeline.incrby(valueKey(series), Math.trunc(by));
      for (const [series, value] of Object.entries(set)) pipeline.set(valueKey(series), Math.trunc(value));
      pipeline.sadd(index, first, ...rest);
      await withTimeout(pipeline.exec(), timeoutMs, "Upstash Redis (metrics write)");
    },
    async readAll() {
      const names = await withTimeout(redis.smembers(index), timeoutMs, "Upstash Redis (metrics index)");
      const values: Record<string, number> = {};
      for (let i = 0; i < names.length; i += READ_CHUNK) {
        const chunk = names.slice(i, i + READ_CHUNK);
        const read = await withTimeout(
          redis.mget<(number | string | null)[]>(...chunk.map(valueKey)),
          timeoutMs,
          "Upstash Redis (metrics read)",
        );
        chunk.forEach((name, j) => {
          values[name] = Number(read[j] ?? 0);
        });
      }
      return values;
    },
  };
}
