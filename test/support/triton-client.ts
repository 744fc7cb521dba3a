/**
 * Inference requests built, and responses read, the way Triton's Python HTTP client does it (tritonclient.http:
 * `InferInput.set_data_from_numpy`, `InferRequestedOutput`, `_utils._get_inference_request`, `InferResult`), ported
 * step for step so the tests speak to the server as that client does:
 * - the JSON header is Python's `json.dumps` (separators `", "` and `": "`, non-ASCII escaped), its length sent in
 *   `Inference-Header-Content-Length` only when some input is binary, and no Content-Type header at all;
 * - an input's binary data is numpy's `tobytes()` (native little-endian), BYTES elements 4-byte length-prefixed;
 * - with no requested outputs the request asks `binary_data_output: true`; a requested output defaults to
 *   `binary_data: true`.
 */

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** Python's `json.dumps` with its defaults, for the values a request header holds. */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "string") {
    // ensure_ascii: every character past 0x7f as \uXXXX (UTF-16 units), so the text's length is its byte length.
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(", ")}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${pyJsonDumps(k)}: ${pyJsonDumps(v)}`)
    .join(", ")}}`;
}

/** `tritonclient.utils.serialize_byte_tensor`: each element as a 4-byte little-endian length, then its bytes. */
export function serializeByteTensor(values: readonly (string | Uint8Array)[]): Uint8Array {
  const parts = values.map((v) => (typeof v === "string" ? new TextEncoder().encode(v) : v));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length, true);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** `tritonclient.http.InferInput`. */
export class InferInput {
  readonly parameters: Record<string, unknown> = {};
  private data: unknown[] | undefined;
  private rawData: Uint8Array | undefined;

  constructor(
    readonly name: string,
    readonly shape: number[],
    readonly datatype: string,
  ) {}

  /** `set_data_from_numpy(array, binary_data)`; BYTES take strings, BOOL booleans, the rest a typed array. */
  setData(values: NumericArray | readonly string[] | readonly boolean[], binaryData = true): this {
    if (!binaryData) {
      delete this.parameters.binary_data_size;
      this.rawData = undefined;
      this.data = Array.from(values as ArrayLike<unknown>, (v) => (typeof v === "bigint" ? Number(v) : v));
      return this;
    }
    this.data = undefined;
    if (this.datatype === "BYTES") this.rawData = serializeByteTensor(values as string[]);
    else if (this.datatype === "BOOL")
      this.rawData = Uint8Array.from(values as boolean[], (v) => (v ? 1 : 0));
    else {
      const typed = values as NumericArray;
      this.rawData = new Uint8Array(
        typed.buffer.slice(typed.byteOffset, typed.byteOffset + typed.byteLength),
      );
    }
    this.parameters.binary_data_size = this.rawData.length;
    return this;
  }

  /** Raw bytes, set directly: for the malformed requests no numpy array would produce. */
  setRaw(bytes: Uint8Array, declaredSize = bytes.length): this {
    this.data = undefined;
    this.rawData = bytes;
    this.parameters.binary_data_size = declaredSize;
    return this;
  }

  binaryData(): Uint8Array | undefined {
    return this.rawData;
  }

  tensor(): Record<string, unknown> {
    const tensor: Record<string, unknown> = { name: this.name, shape: this.shape, datatype: this.datatype };
    if (Object.keys(this.parameters).length > 0) tensor.parameters = this.parameters;
    if (this.rawData === undefined && this.data !== undefined) tensor.data = this.data;
    return tensor;
  }
}

/** `tritonclient.http.InferRequestedOutput(name, binary_data=True)`. */
export class InferRequestedOutput {
  constructor(
    readonly name: string,
    readonly binaryData = true,
  ) {}
  tensor(): Record<string, unknown> {
    return { name: this.name, parameters: { binary_data: this.binaryData } };
  }
}

