import { swaggerUI } from "@hono/swagger-ui";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { type AppConfig, type AppConfigInput, AppConfigSchema, VERSION } from "./config.js";
import { asEdgeMLError, type ErrorCode, redactInternals } from "./errors.js";
import { createForecaster } from "./forecast/service.js";
import { createTrainingService, type TrainingPlan } from "./forecast/training.js";
import type { InferenceEngine } from "./inference/engine.js";
import type { MarketDataSource } from "./market/types.js";
import { createRegistry, type Registry } from "./registry/registry.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerForecastRoutes } from "./routes/forecast.js";
import { registerOipRoutes } from "./routes/oip.js";
import { type ClientAddress, createRateLimit, type RateLimitStats } from "./routes/ratelimit.js";
import type { AppEnv } from "./routes/types.js";
import type { ArtifactStore } from "./storage/artifacts.js";
import type { PredictionCache } from "./storage/cache.js";
import { type Counters, createMemoryCounters } from "./storage/counters.js";
import { createMemoryJobStore, type JobStore } from "./storage/jobs.js";
import { createMemoryCache } from "./storage/memory-cache.js";
import type { PointerStore } from "./storage/pointers.js";
import { createMemoryRateLimiter, type RateLimiter } from "./storage/ratelimit.js";
import { createUsageTracker } from "./tracking/usage.js";

/** Everything the app needs from its runtime. Each runtime entry builds these from its environment. */
export interface AppDeps {
  artifacts: ArtifactStore;
  pointers: PointerStore;
  engine: InferenceEngine;
  /** Bars for forecasts and training: Yahoo Finance in production, a CSV directory offline. */
  market: MarketDataSource;
  /** Prediction cache; defaults to an in-process LRU. */
  cache?: PredictionCache;
  /** Training job state; defaults to process memory. */
  jobs?: JobStore;
  /** Usage counters per model version; default process memory. */
  counters?: Counters;
  /** Per-client rate limits; defaults to process memory (per instance). Upstash in production. */
  rateLimiter?: RateLimiter;
  /**
   * The client's network address, as this runtime knows it (socket address, or the platform's client-IP header):
   * what rate limits count by. Without it only clients with a configured API key are limited.
   */
  clientKey?: ClientAddress;
  /** What `POST /api/ml/train` trains; defaults to DEFAULT_PLAN. */
  trainingPlan?: Partial<TrainingPlan>;
  /**
   * Hands side effects (cache writes, training runs) to the runtime so they finish after the response: the edge's
   * `waitUntil`. Defaults to letting the promise run on, with its failure logged.
   */
  waitUntil?: (work: Promise<unknown>) => void;
  config?: AppConfigInput;
  now?: () => Date;
  /**
   * Base URL serving `swagger-ui-dist/swagger-ui.css` and `swagger-ui-bundle.js` for the docs page; default the
   * jsDelivr CDN. The Node server serves them itself (offline docs).
   */
  docsAssetsUrl?: string;
  /** Where unexpected errors are reported; defaults to console.error. */
  logError?: (error: unknown, context: string) => void;
}

export interface App {
  app: OpenAPIHono<AppEnv>;
  registry: Registry;
  config: AppConfig;
  forecaster: ReturnType<typeof createForecaster>;
  training: ReturnType<typeof createTrainingService>;
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
 * Builds the Hono app from explicit dependencies. Configuration is validated here, so a setting that cannot work
 * throws at start-up with the reason, not on the first request.
 */
export function createApp(deps: AppDeps): App {
  const parsed = AppConfigSchema.safeParse(deps.config ?? {});
  if (!parsed.success) {
    throw new Error(`edgeml: invalid configuration: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  }
  const config = parsed.data;
  const logError = deps.logError ?? ((error, context) => console.error(`edgeml: ${context}`, error));
  const registry = createRegistry({
    artifacts: deps.artifacts,
    pointers: deps.pointers,
    engine: deps.engine,
    config,
    now: deps.now,
  });

  const app = new OpenAPIHono<AppEnv>({
    // zod failures of params, query and JSON bodies: 400 with the issues, in the one error shape.
    defaultHook: (result, c) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
        const first = issues[0];
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

  app.onError((thrown, c: Context) => {
    const error = asEdgeMLError(thrown);
    if (error) {
      if (error.status === 401) c.header("www-authenticate", 'Bearer realm="edgeml admin"');
      if (error.status >= 500) logError(error, `${c.req.method} ${c.req.path}`);
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
    logError(thrown, `${c.req.method} ${c.req.path}`);
    return c.json({ error: "edgeml: unexpected server error; it has been logged", code: "internal" }, 500);
  });

  app.notFound((c) =>
    c.json({ error: `edgeml: no route ${c.req.method} ${c.req.path}; see /docs`, code: "not_found" }, 404),
  );

  // Every deferred promise is observed here, before the runtime's waitUntil sees it: a failure of background work
  // is logged, and can never be an unhandled rejection (which ends a Node process).
  const defer = (work: Promise<unknown>) => {
    const observed = work.catch((error) => logError(error, "background work"));
    deps.waitUntil?.(observed);
  };
  const warn = (message: string, error: unknown) =>
    console.warn(`edgeml: ${message}:`, error instanceof Error ? error.message : error);
  const usage = createUsageTracker({ counters: deps.counters ?? createMemoryCounters(), defer, warn });

  const rateLimit = createRateLimit({
    limiter: deps.rateLimiter ?? createMemoryRateLimiter(),
    limits: {
      public: config.rateLimitPublic,
      admin: config.rateLimitAdmin,
      coldLoad: config.rateLimitColdLoad,
    },
    apiKeys: config.apiKeys,
    clientAddress: deps.clientKey,
    isServing: async (name, version) => (await registry.resolve(name)).meta.version === version,
    defer,
    warn,
  });
  // Registered before every route, so that none is reached around it.
  app.use("*", rateLimit.middleware);

  registerOipRoutes(app, {
    registry,
    usage,
    config,
    serverVersion: VERSION,
    ready: async () => {
      try {
        await deps.engine.init();
        // The registry's cached listing: a probe costs the store at most one list call per listing TTL.
        return await registry.ready();
      } catch (error) {
        logError(error, "readiness check");
        return false;
      }
    },
  });
  registerAdminRoutes(app, { registry, config, usage });

  const forecaster = createForecaster({
    registry,
    market: deps.market,
    cache: deps.cache ?? createMemoryCache(),
    cacheTtlMs: config.cacheTtlMs,
    timeoutMs: config.inferTimeoutMs,
    defer,
    warn,
    usage,
    now: deps.now,
  });
  const training = createTrainingService({
    market: deps.market,
    registry,
    jobs: deps.jobs ?? createMemoryJobStore(),
    defer,
    warn,
    retry: { attempts: config.jobWriteAttempts, backoffMs: config.jobWriteBackoffMs },
    now: deps.now,
    plan: deps.trainingPlan,
  });
  registerForecastRoutes(app, { forecaster, training, adminToken: config.adminToken });

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "edgeml",
      version: VERSION,
      description:
        "ONNX model serving on the edge: the Open Inference Protocol v2 (KServe/Triton REST) and a versioned model registry.",
    },
  });
  app.get("/docs", swaggerUI({ url: "/openapi.json", title: "edgeml API", baseUrl: deps.docsAssetsUrl }));
  app.get("/", (c) => c.redirect("/docs"));

  return { app, registry, config, forecaster, training, rateLimit: { stats: rateLimit.stats } };
}
