import { EdgeMLError } from "../errors.js";
import type { OipDatatype } from "./datatypes.js";
import { elementCount, type JsonTensor } from "./tensors.js";

/**
 * The binary tensor data extension of the Open Inference Protocol (Triton's extension_binary_data.md, which KServe
 * clients speak too): a tensor's elements as raw little-endian bytes, row-major, without padding; BOOL one byte per
 * element (0 or 1); BYTES each element as a 4-byte little-endian length and then its bytes.
 *
 * Hand-written: the format is a few typed-array views, and no package implements it for JavaScript.
 * Decoding yields the same `data` array the JSON path carries, so every element then passes the very checks a JSON
 * request's elements do (finite floats, integer ranges, no NUL in strings): the binary path refuses what JSON refuses.
 * Typed arrays are read and written in the platform's byte order, which is little-endian on every platform this
 * runs on (x86-64, ARM64, the wasm engines of both).
 */

/** Bytes per element of every fixed-size datatype (BYTES elements are length-prefixed). */
export const ELEMENT_BYTES: Record<Exclude<OipDatatype, "BYTES">, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

type Views = "UINT8" | "INT8" | "UINT16" | "INT16" | "FP16" | "UINT32" | "INT32" | "FP32" | "FP64" | "BOOL";
type View = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView & ArrayLike<number>;
};
/** The typed array onnxruntime takes for each datatype (FP16 as raw half-precision bits, BOOL as bytes). */
const VIEW: Record<Views, View> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  INT16: Int16Array,
  FP16: Uint16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
  FP32: Float32Array,
  FP64: Float64Array,
};
const float16Array = typeof Float16Array === "undefined" ? undefined : Float16Array;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

function bad(name: string, message: string): EdgeMLError {
  return new EdgeMLError("invalid_tensor", `input '${name}': ${message}`);
}

/** `bytes` as a typed array: a view when the offset is aligned to the element size, else over an aligned copy. */
function view<T extends ArrayBufferView>(
  bytes: Uint8Array,
  size: number,
  View: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T },
): T {
  const count = bytes.length / size;
  if (bytes.byteOffset % size === 0) return new View(bytes.buffer, bytes.byteOffset, count);
  return new View(bytes.slice().buffer, 0, count);
}

/**
 * The elements of an input sent as binary data, `bytes` being exactly its `binary_data_size` bytes: the typed array
 * onnxruntime takes (toOrtTensor passes it through), each element checked here as the JSON path checks its own, in
 * the same words (a non-finite float); BYTES elements as strings, which toOrtTensor then checks as JSON's. Refuses
 * too a size that does not fit the shape and datatype, BOOL bytes other than 0 and 1, and 64-bit integers past 2^53
 * (what the JSON path and every output carry exactly).
 */
export function decodeTensor(
  name: string,
  datatype: OipDatatype,
  shape: readonly number[],
  bytes: Uint8Array,
): ArrayBufferView | string[] {
  const count = elementCount(shape);
  if (datatype === "BYTES") return decodeStrings(name, shape, count, bytes);
  const size = ELEMENT_BYTES[datatype];
  if (bytes.length !== count * size) {
    throw bad(
      name,
      `binary_data_size is ${bytes.length} bytes but shape [${shape.join(", ")}] of ${datatype} takes ${count * size} (${count} elements × ${size} bytes)`,
    );
  }
  const finite = (i: number) => bad(name, `element ${i} must be a finite number`);
  switch (datatype) {
    case "INT64":
    case "UINT64": {
      const values: BigInt64Array | BigUint64Array =
        datatype === "INT64" ? view(bytes, 8, BigInt64Array) : view(bytes, 8, BigUint64Array);
      for (let i = 0; i < values.length; i++) {
        const v = values[i] as bigint;
        if (v > 9_007_199_254_740_991n || v < -9_007_199_254_740_991n) {
          throw bad(
            name,
            `element ${i} = ${v} is beyond ±2^53, the largest integer this server carries exactly`,
          );
        }
      }
      return values;
    }
    case "FP32":
    case "FP64": {
      const values = view(bytes, size, VIEW[datatype]);
      for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw finite(i);
      return values;
    }
    case "FP16": {
      const values = view(bytes, 2, Uint16Array);
      // Exponent bits all ones: an infinity or a NaN.
      for (let i = 0; i < values.length; i++)
        if (((values[i] as number) & 0x7c00) === 0x7c00) throw finite(i);
      return values;
    }
    case "BOOL": {
      const values = view(bytes, 1, Uint8Array);
      for (let i = 0; i < values.length; i++) {
        const v = values[i] as number;
        if (v > 1) throw bad(name, `element ${i} is the byte ${v}; a BOOL element is 0 (false) or 1 (true)`);
      }
      return values;
    }
    default:
      // Every bit pattern of the remaining integer types is in its range.
      return view(bytes, size, VIEW[datatype]);
  }
}

function decodeStrings(name: string, shape: readonly number[], count: number, bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    const i = out.length;
    if (at + 4 > bytes.length) throw bad(name, `element ${i} is cut short: its 4-byte length is incomplete`);
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > bytes.length) {
      throw bad(
        name,
        `element ${i} claims ${length} bytes but only ${bytes.length - at} remain in its binary data`,
      );
    }
    try {
      out.push(utf8.decode(bytes.subarray(at, at + length)));
    } catch {
      throw bad(name, `element ${i} is not valid UTF-8; BYTES elements here carry text`);
    }
    at += length;
    if (out.length > count) break;
  }
  if (out.length !== count) {
    throw bad(
      name,
      `shape [${shape.join(", ")}] holds ${count} elements but its binary data holds ${out.length > count ? "more" : out.length}`,
    );
  }
  return out;
}

/** An output's elements as binary data: the inverse of decodeTensor. */
export function encodeTensor(tensor: JsonTensor): Uint8Array {
  const { datatype, data } = tensor;
  const bytes = (view: ArrayBufferView) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  switch (datatype) {
    case "BYTES": {
      const encoded = data.map((v) => utf8Encoder.encode(String(v)));
      const out = new Uint8Array(encoded.reduce((n, e) => n + 4 + e.length, 0));
      const view = new DataView(out.buffer);
      let at = 0;
      for (const e of encoded) {
        view.setUint32(at, e.length, true);
        out.set(e, at + 4);
        at += 4 + e.length;
      }
      return out;
    }
    case "BOOL":
      return Uint8Array.from(data, (v) => (v ? 1 : 0));
    case "FP16":
      if (!float16Array)
        throw new EdgeMLError("model_unavailable", "FP16 outputs need a runtime with Float16Array");
      return bytes(float16Array.from(data as number[]));
    case "INT64":
      return bytes(BigInt64Array.from(data as number[], BigInt));
    case "UINT64":
      return bytes(BigUint64Array.from(data as number[], BigInt));
    case "FP32":
      return bytes(Float32Array.from(data as number[]));
    case "FP64":
      return bytes(Float64Array.from(data as number[]));
    default: {
      const View = VIEW[datatype] as unknown as { from(values: number[]): ArrayBufferView };
      return bytes(View.from(data as number[]));
    }
  }
}

/** A JSON header followed by binary parts: the body of a binary request or response, and the header's byte length. */
export function joinBody(
  header: string,
  parts: readonly Uint8Array[],
): { body: Uint8Array; headerLength: number } {
  const head = utf8Encoder.encode(header);
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, head.length));
  body.set(head, 0);
  let at = head.length;
  for (const part of parts) {
    body.set(part, at);
    at += part.length;
  }
  return { body, headerLength: head.length };
}
