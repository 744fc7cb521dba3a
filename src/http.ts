import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { asEdgeMLError, type ErrorCode, redactInternals } from "./errors.js";
import { clientIdentityMiddleware } from "./rollout/client-key.js";
import {
  type ClientAddress,
  createClientIdentity,
  createRateLimit,
  type RateLimitStats,
} from "./routes/ratelimit.js";
import { createRouteApp } from "./routes/route-app.js";
import type { AppEnv } from "./routes/types.js";
import type { Services } from "./services/index.js";
import { createMemoryRateLimiter, type RateLimiter } from "./storage/ratelimit.js";
import { noteErrorCode } from "./telemetry/error-code.js";

/** What the HTTP layer needs beyond the services: who is calling, how often they may, where the docs' assets are. */
export interface HttpOptions {
  /** Per-client rate limits; defaults to process memory (per instance). Upstash in production. */
  rateLimiter?: RateLimiter;
  /**
   * The client's network address, as this runtime knows it (socket address, or the platform's client-IP header):
   * what rate limits count by. Without it only clients with a configured API key are limited.
   */
  clientKey?: ClientAddress;
  /**
   * Base URL serving `swagger-ui-dist/swagger-ui.css` and `swagger-ui-bundle.js` for the docs page; default the
   * jsDelivr CDN. The Node server serves them itself (offline docs).
   */
  docsAssetsUrl?: string;
}

export interface HttpApp {
  app: OpenAPIHono<AppEnv>;
  /** Requests refused and limiter failures let through, since start. */
  rateLimit: { stats(): RateLimitStats };
}

const CODE_OF_STATUS: Partial<Record<number, ErrorCode>> = {
  400: "invalid_request",
  401: "unauthorized",
  404: "not_found",
  413: "payload_too_large",
  415: "unsupported_media_type",
};

/**
 * An HTTP app serving `groups` (route sub-apps built on the services): the rate limit before every route, the groups
 * mounted with `app.route()`, one error handler that maps every failure to `{ error, code, details? }`, a 404 that
 * says where the docs are. `createApp` serves every group; the training function only training's.
 */
export function createHttpApp(
  services: Services,
  http: HttpOptions,
  groups: readonly OpenAPIHono<AppEnv>[],
): HttpApp {
  const { config, logger, registry } = services;
  const app = createRouteApp();

  app.onError((thrown, c: Context) => {
    const error = asEdgeMLError(thrown);
    const where = `${c.req.method} ${c.req.path}`;
    if (error) {
      noteErrorCode(c, error.code);
      if (error.status === 401) c.header("www-authenticate", 'Bearer realm="edgeml admin"');
      if (error.status >= 500) logger.error(where, error);
      return c.json(
        {
          error: redactInternals(error.message, error.status),
          code: error.code,
          // 5xx details describe the server's state, not the request: they go to the log only.
          ...(error.details !== undefined && error.status < 500 && { details: error.details }),
        },
        error.status,
      );
    }
    if (thrown instanceof HTTPException && thrown.status < 500) {
      const code = CODE_OF_STATUS[thrown.status] ?? "invalid_request";
      noteErrorCode(c, code);
      return c.json({ error: `edgeml: ${thrown.message || "invalid request"}`, code }, thrown.status);
    }
    logger.error(where, thrown);
    noteErrorCode(c, "internal");
    return c.json({ error: "edgeml: unexpected server error; it has been logged", code: "internal" }, 500);
  });

  app.notFound((c) => {
    noteErrorCode(c, "not_found");
    return c.json(
      { error: `edgeml: no route ${c.req.method} ${c.req.path}; see /docs`, code: "not_found" },
      404,
    );
  });

  const rateLimit = createRateLimit({
    limiter: http.rateLimiter ?? createMemoryRateLimiter(),
    limits: {
      public: config.rateLimitPublic,
      admin: config.rateLimitAdmin,
      coldLoad: config.rateLimitColdLoad,
    },
    apiKeys: config.apiKeys,
    clientAddress: http.clientKey,
    isServing: async (name, version) => (await registry.resolve(name)).meta.version === version,
    defer: services.defer,
    warn: (message, error) => logger.warn(message, error),
  });
  // First of all: every answer is counted, refusals of the rate limit included.
  app.use("*", services.telemetry.middleware);
  // Registered before the route groups are mounted, so that no route is reached around it.
  app.use("*", rateLimit.middleware);
  // A canary keys clients as the rate limit counts them (when they send no x-client-id).
  app.use("*", clientIdentityMiddleware(createClientIdentity(config.apiKeys, http.clientKey)));

  for (const group of groups) app.route("/", group);
  return { app, rateLimit: { stats: rateLimit.stats } };
}
