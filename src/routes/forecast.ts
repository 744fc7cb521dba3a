import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Forecaster } from "../forecast/service.js";
import type { TrainingService } from "../forecast/training.js";
import { TrainingJobSchema } from "../storage/jobs.js";
import { adminAuth } from "./auth.js";
import { BODY_LIMITS, limitBody } from "./limits.js";
import { errorResponses } from "./schemas.js";
import type { AppEnv } from "./types.js";

const tags = ["Forecasts"];
const json = <T>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const SymbolId = z.string().min(1).max(16).openapi({ example: "BTC" });
const Horizon = z.string().min(1).max(8).openapi({ example: "24h" });

export const ForecastSchema = z
  .object({
    prediction_id: z.string(),
    symbol: z.string(),
    horizon: z.string(),
    model_name: z.string(),
    model_version: z.string(),
    as_of: z.string().describe("Close time of the last bar used"),
    target_time: z.string().describe("When the predicted price is due: as_of + horizon"),
    last_close: z.number(),
    predicted_log_return: z.number(),
    predicted_price: z.number(),
    created_at: z.string(),
    cached: z.boolean(),
  })
  .openapi("Forecast");

const BatchItemSchema = z
  .union([
    z.object({ symbol: z.string(), ok: z.literal(true), forecast: ForecastSchema, cache: z.string() }),
    z.object({
      symbol: z.string(),
      ok: z.literal(false),
      error: z.object({ code: z.string(), message: z.string(), status: z.number() }),
    }),
  ])
  .openapi("BatchItem");

/** The users' seed API: serve, batch, train and training status, with their paths and bodies kept. */
export function registerForecastRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { forecaster: Forecaster; training: TrainingService; adminToken: string | undefined },
): void {
  const { forecaster, training } = deps;

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/ml/serve",
      tags,
      summary: "Forecast one symbol",
      middleware: [limitBody(BODY_LIMITS.forecast, "a forecast request is {symbol, horizon}")] as const,
      request: {
        body: {
          required: true,
          content: {
            "application/json": { schema: z.object({ symbol: SymbolId, horizon: Horizon.default("24h") }) },
          },
        },
      },
      responses: {
        200: {
          ...json(ForecastSchema, "The forecast"),
          headers: z.object({ "x-model-version": z.string(), "x-cache": z.enum(["HIT", "MISS", "BYPASS"]) }),
        },
        ...errorResponses(400, 503, 504),
      },
    }),
    async (c) => {
      const { symbol, horizon } = c.req.valid("json");
      const { forecast, cache } = await forecaster.forecast(symbol, horizon);
      c.header("x-model-version", forecast.model_version);
      c.header("x-cache", cache);
      return c.json(forecast, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/ml/batch",
      tags,
      summary: "Forecast several symbols; each succeeds or fails on its own",
      middleware: [limitBody(BODY_LIMITS.batch, "a batch is {symbols: [...], horizon}")] as const,
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({
                symbols: z.array(SymbolId).min(1).max(20),
                horizon: Horizon.default("24h"),
              }),
            },
          },
        },
      },
      responses: {
        200: json(z.object({ horizon: z.string(), results: z.array(BatchItemSchema) }), "Per-symbol results"),
        ...errorResponses(400),
      },
    }),
    async (c) => {
      const { symbols, horizon } = c.req.valid("json");
      return c.json({ horizon, results: await forecaster.batch(symbols, horizon) }, 200);
    },
  );

  const guard = adminAuth(deps.adminToken);
  app.use("/api/ml/train", guard);
  // Admin too: a job's report tells how the models were trained (data range, metrics, versions), and a request_id
  // travels in URLs, which access logs and proxies keep, so it is no secret (docs/architecture.md).
  app.use("/api/ml/train/status", guard);
  app.openapi(
    createRoute({
      method: "post",
      path: "/api/ml/train",
      tags,
      security: [{ adminToken: [] }],
      summary: "Train a symbol's forecasters on the configured market data (admin)",
      middleware: [limitBody(BODY_LIMITS.train, "a training request is {model_id}")] as const,
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({ model_id: SymbolId.describe("The symbol: BTC or ETH") }),
            },
          },
        },
      },
      responses: {
        202: json(z.object({ request_id: z.string(), status: z.string(), status_url: z.string() }), "Queued"),
        ...errorResponses(400, 401, 403, 503),
      },
    }),
    async (c) => {
      const job = await training.start(c.req.valid("json").model_id);
      const statusUrl = `/api/ml/train/status?request_id=${job.request_id}`;
      c.header("location", statusUrl);
      return c.json({ request_id: job.request_id, status: job.state, status_url: statusUrl }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/ml/train/status",
      tags,
      security: [{ adminToken: [] }],
      summary:
        "State of a training request: queued, running, succeeded (with the reports) or failed (with the error) (admin)",
      request: { query: z.object({ request_id: z.string().uuid() }) },
      responses: {
        // Rebuilt here: TrainingJobSchema comes from plain zod, and only schemas created after @hono/zod-openapi has
        // extended zod have `.openapi`, which depends on the entry's import order (the edge bundles import the
        // storage adapters first).
        200: json(z.object(TrainingJobSchema.shape).openapi("TrainingJob"), "The job"),
        ...errorResponses(400, 401, 403, 404, 503),
      },
    }),
    async (c) => c.json(await training.status(c.req.valid("query").request_id), 200),
  );
}
