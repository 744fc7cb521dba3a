import { swaggerUI } from "@hono/swagger-ui";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { type AppConfig, VERSION } from "./config.js";
import { asEdgeMLError, type ErrorCode, redactInternals } from "./errors.js";
import type { Forecaster } from "./forecast/service.js";
import type { TrainingService } from "./forecast/training.js";
import type { Registry } from "./registry/registry.js";
import { adminRoutes } from "./routes/admin.js";
import { forecastRoutes } from "./routes/forecast.js";
import { oipRoutes } from "./routes/oip.js";
import { type ClientAddress, createRateLimit, type RateLimitStats } from "./routes/ratelimit.js";
import { createRouteApp } from "./routes/route-app.js";
import { trainingRoutes } from "./routes/training.js";
import type { AppEnv } from "./routes/types.js";
import { createServices, type Ports, type ServiceOptions, type Services } from "./services/index.js";
import { createMemoryRateLimiter, type RateLimiter } from "./storage/ratelimit.js";

/** The route groups, each a sub-app: what a deployment serves can be a subset (the training function's). */
export type RouteGroup = "oip" | "admin" | "forecasts" | "training";
const ALL_GROUPS: readonly RouteGroup[] = ["oip", "admin", "forecasts", "training"];

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
  /** The route groups served; default all, with the OpenAPI document and the docs page. */
  groups?: readonly RouteGroup[];
}

/** Everything at once, for tests and benchmarks: the ports, the services' options and the HTTP options. */
export type AppDeps = Ports & ServiceOptions & HttpOptions;

export interface App {
  app: OpenAPIHono<AppEnv>;
  services: Services;
  registry: Registry;
  config: AppConfig;
  forecaster: Forecaster;
  training: TrainingService;
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
 * The HTTP app on top of the services: the rate limit before every route, the route groups mounted as sub-apps,
 * one error handler that maps every failure to `{ error, code, details? }`, the OpenAPI document and its docs page.
 * Called with AppDeps (tests, benchmarks), it builds the services first.
 */
export function createApp(services: Services, http?: HttpOptions): App;
export function createApp(deps: AppDeps): App;
export function createApp(input: Services | AppDeps, options?: HttpOptions): App {
  const services = isServices(input) ? input : createServices(input, input);
  const http: HttpOptions = isServices(input) ? (options ?? {}) : input;
  const { config, logger, registry } = services;
  const app = createRouteApp();

  app.onError((thrown, c: Context) => {
    const error = asEdgeMLError(thrown);
    const where = `${c.req.method} ${c.req.path}`;
    if (error) {
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
      return c.json({ error: `edgeml: ${thrown.message || "invalid request"}`, code }, thrown.status);
    }
    logger.error(where, thrown);
    return c.json({ error: "edgeml: unexpected server error; it has been logged", code: "internal" }, 500);
  });

  app.notFound((c) =>
    c.json({ error: `edgeml: no route ${c.req.method} ${c.req.path}; see /docs`, code: "not_found" }, 404),
  );

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
  // Registered before the route groups are mounted, so that no route is reached around it.
  app.use("*", rateLimit.middleware);

  const groups = new Set(http.groups ?? ALL_GROUPS);
  if (groups.has("oip")) app.route("/", oipRoutes(services));
  if (groups.has("admin")) app.route("/", adminRoutes(services));
  if (groups.has("forecasts")) app.route("/", forecastRoutes(services));
  if (groups.has("training")) app.route("/", trainingRoutes(services));

  if (!http.groups) {
    app.doc31("/openapi.json", {
      openapi: "3.1.0",
      info: {
        title: "edgeml",
        version: VERSION,
        description:
          "ONNX model serving on the edge: the Open Inference Protocol v2 (KServe/Triton REST) and a versioned model registry.",
      },
    });
    app.get("/docs", swaggerUI({ url: "/openapi.json", title: "edgeml API", baseUrl: http.docsAssetsUrl }));
    app.get("/", (c) => c.redirect("/docs"));
  }

  return {
    app,
    services,
    registry,
    config,
    forecaster: services.forecaster,
    training: services.training,
    rateLimit: { stats: rateLimit.stats },
  };
}

function isServices(input: Services | AppDeps): input is Services {
  return "registry" in input && "forecaster" in input;
}
