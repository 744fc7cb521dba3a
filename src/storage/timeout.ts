/** A remote store that has not answered in time: thrown by `withTimeout`, treated by callers like any outage. */
export class StoreTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`edgeml: ${what} did not answer within ${ms} ms`);
    this.name = "StoreTimeoutError";
  }
}

/**
 * Settles with `work`, or rejects with a StoreTimeoutError after `ms`, aborting `controller` (if given) so the
 * request underneath stops too. A frozen server must cost a caller a bounded wait, never a hang.
 */
export async function withTimeout<T>(
  work: Promise<T> | ((signal: AbortSignal) => Promise<T>),
  ms: number,
  what: string,
): Promise<T> {
  const controller = new AbortController();
  const running = typeof work === "function" ? work(controller.signal) : work;
  // Observed from the start: when the deadline wins, `work` may still reject later (aborted, or the store answered
  // an error after all), and nobody awaits it any more. Unobserved, that rejection would end a Node process.
  running.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new StoreTimeoutError(what, ms);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
