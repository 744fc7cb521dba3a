import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { EdgeMLError } from "../errors.js";
import type { Services } from "../services/index.js";
import { EXPOSITION_CONTENT_TYPE, liveGauges, serialize } from "../telemetry/exposition.js";
import { createRouteApp } from "./route-app.js";
import { errorResponses } from "./schemas.js";

/**
 * Bearer-token guard of GET /metrics: METRICS_TOKEN (a scraper's token that grants nothing else) or ADMIN_TOKEN.
 * With neither configured the route answers 503 `metrics_disabled`, not 401: no token the client could send would
 * help, the server's configuration must change (and a scraper then reports the target as down, which it is).
 * Both tokens are compared in constant time, every time, so the answer does not tell which one was close.
 */
export function metricsAuth(tokens: { metricsToken?: string; adminToken?: string }): MiddlewareHandler {
  const accepted = [tokens.metricsToken, tokens.adminToken].filter((t): t is string => Boolean(t));
  return async (c, next) => {
    if (accepted.length === 0) {
      throw new EdgeMLError(
        "metrics_disabled",
        "metrics are disabled on this server; set METRICS_TOKEN (16+ characters) or ADMIN_TOKEN in its environment",
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    if (!match?.[1]) {
      throw new EdgeMLError(
        "unauthorized",
        'GET /metrics needs the header "Authorization: Bearer <METRICS_TOKEN>" (the admin token works too)',
      );
    }
    const given = match[1];
    const results = await Promise.all(accepted.map((token) => timingSafeEqual(given, token)));
    if (!results.some(Boolean)) {
      throw new EdgeMLError(
        "unauthorized",
        "the metrics token is wrong; use the server's METRICS_TOKEN or ADMIN_TOKEN",
      );
    }
    await next();
  };
}

/**
 * GET /metrics: the Prometheus text exposition of the aggregated telemetry (every instance's, from the metrics
 * store) and the live performance gauges. This instance's pending records are written first, so a scrape after a
 * request sees it.
 */
export function metricsRoutes(
  services: Pick<Services, "config" | "telemetry" | "registry" | "performance" | "logger">,
) {
  const { config, telemetry, registry, performance, logger } = services;
  return createRouteApp().openapi(
    createRoute({
      method: "get",
      path: "/metrics",
      tags: ["Metrics"],
      summary: "Prometheus metrics (bearer METRICS_TOKEN or ADMIN_TOKEN)",
      security: [{ adminToken: [] }],
      middleware: [metricsAuth(config)] as const,
      responses: {
        200: {
          description: "Prometheus text exposition format 0.0.4",
          content: { "text/plain": { schema: z.string() } },
        },
        ...errorResponses(401, 503),
      },
    }),
    async (c) => {
      await telemetry.flush();
      let families: Awaited<ReturnType<typeof telemetry.families>>;
      try {
        families = await telemetry.families();
      } catch (error) {
        throw new EdgeMLError("store_unavailable", "the metrics store cannot be read; try again shortly", {
          cause: error,
        });
      }
      const models = await registry.listModelNames().catch(() => [] as string[]);
      const live = await liveGauges(
        models,
        (model) => performance.summary(model, { source: "live" }),
        (message, error) => logger.warn(message, error),
      );
      return c.text(serialize([...families, ...live]), 200, { "content-type": EXPOSITION_CONTENT_TYPE });
    },
  );
}
