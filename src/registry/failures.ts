import { asEdgeMLError, EdgeMLError } from "../errors.js";
import { StoreTimeoutError } from "../storage/timeout.js";

/** What a store failure may tell a client: how it failed, never where (paths), nor what was sent (commands, URLs). */
function describeFailure(error: unknown): string {
  if (error instanceof StoreTimeoutError) return error.message.replace(/^edgeml: /, "");
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return `the file system answered ${code}`;
  return "it answered an error";
}

/** A model store failure as a 503 `model_unavailable`; a failure the API knows (EdgeMLError, StoreError) as mapped. */
export function storeUnavailable(error: unknown, store = "model store"): EdgeMLError {
  const known = asEdgeMLError(error);
  if (known) return known;
  return new EdgeMLError(
    "model_unavailable",
    `the ${store} is unreachable (${describeFailure(error)}); try again shortly`,
    { cause: error },
  );
}

/** A pointer store failure as a 503 `registry_unavailable`; a failure the API knows passes through, mapped. */
export function pointersUnavailable(error: unknown): EdgeMLError {
  const known = asEdgeMLError(error);
  if (known) return known;
  return new EdgeMLError(
    "registry_unavailable",
    `the version pointers cannot be read or written (${describeFailure(error)}); try again shortly`,
    { cause: error },
  );
}

/** A version's metadata that cannot be read: not an outage (retrying will not help), so resolution skips it. */
export class UnreadableVersionError extends EdgeMLError {
  readonly reason: string;
  constructor(key: string, reason: string) {
    super(
      "model_unavailable",
      `${key} cannot be read (${reason}); it will not serve: re-register the model, or promote another version`,
    );
    this.reason = reason;
  }
}

export const modelNotFound = (name: string) =>
  new EdgeMLError(
    "model_not_found",
    `no model named '${name}'; GET /api/ml/models lists the registered ones`,
  );

export const versionNotFound = (name: string, version: string) =>
  new EdgeMLError("version_not_found", `model '${name}' has no version ${version}`);
