import { Tensor } from "onnxruntime-web/wasm";
import { EdgeMLError, type ErrorCode, errorMessage } from "../errors.js";
import type { ModelSignature } from "./engine.js";

/** What the isolating engine tells its worker at start: the worker's own engine settings. */
export interface WorkerSettings {
  maxSessions: number;
  maxSessionBytes: number;
  maxOutputBytes: number;
  memoryLimitBytes: number;
}

/** A tensor as it crosses the thread boundary (structured clone; output buffers are transferred, not copied). */
export interface WireTensor {
  type: Tensor.Type;
  dims: number[];
  data: Tensor.DataType;
}

export type WorkerRequest =
  | { id: number; op: "signature"; key: string; bytes?: Uint8Array }
  | {
      id: number;
      op: "run";
      key: string;
      bytes?: Uint8Array;
      feeds: Record<string, WireTensor>;
      outputs?: string[];
    }
  | { id: number; op: "evict"; key: string };

/** A request before the runner numbers it. */
export type WorkerJob = WorkerRequest extends infer R
  ? R extends WorkerRequest
    ? Omit<R, "id">
    : never
  : never;

/** A failure as the worker saw it; `needBytes` asks for the model's bytes (its session is not warm there). */
export interface WireError {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export type WorkerResponse = { id: number; memoryBytes: number | null } & (
  | { ok: true; signature?: ModelSignature; outputs?: Record<string, WireTensor> }
  | { ok: false; needBytes: true }
  | { ok: false; needBytes?: false; error: WireError }
);

export const toWire = (tensor: Tensor): WireTensor => ({
  type: tensor.type,
  dims: [...tensor.dims],
  data: tensor.data as Tensor.DataType,
});

export const fromWire = (wire: WireTensor): Tensor =>
  // The constructor's overloads are per type; the pair came from a Tensor, so it is consistent.
  new Tensor(wire.type as "float32", wire.data as Float32Array, wire.dims);

const PREFIX = "edgeml: ";

export function errorToWire(error: unknown): WireError {
  if (error instanceof EdgeMLError) {
    return { code: error.code, message: error.message.replace(PREFIX, ""), details: error.details };
  }
  return { code: "internal", message: errorMessage(error) };
}

export const errorFromWire = (wire: WireError): EdgeMLError =>
  new EdgeMLError(wire.code, wire.message, wire.details === undefined ? {} : { details: wire.details });
