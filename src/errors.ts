import type { ContentfulStatusCode } from "hono/utils/http-status";

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
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  golden_mismatch: 422,
  inference_failed: 422,
  no_model: 503,
  model_unavailable: 503,
  market_data_unavailable: 503,
  not_ready: 503,
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
