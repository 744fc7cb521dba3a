import { z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { EdgeMLError } from "../errors.js";
import { decodeTensor, encodeTensor, joinBody } from "../inference/binary.js";
import type { TensorInput } from "../inference/request.js";
import { JsonTensorSchema } from "../registry/metadata.js";
import type { InferOutput } from "../services/inference.js";
import type { RoutedInfer } from "./infer-routing.js";
import { assertJsonDepth } from "./limits.js";
import { InferRequestSchema } from "./schemas.js";

/**
 * The Open Inference Protocol's binary tensor data extension on the infer routes (Triton's
 * extension_binary_data.md; KServe's and Triton's clients send it by default): a JSON header, then the raw bytes of
 * the inputs that carry `parameters.binary_data_size`, in input order; `Inference-Header-Content-Length` gives the
 * header's length. Outputs come back the same way when asked (`binary_data` on an output, `binary_data_output` on
 * the request). A binary request becomes the object a JSON request validates into (its JSON header checked by the
 * same schema; binary inputs' `data` the typed arrays onnxruntime takes, each element checked as decoded, in the JSON
 * path's words), so everything after it (the signature checks, the model, the errors) is the JSON path's.
 */

/** What `GET /v2` lists among its extensions. */
export const BINARY_TENSOR_EXTENSION = "binary_tensor_data";
export const HEADER_LENGTH = "inference-header-content-length";
const OCTET_STREAM = "application/octet-stream";

/** The OpenAPI document's word on binary bodies, which the route's hook (binaryTensorData) validates itself. */
export const BINARY_DESCRIPTION =
  "JSON, or (binary tensor data extension) the JSON request followed by the raw little-endian bytes of each input that has parameters.binary_data_size, in input order, with Inference-Header-Content-Length giving the JSON's byte length; outputs come back the same way when asked (parameters.binary_data on an output, or binary_data_output on the request)";

export type InferRequestBody = z.infer<typeof InferRequestSchema>;
type TensorBody = InferRequestBody["inputs"][number];
/** A decoded binary request: the JSON request, binary inputs' `data` being the typed arrays decodeTensor made. */
export type DecodedInferRequest = Omit<InferRequestBody, "inputs"> & {
  inputs: (Omit<TensorBody, "data"> & { data: TensorInput["data"] })[];
};

/** The JSON header of a binary request: the request as JSON sends it, except that binary inputs have no `data`. */
const HeaderSchema = InferRequestSchema.extend({
  inputs: z
    .array(JsonTensorSchema.extend({ data: JsonTensorSchema.shape.data.optional() }))
    .min(1)
    .max(64),
});

function invalid(message: string, details?: unknown): EdgeMLError {
  return new EdgeMLError("invalid_request", message, details === undefined ? {} : { details });
}

/** A zod failure in the words of the routes' own validation hook (route-app.ts), so both paths answer alike. */
function refusal(error: z.ZodError): EdgeMLError {
  const issues = error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
  const first = issues[0];
  return invalid(
    `invalid request${first ? `: ${first.path ? `${first.path}: ` : ""}${first.message}` : ""}`,
    issues,
  );
}

function headerLengthOf(value: string, bodyLength: number): number {
  if (!/^\d{1,15}$/.test(value.trim())) {
    throw invalid(
      `Inference-Header-Content-Length must be the byte length of the JSON header that starts the body (a non-negative integer); got '${value.slice(0, 32)}'`,
    );
  }
  const length = Number(value.trim());
  if (length > bodyLength) {
    throw invalid(
      `Inference-Header-Content-Length is ${length} but the body has only ${bodyLength} bytes; it must give the length of the JSON header that starts the body`,
    );
  }
  if (length === 0) {
    throw invalid(
      "Inference-Header-Content-Length: 0 (a raw binary body without a JSON header) is not supported; start the body with the JSON request and give its length",
    );
  }
  return length;
}

/**
 * Splits a binary request body into its JSON header and inputs, checking every size against the header: each
 * `binary_data_size` against its input's shape and datatype, and their sum against the bytes after the header.
 * `lengthHeader` undefined means the whole body is the JSON header (a client that sends JSON with no content type).
 */
export function decodeBinaryRequest(
  bytes: Uint8Array,
  lengthHeader: string | undefined,
): DecodedInferRequest {
  const headerLength = lengthHeader === undefined ? bytes.length : headerLengthOf(lengthHeader, bytes.length);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(0, headerLength)));
  } catch (error) {
    throw invalid(
      `the JSON header (the first ${headerLength} bytes of the body, per Inference-Header-Content-Length) is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  assertJsonDepth(parsed, "the JSON header");
  const header = HeaderSchema.safeParse(parsed);
  if (!header.success) throw refusal(header.error);
  let at = headerLength;
  const inputs = header.data.inputs.map((input) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) {
      if (input.data === undefined) {
        throw invalid(
          `input '${input.name}' has no data: send its elements in \`data\`, or its bytes after the JSON header with parameters.binary_data_size`,
        );
      }
      return { ...input, data: input.data };
    }
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      throw invalid(
        `input '${input.name}': parameters.binary_data_size must be the byte length of its binary data (a non-negative integer)`,
      );
    }
    if (input.data !== undefined) {
      throw invalid(
        `input '${input.name}' has both \`data\` and parameters.binary_data_size; send its elements one way`,
      );
    }
    if (at + size > bytes.length) throw sizeMismatch(bytes.length - headerLength, header.data.inputs);
    const data = decodeTensor(input.name, input.datatype, input.shape, bytes.subarray(at, at + size));
    at += size;
    return { ...input, data };
  });
  if (at !== bytes.length) throw sizeMismatch(bytes.length - headerLength, header.data.inputs);
  return { ...header.data, inputs };
}

