import type { Context, MiddlewareHandler } from "hono";
import { AsOfSchema } from "../forecast/as-of.js";
import { isIntervalLevel } from "../forecast/interval.js";
import { CLIENT_ID_HEADER, parseClientId } from "../rollout/assign.js";
import { PLAIN_JSON } from "./fast-infer.js";
import { parsedJsonBody } from "./limits.js";

/**
 * The fast path of `POST /api/ml/serve`: the common body (`{symbol, horizon?, as_of?, interval_level?}`, nothing
 * else) with a valid or absent `x-client-id` is recognised by a hand-written check and answered at once, skipping
 * the zod validators @hono/zod-openapi puts before the handler (the header's builds every request header into an
 * object). Like the infer fast path (./fast-infer.ts), it accepts only a strict subset of what the route's schema
 * accepts and sends everything else, every refusal included, on to the route's validators, which answer it.
 * Equivalence: test/api/fast-serve.test.ts (a table and seeded mutations, each answered as by the zod path).
 */

export interface ServeBody {
  symbol: string;
  horizon: string;
  as_of?: string;
  interval_level?: number;
}

/** The schema's limits (SymbolId and Horizon in ./schemas.ts and ./forecast.ts): kept equal by the equivalence table. */
const SYMBOL_MAX = 16;
const HORIZON_MAX = 8;
const DEFAULT_HORIZON = "24h";
const KEYS = new Set(["symbol", "horizon", "as_of", "interval_level"]);
/** `as_of` texts zod accepted: its answer for a text never changes. Bounded: cleared when full. */
const MAX_AS_OF = 1_024;
const validAsOf = new Set<string>();

function asOfValid(text: string): boolean {
  if (validAsOf.has(text)) return true;
  if (!AsOfSchema.safeParse(text).success) return false;
  if (validAsOf.size >= MAX_AS_OF) validAsOf.clear();
  validAsOf.add(text);
  return true;
}

const sized = (value: unknown, max: number): value is string =>
  typeof value === "string" && value.length >= 1 && value.length <= max;

/** The body as the serve route's zod schema would output it, when certainly valid; undefined otherwise. */
export function plainServeRequest(value: unknown): ServeBody | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  for (const key of Object.keys(value)) if (!KEYS.has(key)) return undefined;
  const { symbol, horizon, as_of, interval_level } = value as Record<string, unknown>;
  if (!sized(symbol, SYMBOL_MAX)) return undefined;
  if (horizon !== undefined && !sized(horizon, HORIZON_MAX)) return undefined;
  if (as_of !== undefined && (typeof as_of !== "string" || !asOfValid(as_of))) return undefined;
  if (
    interval_level !== undefined &&
    (typeof interval_level !== "number" || !isIntervalLevel(interval_level))
  )
    return undefined;
  return {
    symbol,
    horizon: horizon ?? DEFAULT_HORIZON,
    ...(as_of === undefined ? {} : { as_of }),
    ...(interval_level === undefined ? {} : { interval_level }),
  };
}

/**
 * A route middleware after the body limit (which parsed the JSON): a plain request is answered by `serve` (the
 * route's own operation and response); anything else goes on to the route's validators.
 */
export function fastServe(serve: (c: Context, body: ServeBody) => Promise<Response>): MiddlewareHandler {
  return async (c, next) => {
    const type = c.req.header("content-type");
    if (type === undefined || !PLAIN_JSON.has(type)) return next();
    // The one header the route validates, read alone (its rule is parseClientId's); a bad one gets zod's answer.
    try {
      parseClientId(c.req.header(CLIENT_ID_HEADER));
    } catch {
      return next();
    }
    const body = plainServeRequest(parsedJsonBody(c));
    if (!body) return next();
    return serve(c, body);
  };
}
