import type { z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { OIP_DATATYPES } from "../inference/datatypes.js";
import type { InferOutput } from "../services/inference.js";
import type { RoutedInfer } from "./infer-routing.js";
import { parsedJsonBody } from "./limits.js";
import type { InferRequestSchema } from "./schemas.js";

/**
 * The fast path of the OIP infer routes: the common request (a JSON body of plain tensors, no `parameters`, no
 * fields the schema does not name) is recognised by a hand-written check and answered at once, skipping the zod
 * validators that @hono/zod-openapi puts before the handler (a third of a batch-1 request's CPU). Anything else, and
 * anything the check is not sure of, goes on to the route's full validation, which answers every refusal.
 *
 * Hand-written rather than a compiled-validator library (ajv, typia): the check must never accept what the zod schema
 * refuses, and the simplest way to be sure is that it accepts only a strict subset it can prove valid, and defers
 * the rest. The equivalence is a table plus the fuzz suite's mutations (test/routes/fast-infer.test.ts).
 */

type InferRequestBody = z.infer<typeof InferRequestSchema>;

/** Content types that both the media-type gate of @hono/zod-openapi and Hono's JSON validator accept as they are. */
export const PLAIN_JSON: ReadonlySet<string> = new Set([
  "application/json",
  "application/json; charset=utf-8",
  "application/json;charset=utf-8",
]);
const DATATYPES = new Set<string>(OIP_DATATYPES);
/** The schema's limits (src/routes/schemas.ts, src/registry/metadata.ts): kept equal by the equivalence table. */
const MAX_ID = 256;
const MAX_TENSORS = 64;
const MAX_RANK = 16;
/** Distinct validated paths remembered (a name or name and version each): far more than a registry has. */
const MAX_PATHS = 1_024;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Every own key is one of `allowed`: a key zod would strip (or check, like `parameters`) sends the body the long way. */
function onlyKeys(value: Record<string, unknown>, allowed: readonly string[]): boolean {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) return false;
  return true;
}

const TENSOR_KEYS = ["name", "shape", "datatype", "data"] as const;

function plainTensor(value: unknown): boolean {
  if (!isRecord(value) || !onlyKeys(value, TENSOR_KEYS)) return false;
  const { name, shape, datatype, data } = value;
  if (typeof name !== "string" || name.length < 1) return false;
  if (typeof datatype !== "string" || !DATATYPES.has(datatype)) return false;
  if (!Array.isArray(data) || !Array.isArray(shape) || shape.length > MAX_RANK) return false;
  for (const d of shape) if (!Number.isSafeInteger(d) || (d as number) < 0) return false;
  return true;
}

function plainOutput(value: unknown): boolean {
  return (
    isRecord(value) && onlyKeys(value, ["name"]) && typeof value.name === "string" && value.name.length >= 1
  );
}

/**
 * The body as the infer route's zod schema would output it, when it is the common shape and certainly valid;
 * undefined otherwise (the zod path decides, and answers its refusals).
 */
export function plainInferRequest(value: unknown): InferRequestBody | undefined {
  if (!isRecord(value) || !onlyKeys(value, ["id", "inputs", "outputs"])) return undefined;
  const { id, inputs, outputs } = value;
  if (id !== undefined && (typeof id !== "string" || id.length > MAX_ID)) return undefined;
  if (!Array.isArray(inputs) || inputs.length < 1 || inputs.length > MAX_TENSORS) return undefined;
  for (const input of inputs) if (!plainTensor(input)) return undefined;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs) || outputs.length > MAX_TENSORS) return undefined;
    for (const output of outputs) if (!plainOutput(output)) return undefined;
  }
  return value as InferRequestBody;
}

/**
 * The infer routes' fast path (a route middleware after the body limit, which parsed the JSON): a plain JSON request
 * with valid path parameters is answered here by the same operation and the same response as the route's handler;
 * every other request goes on to the route's validators.
 */
export function fastJsonInfer(
  params: z.ZodType<{ name: string; version?: string }>,
  infer: RoutedInfer,
  respond: (c: Context, body: InferRequestBody, result: InferOutput) => Response,
): MiddlewareHandler {
  // Path parameters zod accepted, by their text: zod's answer for a name and version never changes, and clients
  // name the same few models again and again. Bounded: cleared when full (a client cycling names pays zod each time).
  const valid = new Map<string, { name: string; version?: string }>();
  const pathOf = (c: Context) => {
    const raw = c.req.param() as { name?: string; version?: string };
    // Length-prefixed: no two (name, version) pairs share an id.
    const id = `${raw.name?.length}:${raw.name}:${raw.version}`;
    const known = valid.get(id);
    if (known) return known;
    const path = params.safeParse(raw);
    if (!path.success) return undefined;
    if (valid.size >= MAX_PATHS) valid.clear();
    valid.set(id, path.data);
    return path.data;
  };
  return async (c, next) => {
    const type = c.req.header("content-type");
    if (type === undefined || !PLAIN_JSON.has(type)) return next();
    const body = plainInferRequest(parsedJsonBody(c));
    if (!body) return next();
    const path = pathOf(c);
    if (!path) return next();
    const result = await infer(c, path.name, path.version, body);
    return respond(c, body, result);
  };
}
