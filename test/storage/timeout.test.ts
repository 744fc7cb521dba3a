import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreTimeoutError, withTimeout } from "../../src/storage/timeout.js";

/** A promise settled by hand, so no test here waits on the clock for the store's side of the race. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets Node run its unhandled-rejection check (it runs after microtasks, before the next timer). */
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("withTimeout(work, ms): a store call bounded in time", () => {
  const strays: unknown[] = [];
  const onStray = (reason: unknown) => strays.push(reason);
  beforeEach(() => {
    strays.length = 0;
    process.on("unhandledRejection", onStray);
  });
  afterEach(() => {
    process.off("unhandledRejection", onStray);
  });

  it("answers with the work when it settles first", async () => {
    await expect(withTimeout(Promise.resolve(42), 60_000, "store")).resolves.toBe(42);
    await expect(withTimeout(Promise.reject(new Error("down")), 60_000, "store")).rejects.toThrow("down");
  });

  it("a frozen store: rejects with StoreTimeoutError and aborts the work's signal", async () => {
    let signal: AbortSignal | undefined;
    const never = (s: AbortSignal) => {
      signal = s;
      return new Promise<never>(() => {});
    };
    const error = await withTimeout(never, 1, "Upstash Redis (cache get)").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreTimeoutError);
    expect((error as Error).message).toBe("edgeml: Upstash Redis (cache get) did not answer within 1 ms");
    expect(signal?.aborted).toBe(true);
  });

  it("the losing work rejecting after the timeout answered is observed: never an unhandled rejection", async () => {
    const work = deferred<never>();
    await expect(withTimeout(work.promise, 1, "Upstash Redis (job put)")).rejects.toBeInstanceOf(
      StoreTimeoutError,
    );
    work.reject(new Error("Upstash answered 500 after all"));
    await nextTurn();
    expect(strays).toEqual([]);
  });
});
