import type { Tensor } from "onnxruntime-web/wasm";

/**
 * Open Inference Protocol v2 tensor datatypes, and how each maps onto onnxruntime's element types.
 * The table is the single source of truth for validation, conversion and the OpenAPI enum.
 */
export const OIP_DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;

export type OipDatatype = (typeof OIP_DATATYPES)[number];

export const ORT_TYPE_OF: Record<OipDatatype, Tensor.Type> = {
  BOOL: "bool",
  UINT8: "uint8",
  UINT16: "uint16",
  UINT32: "uint32",
  UINT64: "uint64",
  INT8: "int8",
  INT16: "int16",
  INT32: "int32",
  INT64: "int64",
  FP16: "float16",
  FP32: "float32",
  FP64: "float64",
  BYTES: "string",
};

const OIP_OF_ORT = new Map<string, OipDatatype>(
  Object.entries(ORT_TYPE_OF).map(([oip, ort]) => [ort, oip as OipDatatype]),
);

/** The OIP name of an onnxruntime element type, or undefined for types the protocol cannot carry (int4, ...). */
export function oipDatatypeOf(ortType: string): OipDatatype | undefined {
  return OIP_OF_ORT.get(ortType);
}

/** Inclusive integer ranges; 64-bit ones are checked on BigInt. */
export const INTEGER_RANGE: Partial<Record<OipDatatype, readonly [bigint, bigint]>> = {
  UINT8: [0n, 255n],
  UINT16: [0n, 65_535n],
  UINT32: [0n, 4_294_967_295n],
  UINT64: [0n, 18_446_744_073_709_551_615n],
  INT8: [-128n, 127n],
  INT16: [-32_768n, 32_767n],
  INT32: [-2_147_483_648n, 2_147_483_647n],
  INT64: [-9_223_372_036_854_775_808n, 9_223_372_036_854_775_807n],
};