function sizeMismatch(
  rest: number,
  inputs: readonly { parameters?: Record<string, unknown> }[],
): EdgeMLError {
  const sum = inputs.reduce((n, i) => {
    const size = i.parameters?.binary_data_size;
    return n + (typeof size === "number" ? size : 0);
  }, 0);
  return invalid(
    `the body has ${rest} bytes after the JSON header but the inputs' binary_data_size add up to ${sum}; each binary input's bytes follow the header in input order, nothing else`,
  );
}

/**
 * The infer response: JSON, or (when the request asked any output as binary data) the JSON header with those
 * outputs' bytes after it. A per-output `binary_data` overrides the request's `binary_data_output`, as in Triton.
 */
export function inferResponse(
  c: Context,
  request: Pick<InferRequestBody, "parameters" | "outputs">,
  result: InferOutput,
): JsonAnswer {
  const all = request.parameters?.binary_data_output === true;
  const asked = new Map(request.outputs?.map((o) => [o.name, o.parameters?.binary_data]));
  const binary = (name: string) => (asked.get(name) ?? all) === true;
  if (!result.outputs.some((o) => binary(o.name))) return jsonAnswer(c, result);
  const parts: Uint8Array[] = [];
  const outputs = result.outputs.map((output) => {
    if (!binary(output.name)) return output;
    const bytes = encodeTensor(output);
    parts.push(bytes);
    const { data: _data, ...rest } = output;
    return { ...rest, parameters: { binary_data_size: bytes.length } };
  });
  const { body, headerLength } = joinBody(JSON.stringify({ ...result, outputs }), parts);
  const answer = c.body(body as Uint8Array<ArrayBuffer>, 200, {
    "content-type": OCTET_STREAM,
    [HEADER_LENGTH]: String(headerLength),
  });
  // Typed as the JSON answer: the routes' types (and the CLI's client built from them) describe JSON, which is what
  // a request gets unless it asks for binary outputs; the route's description documents the binary one.
  return answer as unknown as JsonAnswer;
}

const jsonAnswer = (c: Context, result: InferOutput) => c.json(result, 200);
type JsonAnswer = ReturnType<typeof jsonAnswer>;

/**
 * The infer routes' hook for bodies that are not plain JSON: a request with `Inference-Header-Content-Length`, or
 * with no content type at all (Triton's and KServe's Python clients send none), is decoded here and answered by the
 * same operation; an octet-stream body without the header is refused, saying what it lacks. JSON bodies go on to
 * the route's own validation.
 */
export function binaryTensorData(
  params: z.ZodType<{ name: string; version?: string }>,
  infer: RoutedInfer,
): MiddlewareHandler {
  return async (c, next) => {
    const length = c.req.header(HEADER_LENGTH);
    const type = c.req.header("content-type");
    if (length === undefined && type !== undefined) {
      if (!type.toLowerCase().startsWith(OCTET_STREAM)) return next();
      throw invalid(
        "an application/octet-stream body needs Inference-Header-Content-Length: the byte length of the JSON request that starts it (the binary tensor data extension)",
      );
    }
    const path = params.safeParse(c.req.param());
    if (!path.success) throw refusal(path.error);
    const body = decodeBinaryRequest(new Uint8Array(await c.req.arrayBuffer()), length);
    const result = await infer(c, path.data.name, path.data.version, body);
    return inferResponse(c, body, result);
  };
}