/** `_get_inference_request`: the body, and the JSON header's length when some input is binary. */
export function inferenceRequest(options: {
  inputs: InferInput[];
  outputs?: InferRequestedOutput[];
  requestId?: string;
  parameters?: Record<string, unknown>;
}): { body: Uint8Array; jsonSize: number | undefined } {
  const request: Record<string, unknown> = {};
  const parameters: Record<string, unknown> = {};
  if (options.requestId) request.id = options.requestId;
  request.inputs = options.inputs.map((i) => i.tensor());
  if (options.outputs && options.outputs.length > 0) request.outputs = options.outputs.map((o) => o.tensor());
  else parameters.binary_data_output = true;
  Object.assign(parameters, options.parameters);
  if (Object.keys(parameters).length > 0) request.parameters = parameters;
  const json = pyJsonDumps(request);
  const parts: Uint8Array[] = [new TextEncoder().encode(json)];
  for (const input of options.inputs) {
    const raw = input.binaryData();
    if (raw !== undefined) parts.push(raw);
  }
  if (parts.length === 1) return { body: parts[0] as Uint8Array, jsonSize: undefined };
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return { body, jsonSize: json.length };
}

/** The `RequestInit` of `InferenceServerClient.infer`: POST, the header length when binary, no Content-Type. */
export function inferInit(request: { body: Uint8Array; jsonSize: number | undefined }): RequestInit {
  return {
    method: "POST",
    headers:
      request.jsonSize === undefined ? {} : { "Inference-Header-Content-Length": String(request.jsonSize) },
    body: request.body as Uint8Array<ArrayBuffer>,
  };
}

interface ResultOutput {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: { binary_data_size?: number };
}

const VIEWS: Record<string, new (buffer: ArrayBuffer) => NumericArray> = {
  FP32: Float32Array,
  FP64: Float64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  BOOL: Uint8Array,
  FP16: Uint16Array,
};

/** `tritonclient.http.InferResult`: the JSON header, and each output's data from the JSON or the binary part. */
export class InferResult {
  private constructor(
    readonly result: { model_name: string; model_version: string; id?: string; outputs: ResultOutput[] },
    private readonly buffer: Uint8Array,
    private readonly offsets: Map<string, number>,
  ) {}

  static async of(response: Response): Promise<InferResult> {
    const bytes = new Uint8Array(await response.arrayBuffer());
    const headerLength = response.headers.get("Inference-Header-Content-Length");
    if (headerLength === null)
      return new InferResult(JSON.parse(new TextDecoder().decode(bytes)), bytes, new Map());
    const length = Number(headerLength);
    const result = JSON.parse(new TextDecoder().decode(bytes.subarray(0, length)));
    const offsets = new Map<string, number>();
    let index = 0;
    for (const output of result.outputs as ResultOutput[]) {
      const size = output.parameters?.binary_data_size;
      if (size !== undefined) {
        offsets.set(output.name, index);
        index += size;
      }
    }
    return new InferResult(result, bytes.subarray(length), offsets);
  }

  /** `as_numpy(name)`: a typed array for binary outputs (FP16 as its raw bits), the JSON list otherwise. */
  output(name: string): NumericArray | string[] | unknown[] | undefined {
    const output = this.result.outputs.find((o) => o.name === name);
    if (!output) return undefined;
    const size = output.parameters?.binary_data_size;
    if (size === undefined) return output.data;
    const start = this.offsets.get(name) ?? 0;
    const slice = this.buffer.slice(start, start + size);
    if (output.datatype === "BYTES") return deserializeByteTensor(slice);
    const View = VIEWS[output.datatype];
    if (!View) throw new Error(`no view for ${output.datatype}`);
    return new View(slice.buffer);
  }
}

/** `tritonclient.utils.deserialize_bytes_tensor`, decoding each element as UTF-8. */
export function deserializeByteTensor(bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = view.getUint32(at, true);
    out.push(new TextDecoder().decode(bytes.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return out;
}
