import { EdgeMLError } from "../errors.js";
import { untilTime } from "../inference/deadline-clock.js";
import { untilAborted } from "../inference/engine.js";

/**
 * When a request must have answered: an instant and a signal aborted at it. Started when the request arrives, so
 * the deadline covers version resolution (store reads) as well as loading and running the model.
 */
export interface Deadline {
  /** Epoch ms. */
  readonly at: number;
  /** The whole budget, for messages. */
  readonly ms: number;
  readonly signal: AbortSignal;
}

/**
 * A deadline kept by the shared deadline clock (src/inference/deadline-clock.ts) instead of a timer of its own: its
 * signal is made only when something asks for one, which nothing on the request path does.
 */
class ClockDeadline implements Deadline {
  #signal: AbortSignal | undefined;
  constructor(
    readonly at: number,
    readonly ms: number,
  ) {}
  get signal(): AbortSignal {
    this.#signal ??= AbortSignal.timeout(Math.max(0, this.at - Date.now()));
    return this.#signal;
  }
}

/** A deadline `ms` from now. */
export function deadlineIn(ms: number): Deadline {
  return new ClockDeadline(Date.now() + ms, ms);
}

/** The instant a deadline made by `deadlineIn` passes, for the shared clock; undefined for one with its own signal. */
export const clockedAt = (deadline: Deadline): number | undefined =>
  deadline instanceof ClockDeadline ? deadline.at : undefined;

/**
 * How the engine is told a deadline: a `deadlineIn` one as its instant, kept by the shared clock (no signal is made
 * for it); any other (a caller's own signal) by that signal.
 */
export const engineBound = (deadline: Deadline): { deadlineAt: number } | { signal: AbortSignal } => {
  const at = clockedAt(deadline);
  return at !== undefined ? { deadlineAt: at } : { signal: deadline.signal };
};

export const deadlinePassed = (what: string, deadline: Deadline) =>
  new EdgeMLError("prediction_timeout", `${what} did not finish within ${deadline.ms} ms; try again`);

/**
 * Settles with `work`, or rejects with a 504 `prediction_timeout` when the deadline's signal aborts first. The work
 * is left to finish on its own (store calls have timeouts of their own); its late failure is observed, not leaked.
 */
export function withinDeadline<T>(
  work: Promise<T>,
  deadline: Deadline | undefined,
  what: string,
): Promise<T> {
  if (!deadline) return work;
  const at = clockedAt(deadline);
  if (at !== undefined) return untilTime(work, at, () => deadlinePassed(what, deadline));
  return untilAborted(work, deadline.signal, () => deadlinePassed(what, deadline));
}
