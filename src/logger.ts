import { errorMessage } from "./errors.js";

/**
 * The one logger every part of the server reports through: built by the runtime's wiring and passed down, so that a
 * test can silence or capture it and a platform can route it. `error` is for failures someone must look at (a 500,
 * background work that failed), `warn` for degradations the server absorbed (a cache or counter outage), `info` for
 * what the operator reads at start (the banner, a cron run's outcome).
 */
export interface Logger {
  info(message: string): void;
  warn(message: string, error?: unknown): void;
  error(message: string, error?: unknown): void;
}

const reason = (error: unknown) => errorMessage(error);

/**
 * The default: the platform's console (Vercel and Cloudflare collect it as the function's logs). Warnings carry only
 * the error's message (they are expected and frequent in an outage); errors carry the whole error with its stack.
 * This is the only module in src/ that writes to the console as logging.
 */
export const consoleLogger: Logger = {
  // Printed as given: start-up banners lay out their own lines.
  info: (message) => console.log(message),
  warn: (message, error) =>
    error === undefined
      ? console.warn(`edgeml: ${message}`)
      : console.warn(`edgeml: ${message}: ${reason(error)}`),
  error: (message, error) =>
    error === undefined ? console.error(`edgeml: ${message}`) : console.error(`edgeml: ${message}`, error),
};

/** Drops everything: tests that provoke failures on purpose, and the in-process CLI (its output is its stdout). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * One warning per outage of a dependency instead of one per request: in a Redis outage under load, a warning per
 * failed call is thousands of lines a second that hide everything else. The first failure is logged with its
 * reason; the rest are counted until a call succeeds, which logs the recovery with the count.
 */
export function outageReporter(warn: Logger["warn"], what: string, meanwhile?: string) {
  let failures = 0;
  return {
    failed(error: unknown): void {
      failures += 1;
      if (failures === 1) {
        const doing = meanwhile ? `; ${meanwhile}` : "";
        warn(`${what} unavailable${doing}; further failures are counted until it recovers`, error);
      }
    },
    succeeded(): void {
      if (failures === 0) return;
      warn(`${what} recovered after ${failures} failed call(s)`);
      failures = 0;
    },
  };
}
