import { consoleLogger, type Logger } from "../../logger.js";

/**
 * Keeps the Node server up when a promise rejects with no handler. Node's default (since 15) is to exit the process,
 * which turns one missed `.catch` in background work — a store write during training, a cache write after a
 * response — into an outage of every request in flight. Every such promise in this code base is observed; this is
 * the net under that rule: the rejection is logged loudly, with its stack, and the server keeps serving.
 */
export function surviveStrayRejections(logger: Pick<Logger, "error"> = consoleLogger): () => void {
  const listener = (reason: unknown) => {
    logger.error("unhandled promise rejection (a bug: please report it); the server keeps running:", reason);
  };
  process.on("unhandledRejection", listener);
  return () => process.off("unhandledRejection", listener);
}
