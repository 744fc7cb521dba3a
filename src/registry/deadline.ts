import { EdgeMLError } from "../errors.js";
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

/** A deadline `ms` from now. */
export function deadlineIn(ms: number): Deadline {
  return { at: Date.now() + ms, ms, signal: AbortSignal.timeout(ms) };
}

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
  return untilAborted(work, deadline.signal, () => deadlinePassed(what, deadline));
}
