/**
 * One shared timer for every request's deadline. A request used to arm its own 30 s timer (an
 * `AbortSignal.timeout`, or a `setTimeout` raced against the work) and drop it microseconds later: under load that
 * was a timer, a signal and a listener made and torn down per request. Here a request adds a waiter to a set, and
 * one timer, armed for the earliest deadline, wakes up, refuses the waiters whose time has passed and re-arms for
 * the next. A waiter that settles first just leaves the set; the timer is not re-armed for it (under steady load
 * it is armed about once per deadline length, not once per request).
 *
 * Hand-written: a timer wheel library would bring more than this needs (one set, one timer).
 */

interface Waiter {
  readonly at: number;
  readonly expire: () => void;
}

const waiters = new Set<Waiter>();
let timer: ReturnType<typeof setTimeout> | undefined;
let armedAt = Number.POSITIVE_INFINITY;
/**
 * The `setTimeout` the timer was armed with: a test that swaps the clock (vitest's fake timers) leaves a timer that
 * will never fire behind, and the next deadline must arm a live one instead of trusting it.
 */
let armedWith: typeof setTimeout | undefined;

function arm(at: number): void {
  if (at >= armedAt && armedWith === globalThis.setTimeout) return;
  if (timer !== undefined && armedWith === globalThis.setTimeout) clearTimeout(timer);
  armedAt = at;
  armedWith = globalThis.setTimeout;
  timer = setTimeout(tick, Math.max(1, at - Date.now()));
  // A timer armed for a deadline whose request already answered must not keep a process (a CLI, a test) alive.
  (timer as { unref?: () => void }).unref?.();
}

function tick(): void {
  timer = undefined;
  armedAt = Number.POSITIVE_INFINITY;
  const now = Date.now();
  let next = Number.POSITIVE_INFINITY;
  for (const waiter of waiters) {
    if (waiter.at <= now) {
      waiters.delete(waiter);
      waiter.expire();
    } else if (waiter.at < next) next = waiter.at;
  }
  if (next !== Number.POSITIVE_INFINITY) arm(next);
}

/** Waiters not yet settled (for tests: a settled run leaves none behind). */
export const pendingDeadlines = (): number => waiters.size;

/**
 * Settles with `work`, or rejects with `reason()` once the epoch-ms instant `at` has passed first. `work` is left
 * to finish on its own; its late failure is observed.
 */
export function untilTime<T>(work: Promise<T>, at: number, reason: () => Error): Promise<T> {
  work.catch(() => {});
  if (Date.now() >= at) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const waiter: Waiter = { at, expire: () => reject(reason()) };
    waiters.add(waiter);
    arm(at);
    work.then(
      (value) => {
        waiters.delete(waiter);
        resolve(value);
      },
      (error: unknown) => {
        waiters.delete(waiter);
        reject(error);
      },
    );
  });
}
