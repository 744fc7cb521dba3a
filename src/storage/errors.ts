/**
 * How a store failed, in the store's terms; the API maps each to its code once (asEdgeMLError in src/errors.ts):
 * - `unavailable`: the store did not answer, or answered a server error: the same call may succeed shortly (503);
 * - `refused`: the store answered and refused the call (a token without write access, a suspended or deleted
 *   store): retrying will not help until its configuration is fixed, and the message says what to fix (503);
 * - `read_only`: this deployment's store takes no writes (403).
 */
export type StoreFailure = "unavailable" | "refused" | "read_only";

/**
 * A failure of a storage adapter (Vercel Blob, Edge Config, Upstash Redis). `store` names the service; the message
 * is safe for a client to read (no URLs, tokens or commands) and says what to do.
 */
export class StoreError extends Error {
  readonly store: string;
  readonly failure: StoreFailure;

  constructor(store: string, failure: StoreFailure, message: string, options: { cause?: unknown } = {}) {
    super(`edgeml: ${message}`, { cause: options.cause });
    this.name = "StoreError";
    this.store = store;
    this.failure = failure;
  }
}
