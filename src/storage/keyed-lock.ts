/**
 * One async mutex per key: `run(key, work)` starts `work` once every earlier `run` of the same key has settled;
 * different keys never wait for each other. Keys are dropped when their queue drains, so the map stays as small as
 * the set of keys in use.
 *
 * Hand-written: async-mutex has no keyed variant, and the map with its clean-up is all this needs beside a chain.
 */
export function createKeyedLock() {
  const tails = new Map<string, Promise<void>>();
  return async function run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = tails.get(key) ?? Promise.resolve();
    let release = () => {};
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => done);
    tails.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

export type KeyedLock = ReturnType<typeof createKeyedLock>;
