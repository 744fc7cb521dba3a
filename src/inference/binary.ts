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

type Element = number | boolean | string;
type Views = "UINT8" | "INT8" | "UINT16" | "INT16" | "UINT32" | "INT32" | "FP32" | "FP64";
const VIEW: Record<Views, { new (buffer: ArrayBuffer): ArrayLike<number> }> = {
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  INT16: Int16Array,
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

/**
 * The elements of an input sent as binary data, `bytes` being exactly its `binary_data_size` bytes. Refuses a size
 * that does not fit the shape and datatype, BOOL bytes other than 0 and 1, 64-bit integers past 2^53 (what the JSON
 * path carries exactly too) and BYTES elements that are not UTF-8 text.
 */
export function decodeTensor(
  name: string,
  datatype: OipDatatype,
  shape: readonly number[],
  bytes: Uint8Array,
): Element[] {
  const count = elementCount(shape);
  if (datatype === "BYTES") return decodeStrings(name, shape, count, bytes);
  const size = ELEMENT_BYTES[datatype];
  if (bytes.length !== count * size) {
    throw bad(
      name,
      `binary_data_size is ${bytes.length} bytes but shape [${shape.join(", ")}] of ${datatype} takes ${count * size} (${count} elements × ${size} bytes)`,
    );
  }
  // A copy: the slice of the body may start at any offset, and a typed array needs its element alignment.
  const buffer = bytes.slice().buffer;
  switch (datatype) {
    case "BOOL":
      return Array.from(new Uint8Array(buffer), (v, i) => {
        if (v > 1) throw bad(name, `element ${i} is the byte ${v}; a BOOL element is 0 (false) or 1 (true)`);
        return v === 1;
      });
    case "FP16":
      if (!float16Array) throw bad(name, "FP16 needs a runtime with Float16Array (Node 24, current V8)");
      return Array.from(new float16Array(buffer));
    case "INT64":
    case "UINT64": {
      const view = datatype === "INT64" ? new BigInt64Array(buffer) : new BigUint64Array(buffer);
      return Array.from(view, (v, i) => {
        const n = Number(v);
        if (!Number.isSafeInteger(n)) {
          throw bad(
            name,
            `element ${i} = ${v} is beyond ±2^53, the largest integer this server carries exactly`,
          );
        }
        return n;
      });
    }
    default:
      return Array.from(new VIEW[datatype](buffer));
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
