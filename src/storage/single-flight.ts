import { createAsyncCache } from "../cache/async-cache.js";

/**
 * Single flight: concurrent calls with one key share one run of the work, and its outcome (value or error). Adapters:
 * this process (the default everywhere) and the primary of a multi-process `npm start`, which makes the workers'
 * concurrent misses of one forecast one run, one `prediction_id` and one prediction-log record
 * (src/storage/node/ipc-adapters.ts). Values cross processes as JSON, as the prediction cache's do.
 */
export interface SingleFlight {
  readonly kind: string;
  /** Runs `work` unless a run of `key` is in flight (here or, for a shared adapter, anywhere): then waits for that one's outcome. */
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
}

/** Single flight within this process: nothing is kept once a run settles. */
export function createLocalSingleFlight(): SingleFlight {
  const flights = createAsyncCache<string, { value: unknown }, () => Promise<{ value: unknown }>>({
    policy: { kind: "singleFlight" },
    load: (_key, work) => work(),
  });
  return {
    kind: "memory",
    async run<T>(key: string, work: () => Promise<T>): Promise<T> {
      // Boxed: the async cache cannot hold undefined, which a run may answer.
      const boxed = await flights.get(key, async () => ({ value: await work() }));
      return boxed.value as T;
    },
  };
}

/**
 * A lock around work: one run at a time, the others wait in arrival order. `npm start` with several workers holds
 * its training lock in the primary (one training job at a time on the whole server, src/storage/node/ipc-adapters.ts).
 */
export interface Mutex {
  readonly kind: string;
  run<T>(work: () => Promise<T>): Promise<T>;
}
