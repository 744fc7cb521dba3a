import type { ContentfulStatusCode } from "hono/utils/http-status";
import { FeatureError } from "./features/index.js";
import { StoreError, type StoreFailure } from "./storage/errors.js";
import { TrainingError, type TrainingErrorKind } from "./training/errors.js";

/**
 * Stable machine codes of every failure the API reports. Clients branch on these; never rename one.
 * The HTTP status is part of the contract too, so it lives beside the code.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_tensor: 400,
  invalid_onnx: 400,
  model_load_failed: 400,
  unsupported_horizon: 400,
  unknown_symbol: 400,
  unauthorized: 401,
  forbidden: 403,
  admin_disabled: 403,
  model_not_found: 404,
  version_not_found: 404,
  not_found: 404,
  /** `POST /api/ml/performance/track` named a prediction id the log does not hold for that model. */
  prediction_not_found: 404,
  /** A rollout route (`…/rollout`) for a model with no rollout running: start one with POST …/rollout. */
  no_rollout: 404,
  conflict: 409,
  /** A version retention archived: listed, restorable, never served until restored. */
  version_archived: 410,
  payload_too_large: 413,
  output_too_large: 413,
  unsupported_media_type: 415,
  golden_mismatch: 422,
  inference_failed: 422,
  rate_limited: 429,
  no_model: 503,
  model_unavailable: 503,
  registry_unavailable: 503,
  market_data_unavailable: 503,
  /**
   * A current forecast was asked and the source's last bar closed more than one interval plus the grace ago: the
   * answer would pass old data off as current. A forecast as of an earlier instant (`as_of`) is still served.
   */
  market_data_stale: 503,
  not_ready: 503,
  /** GET /metrics with neither METRICS_TOKEN nor ADMIN_TOKEN configured: the server has no way to let a scraper in. */
  metrics_disabled: 503,
  /** A store (Blob, Edge Config, Upstash) refused or failed an operation: the request may succeed once it is back. */
  store_unavailable: 503,
  /** This deployment has no trainer wired (the edge): training runs in the Node function or locally. */
  training_unavailable: 501,
  /** This deployment has no statistics for rollout decisions (the edge): they run where training runs. */
  evaluation_unavailable: 501,
  prediction_timeout: 504,
  internal: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * The one error type of the API: a stable `code`, a message that tells the user what to do next, and optional
 * structured `details` (validation issues, the mismatching golden row, ...). Thrown anywhere below the routes;
 * the app's error handler turns it into `{ error, code, details? }` with the code's status.
 */
export class EdgeMLError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(`edgeml: ${message}`, { cause: options.cause });
    this.name = "EdgeMLError";
    this.code = code;
    this.details = options.details;
  }

  get status(): ContentfulStatusCode {
    return ERROR_STATUS[this.code];
  }
}

export function isEdgeMLError(error: unknown): error is EdgeMLError {
  return error instanceof EdgeMLError;
}

// Source files with line numbers (onnxruntime's build paths, stack frames): never useful to a client.
const SOURCE_PATH =
  /(?:file:\/\/)?(?:[A-Za-z]:)?(?:[\\/][\w.@+-]+)+\.(?:h|hpp|cc|cpp|c|js|mjs|cjs|ts|json|onnx|wasm)\b(?::\d+)*/g;
// Any absolute path of two or more segments: where files live on the server is not the client's business.
const ABSOLUTE_PATH = /(?<![\w:/])(?:[A-Za-z]:)?[\\/](?:[\w.@+-]+[\\/])+[\w.@+-]*/g;
// @upstash/redis appends the command it sent (keys, values) to its errors.
const REDIS_COMMAND = /,? *command was: .*$/s;
// URLs can carry tokens in their query (Edge Config's `?token=`): keep the origin only.
const URL_QUERY = /\b(https?:\/\/[^\s/?#]+)[^\s]*/g;

/**
 * What a client may read of an error message. 5xx messages lose file paths, store commands and URLs' paths and
 * queries (they describe the server, not the request); every message loses source-file paths such as the
 * onnxruntime build paths inside its error texts.
 */
export function redactInternals(message: string, status: number): string {
  if (status < 500) return message.replace(SOURCE_PATH, "<source>");
  return message
    .replace(REDIS_COMMAND, "")
    .replace(URL_QUERY, "$1")
    .replace(SOURCE_PATH, "<source>")
    .replace(ABSOLUTE_PATH, "<path>");
}

/** The API's code for each failure the libraries report in their own terms: mapped here, once. */
const CODE_OF_LIBRARY_ERROR: Record<TrainingErrorKind | FeatureError["kind"], ErrorCode> = {
  invalid_parameters: "invalid_request",
  insufficient_data: "market_data_unavailable",
  invalid_data: "market_data_unavailable",
  export_mismatch: "internal",
  insufficient_history: "market_data_unavailable",
  invalid_horizon: "invalid_request",
};

/** The API's code for each way a storage adapter fails (src/storage/errors.ts). */
const CODE_OF_STORE_FAILURE: Record<StoreFailure, ErrorCode> = {
  unavailable: "store_unavailable",
  refused: "store_unavailable",
  read_only: "forbidden",
};

/**
 * The API error of any failure it knows: an EdgeMLError as it is, a library's typed error (training, features) or a
 * storage adapter's (StoreError) mapped to its code. Undefined for anything else (a bug or an unexpected failure:
 * 500, logged).
 */
export function asEdgeMLError(error: unknown): EdgeMLError | undefined {
  if (error instanceof EdgeMLError) return error;
  if (error instanceof StoreError) {
    return new EdgeMLError(CODE_OF_STORE_FAILURE[error.failure], error.message.replace(/^edgeml: /, ""), {
      cause: error,
    });
  }
  if (error instanceof TrainingError || error instanceof FeatureError) {
    return new EdgeMLError(CODE_OF_LIBRARY_ERROR[error.kind], error.message, {
      cause: error,
      ...(error instanceof TrainingError && error.details !== undefined && { details: error.details }),
    });
  }
  return undefined;
}

/** The message of anything thrown: an Error's message, else the value as text (a rejection need not be an Error). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
