/**
 * Why training could not go on. The library says what went wrong in its own terms; the API maps each kind to a
 * status and code once (`asEdgeMLError` in src/errors.ts), so the trainer knows nothing of HTTP.
 */
export type TrainingErrorKind =
  /** A parameter, family, seed or split setting that cannot work: the caller's to fix. */
  | "invalid_parameters"
  /** Too few bars or rows for the horizon and history asked for. */
  | "insufficient_data"
  /** Bars that cannot be trained on: gaps, non-positive prices, non-finite values. */
  | "invalid_data"
  /** The exported ONNX model does not reproduce the trained one: a bug, never shipped. */
  | "export_mismatch";

export class TrainingError extends Error {
  readonly kind: TrainingErrorKind;
  readonly details: unknown;

  constructor(
    kind: TrainingErrorKind,
    message: string,
    options: { details?: unknown; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "TrainingError";
    this.kind = kind;
    this.details = options.details;
  }
}
