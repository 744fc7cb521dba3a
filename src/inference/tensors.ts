import { Tensor } from "onnxruntime-web/wasm";
import { EdgeMLError } from "../errors.js";
import { INTEGER_RANGE, type OipDatatype, ORT_TYPE_OF, oipDatatypeOf } from "./datatypes.js";

/** A tensor as the Open Inference Protocol's JSON carries it: `data` is flat and row-major. */
export interface JsonTensor {
  name: string;
  datatype: OipDatatype;
  shape: number[];
  data: (number | boolean | string)[];
}

/** Flattens nested arrays (the protocol accepts them on input) into row-major order. */
/** How deeply `data` may nest: a tensor has at most 16 dimensions (the request schema's bound on `shape`). */
export const MAX_DATA_NESTING = 16;

/**
 * Flattens nested `data` row-major. Iterative, with the nesting bounded: a recursive walk is a stack overflow on
 * deeply nested input, and no tensor nests deeper than its rank.
 */
export function flatten(data: unknown, name = "data"): unknown[] {
  if (!Array.isArray(data)) return [data];
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  // A stack of [array, next index]; its height is the current nesting.
  const stack: [unknown[], number][] = [[data, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as [unknown[], number];
    const [array, index] = top;
    if (index >= array.length) {
      stack.pop();
      continue;
    }
    top[1] = index + 1;
    const item = array[index];
    if (!Array.isArray(item)) {
      out.push(item);
      continue;
    }
    if (stack.length >= MAX_DATA_NESTING) {
      throw bad(
        name,
        `data nests deeper than ${MAX_DATA_NESTING} levels; a tensor has at most 16 dimensions`,
      );
    }
    stack.push([item, 0]);
  }
  return out;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

// Float16Array is new (V8 13.x); runtimes without it cannot carry FP16 and say so.
const float16Array = typeof Float16Array === "undefined" ? undefined : Float16Array;

/** Largest finite value of each float type (FP32 and FP16 round anything beyond the half-ulp above it to Infinity). */
const FLOAT_MAX = { FP16: 65_504, FP32: 3.4028234663852886e38, FP64: Number.MAX_VALUE } as const;

function bad(name: string, message: string): EdgeMLError {
  return new EdgeMLError("invalid_tensor", `input '${name}': ${message}`);
}

/**
 * Builds an onnxruntime tensor from protocol JSON, checking every element against the datatype.
 * The caller has already checked the shape against the model's signature; this checks the data against the shape.
 */
export function toOrtTensor(name: string, datatype: OipDatatype, shape: number[], data: unknown): Tensor {
  // Binary tensor data (src/inference/binary.ts) arrives as the typed array onnxruntime takes for this datatype, its
  // size checked against the shape and its elements against the datatype as it was decoded.
  if (ArrayBuffer.isView(data))
    return new Tensor(ORT_TYPE_OF[datatype] as "float32", data as Float32Array, shape);
  const flat = flatten(data, name);
  const expected = elementCount(shape);
  if (flat.length !== expected) {
    throw bad(name, `shape [${shape.join(", ")}] holds ${expected} elements but data has ${flat.length}`);
  }
  const type = ORT_TYPE_OF[datatype];
  const dims = shape;
  const at = (i: number) => `element ${i}`;
  switch (datatype) {
    case "FP32":
    case "FP64":
    case "FP16": {
      const values = new Float64Array(flat.length);
      const max = FLOAT_MAX[datatype];
      flat.forEach((v, i) => {
        if (typeof v !== "number" || !Number.isFinite(v)) throw bad(name, `${at(i)} must be a finite number`);
        // Past the type's largest finite value the conversion would silently turn the number into Infinity.
        if (Math.abs(v) > max) throw bad(name, `${at(i)} = ${v} is out of range for ${datatype}`);
        values[i] = v;
      });
      if (datatype === "FP64") return new Tensor("float64", values, dims);
      if (datatype === "FP32") return new Tensor("float32", Float32Array.from(values), dims);
      if (!float16Array) throw bad(name, "FP16 needs a runtime with Float16Array (Node 24, current V8)");
      // onnxruntime takes float16 as raw IEEE-754 half bits.
      return new Tensor("float16", new Uint16Array(new float16Array(values).buffer), dims);
    }
    case "BOOL": {
      const values = new Uint8Array(flat.length);
      flat.forEach((v, i) => {
        if (typeof v !== "boolean") throw bad(name, `${at(i)} must be true or false`);
        values[i] = v ? 1 : 0;
      });
      return new Tensor("bool", values, dims);
    }
    case "BYTES": {
      const values = flat.map((v, i) => {
        if (typeof v !== "string") throw bad(name, `${at(i)} must be a string`);
        // onnxruntime's string tensors are C strings: everything after a NUL would be silently dropped.
        if (v.includes("\0"))
          throw bad(name, `${at(i)} contains a NUL character, which string tensors cannot hold`);
        return v;
      });
      return new Tensor("string", values, dims);
    }
    default: {
      const range = INTEGER_RANGE[datatype];
      if (!range) throw bad(name, `datatype ${datatype} is not supported`);
      const ints = flat.map((v, i) => {
        if (typeof v !== "number" || !Number.isSafeInteger(v)) throw bad(name, `${at(i)} must be an integer`);
        const big = BigInt(v);
        if (big < range[0] || big > range[1])
          throw bad(name, `${at(i)} = ${v} is out of range for ${datatype}`);
        return v;
      });
      if (type === "int64") return new Tensor("int64", BigInt64Array.from(ints, BigInt), dims);
      if (type === "uint64") return new Tensor("uint64", BigUint64Array.from(ints, BigInt), dims);
      const Ctor = {
        uint8: Uint8Array,
        uint16: Uint16Array,
        uint32: Uint32Array,
        int8: Int8Array,
        int16: Int16Array,
        int32: Int32Array,
      }[type as "uint8"];
      return new Tensor(type as "uint8", Ctor.from(ints), dims);
    }
  }
}

/**
 * Converts an output tensor to protocol JSON. 64-bit integers become JSON numbers: exact up to 2^53, which is
 * what every JSON client can parse anyway.
 */
export function fromOrtTensor(name: string, tensor: Tensor): JsonTensor {
  const datatype = oipDatatypeOf(tensor.type);
  if (!datatype) {
    throw new EdgeMLError(
      "model_unavailable",
      `output '${name}' has type ${tensor.type}, which the protocol cannot carry`,
    );
  }
  const shape = tensor.dims.map(Number);
  let data: (number | boolean | string)[];
  const raw = tensor.data;
  if (datatype === "BOOL") data = Array.from(raw as Uint8Array, (v) => v !== 0);
  else if (datatype === "BYTES") data = [...(raw as string[])];
  else if (datatype === "FP16") {
    if (!float16Array)
      throw new EdgeMLError("model_unavailable", "FP16 outputs need a runtime with Float16Array");
    const bits = raw as Uint16Array;
    data = Array.from(new float16Array(bits.buffer, bits.byteOffset, bits.length));
  } else if (datatype === "INT64" || datatype === "UINT64") data = Array.from(raw as BigInt64Array, Number);
  else data = Array.from(raw as Float64Array);
  return { name, datatype, shape, data };
}
