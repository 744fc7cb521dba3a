import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { EdgeMLError } from "../errors.js";

/**
 * Bearer-token guard of the admin routes. No configured token means the admin API is refused: an unset variable
 * must never leave the registry open. The comparison is hono's constant-time one (it hashes both sides first).
 */
export function adminAuth(token: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (!token) {
      throw new EdgeMLError(
        "admin_disabled",
        "the admin API is disabled on this server; set ADMIN_TOKEN (16+ characters) in its environment to enable it",
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    if (!match?.[1]) {
      throw new EdgeMLError(
        "unauthorized",
        'admin routes need the header "Authorization: Bearer <ADMIN_TOKEN>"',
      );
    }
    if (!(await timingSafeEqual(match[1], token))) {
      throw new EdgeMLError("unauthorized", "the admin token is wrong; use the server's ADMIN_TOKEN");
    }
    await next();
  };
}
