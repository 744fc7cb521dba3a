import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../routes/types.js";
import { CLIENT_ID_HEADER, parseClientId } from "./assign.js";

/**
 * Makes the client's identity available to the routes (`c.var.clientIdentity`), computed only when a route asks:
 * `identify` is the rate limiter's (src/routes/ratelimit.ts, createClientIdentity), so a canary keys a client
 * exactly as the rate limit counts it (a configured API key, else the address, IPv6 by its /64).
 */
export function clientIdentityMiddleware(
  identify: (c: Context) => Promise<string | undefined>,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    let identity: Promise<string | undefined> | undefined;
    c.set("clientIdentity", () => {
      identity ??= identify(c);
      return identity;
    });
    await next();
  };
}

/**
 * The key a canary assigns this request by: `x-client-id` when sent (a malformed one is a 400), else the identity
 * the rate limiter sees; undefined when neither is known (such a request gets what everyone else gets).
 */
export async function clientKeyOf(c: Context<AppEnv>): Promise<string | undefined> {
  const sent = parseClientId(c.req.header(CLIENT_ID_HEADER));
  if (sent !== undefined) return sent;
  return c.var.clientIdentity?.();
}
