import type { Context, MiddlewareHandler, Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import { EdgeMLError } from "../errors.js";

/**
 * Body limits of the routes whose bodies are small JSON documents, sized to what they need with room to spare.
 * Infer requests and model uploads have their own, configurable limits (`MAX_INFER_BYTES`, `MAX_MODEL_BYTES`).
 */
export const BODY_LIMITS = {
  /** `{symbol, horizon, as_of?}`: a few dozen bytes; 16 KiB leaves room for any client's extra fields. */
  forecast: 16 * 1024,
  /** `{symbols[], horizon}`: at most a few dozen symbols. */
  batch: 64 * 1024,
  /** `{model_id, …}`: a training request names a model. */
  train: 16 * 1024,
  /** Pointer changes, rollouts, tracking: a version, a reason of at most a few hundred characters. */
  admin: 64 * 1024,
} as const;

/**
 * How deeply a JSON body may nest. The deepest thing the API takes is a nested OIP `data` array of rank ≤ 16
 * inside `{inputs: [{data: …}]}` (about 20 levels); reports and golden rows nest less. Unbounded nesting is a
 * stack overflow in every recursive walk (flattening, JSON.stringify when a version is written).
 */
export const MAX_JSON_DEPTH = 64;

function tooDeep(where: string): EdgeMLError {
  return new EdgeMLError(
    "invalid_request",
    `${where} nests deeper than ${MAX_JSON_DEPTH} levels; send flat arrays (OIP \`data\` is row-major with a \`shape\`)`,
  );
}

/**
 * The deepest nesting of arrays and objects in a JSON text, by one pass over its characters (strings skipped).
 * A scan, not a parse: it must not recurse, which is the whole point, and it stops early past `limit`.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c)
        i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
      continue;
    }
    if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return deepest;
}

/**
 * Whether `text` has more than `limit` opening brackets (`[` or `{`, strings included): only then can it nest deeper
 * than `limit`, and only then is it scanned. Counted with indexOf (native, fast) rather than a character loop: an
 * OIP body of a few hundred bytes has a handful of brackets, and the scan was the largest item of ours in an infer
 * request's profile.
 */
export function moreBracketsThan(text: string, limit: number): boolean {
  let count = 0;
  for (const bracket of ["[", "{"]) {
    for (let i = text.indexOf(bracket); i !== -1; i = text.indexOf(bracket, i + 1)) {
      count += 1;
      if (count > limit) return true;
    }
  }
  return false;
}

/** Refuses a parsed value (a header's or a multipart part's JSON) that nests deeper than MAX_JSON_DEPTH. */
export function assertJsonDepth(value: unknown, where: string): void {
  // Iterative on purpose: a recursive walk is what a deep value overflows.
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (item === null || typeof item !== "object") continue;
    if (depth > MAX_JSON_DEPTH) throw tooDeep(where);
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
}

function isJson(contentType: string | undefined): boolean {
  const type = (contentType ?? "").toLowerCase();
  return type.startsWith("application/json") || /^application\/[^;]*\+json/.test(type);
}

/**
 * The body limit of a route (413 `payload_too_large` past `maxBytes`, the message naming the limit and what to do)
 * and, for JSON bodies, the nesting bound (400 before anything parses it).
 */
export function limitBody(maxBytes: number, advice: string): MiddlewareHandler {
  const tooLarge = () => {
    throw new EdgeMLError(
      "payload_too_large",
      `this route takes bodies of at most ${maxBytes} bytes; ${advice}`,
    );
  };
  // Streamed bodies (no Content-Length, or chunked) are counted as they arrive by Hono's bodyLimit.
  const streamed = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  const parse = async (c: Context, next: Next) => {
    // A body with Inference-Header-Content-Length is JSON then binary tensors: its route checks the JSON part.
    if (isJson(c.req.header("content-type")) && !c.req.header("inference-header-content-length")) {
      const text = await c.req.text();
      if (moreBracketsThan(text, MAX_JSON_DEPTH) && jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
        throw tooDeep("the request body");
      // Parsed once, here: left to itself the validator would re-read the cached text through a new Response (a
      // stream and a copy per request). Malformed JSON is left for the validator, which answers it with a 400.
      try {
        const parsed: unknown = JSON.parse(text);
        c.req.bodyCache.json = Promise.resolve(parsed);
        parsedBodies.set(c, parsed);
      } catch {}
    }
    await next();
  };
  return (c, next) => {
    // With a Content-Length (and no Transfer-Encoding), the decision Hono's bodyLimit makes from the header alone,
    // made here without touching `c.req.raw.body`: on @hono/node-server that getter builds a whole web Request and
    // stream around the socket, while `c.req.text()` reads it directly (a third of a small request's cost).
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined) {
      return streamed(c, () => parse(c, next));
    }
    if (Number.parseInt(length || "0", 10) > maxBytes) return tooLarge();
    return parse(c, next);
  };
}

/** JSON bodies limitBody parsed, by request: what a route's fast path reads instead of parsing again. */
const parsedBodies = new WeakMap<Context, unknown>();

/** The JSON value of the request's body as limitBody parsed it; undefined when it did not (not JSON, malformed). */
export const parsedJsonBody = (c: Context): unknown => parsedBodies.get(c);
