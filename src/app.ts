import { swaggerUI } from "@hono/swagger-ui";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { type AppConfig, VERSION } from "./config.js";
import type { Forecaster } from "./forecast/service.js";
import type { TrainingService } from "./forecast/training.js";
import { createHttpApp, type HttpOptions } from "./http.js";
import type { Registry } from "./registry/registry.js";
import { adminRoutes } from "./routes/admin.js";
import { backfillRoutes } from "./routes/backfill.js";
import { forecastRoutes } from "./routes/forecast.js";
import { metricsRoutes } from "./routes/metrics.js";
import { oipRoutes } from "./routes/oip.js";
import { performanceRoutes } from "./routes/performance.js";
import type { RateLimitStats } from "./routes/ratelimit.js";
import { rolloutRoutes } from "./routes/rollout.js";
import { rolloutEvaluateRoutes } from "./routes/rollout-evaluate.js";
import { trainingRoutes } from "./routes/training.js";
import type { AppEnv } from "./routes/types.js";
import { createServices, type Ports, type ServiceOptions, type Services } from "./services/index.js";

export type { HttpOptions } from "./http.js";

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

/**
 * The whole API on top of the services: every route group (OIP, registry administration, forecasts, training) as a
 * sub-app, the OpenAPI document and its docs page. Called with AppDeps (tests, benchmarks), it builds the services
 * first.
 */
export function createApp(services: Services, http?: HttpOptions): App;
export function createApp(deps: AppDeps): App;
export function createApp(input: Services | AppDeps, options?: HttpOptions): App {
  const services = isServices(input) ? input : createServices(input, input);
  const http: HttpOptions = isServices(input) ? (options ?? {}) : input;
  const { app, rateLimit } = createHttpApp(services, http, [
    oipRoutes(services),
    adminRoutes(services),
    backfillRoutes(services),
    rolloutRoutes(services),
    rolloutEvaluateRoutes(services),
    forecastRoutes(services),
    performanceRoutes(services),
    metricsRoutes(services),
    trainingRoutes(services),
  ]);
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
  return {
    app,
    services,
    registry: services.registry,
    config: services.config,
    forecaster: services.forecaster,
    training: services.training,
    rateLimit,
  };
}

function isServices(input: Services | AppDeps): input is Services {
  return "registry" in input && "forecaster" in input;
}
