import { OpenAPIHono } from "@hono/zod-openapi";
import { noteErrorCode } from "../telemetry/error-code.js";
import type { AppEnv } from "./types.js";

/**
 * A route group: an OpenAPIHono that answers its zod failures (params, query, JSON bodies) 400 with the issues, in
 * the one error shape. The hook belongs to the instance a route is declared on, so every group is made here.
 */
export function createRouteApp(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
        const first = issues[0];
        noteErrorCode(c, "invalid_request");
        return c.json(
          {
            error: `edgeml: invalid request${first ? `: ${first.path ? `${first.path}: ` : ""}${first.message}` : ""}`,
            code: "invalid_request",
            details: issues,
          },
          400,
        );
      }
    },
  });
}

/** A JSON response of an OpenAPI route. */
export const json = <T>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** The admin routes' OpenAPI security requirement: the bearer token (the scheme is registered by the app). */
export const ADMIN_SECURITY = [{ adminToken: [] }];
