import { createRoute, z } from "@hono/zod-openapi";
import { WINDOW_NAMES } from "../performance/figures.js";
import { MAX_SERIES_POINTS } from "../performance/service.js";
import type { Services } from "../services/index.js";
import {
  ManualTrackingSchema,
  PREDICTION_LOG_DEFAULTS,
  PredictionEntrySchema,
  PredictionOutcomeSchema,
  PredictionSourceSchema,
} from "../storage/prediction-log.js";
import { adminAuth } from "./auth.js";
import { BODY_LIMITS, limitBody } from "./limits.js";
import { createRouteApp, json, ADMIN_SECURITY as security } from "./route-app.js";
import { errorResponses } from "./schemas.js";

const tags = ["Performance"];

/** `BTC` (the symbol's 24h forecaster) or a registry name such as `BTC-24h`. */
const ModelId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "a symbol (BTC) or a registry model name (BTC-24h)")
  .openapi({ param: { name: "model_id", in: "path" }, example: "BTC" });
const ModelParams = z.object({ model_id: ModelId });

const Source = PredictionSourceSchema.default("live").openapi({
  description:
    "Which forecasts to count: live (served), backfill (replayed out of sample), replay or shadow. Never mixed.",
});

const nullableNumber = z.number().nullable();
const FiguresSchema = z
  .object({
    window: z.enum(WINDOW_NAMES as [string, ...string[]]),
    from: z.string().nullable().describe("Start of the window (exclusive) by target_time; null for all"),
    predictions: z.number().int(),
    resolved: z.number().int(),
    mape: nullableNumber.describe("Mean absolute percentage error, percent"),
    naive_mape: nullableNumber.describe(
      "MAPE of the naive forecast (last close) on the same forecasts, percent",
    ),
    avg_error_pct: nullableNumber.describe("The users' seed name for mape"),
    skill: nullableNumber.describe("1 − mape / naive_mape: below 0 the model loses to naive"),
    direction_accuracy: nullableNumber,
  })
  .openapi("PerformanceFigures");
const Windows = z.object(Object.fromEntries(WINDOW_NAMES.map((w) => [w, FiguresSchema])));

const Percentiles = z
  .object({ count: z.number(), p50: z.number(), p90: z.number(), p99: z.number() })
  .nullable();
const ServingSchema = z
  .object({
    requests: z.number(),
    errors: z.number(),
    error_rate: nullableNumber,
    errors_by_code: z.record(z.string(), z.number()),
    latency_ms: z.object({ serve: Percentiles, infer: Percentiles }),
    cache: z.object({ hits: z.number(), misses: z.number(), hit_rate: nullableNumber }),
    cold_starts: z.number(),
  })
  .nullable()
  .openapi("ServingFigures");

const SummarySchema = FiguresSchema.omit({ window: true, from: true })
  .extend({
    model: z.string(),
    source: PredictionSourceSchema,
    generated_at: z.string(),
    window_end: z
      .string()
      .describe("Windows count back from here: now for live, else the latest resolved target"),
    windows: Windows,
    versions: z.array(z.object({ version: z.string(), windows: Windows, serving: ServingSchema })),
    serving: ServingSchema,
    resolution: z.object({
      pending: z.number().int().describe("Due (target time passed) and not yet resolved"),
      open: z.number().int().describe("Not due yet"),
      last_run: z
        .object({
          resolved: z.number(),
          pending: z.number(),
          checked_at: z.string(),
          error: z.string().optional(),
        })
        .describe("The latest resolution run, this request's or one shared with it within the minute"),
    }),
  })
  .openapi("PerformanceSummary");

const RecordSchema = z
  .object({
    ...PredictionEntrySchema.shape,
    ...PredictionOutcomeSchema.partial().shape,
    manual: ManualTrackingSchema.optional(),
  })
  .openapi("PredictionRecord");

const SeriesSchema = z
  .object({
    model: z.string(),
    source: PredictionSourceSchema,
    points: z.array(
      RecordSchema.pick({
        prediction_id: true,
        version: true,
        as_of: true,
        target_time: true,
        last_close: true,
        predicted_price: true,
        actual_price: true,
      }),
    ),
    skill: z.array(
      z.object({
        version: z.string(),
        target_time: z.string(),
        skill: nullableNumber,
        mape: z.number(),
        naive_mape: z.number(),
        resolved: z.number(),
      }),
    ),
  })
  .openapi("PerformanceSeries");

const boolQuery = z
  .enum(["true", "false"])
  .transform((v) => v === "true")
  .optional();
const utcQuery = z.iso.datetime().optional().describe("ISO 8601 UTC, on target_time");

const ListQuery = z.object({
  version: z.string().max(64).optional(),
  resolved: boolQuery,
  source: PredictionSourceSchema.optional(),
  from: utcQuery,
  to: utcQuery,
  limit: z.coerce.number().int().min(1).max(PREDICTION_LOG_DEFAULTS.maxPageSize).optional(),
  cursor: z.string().max(512).optional().describe("The previous page's next_cursor"),
});

const TrackBody = z
  .object({
    model_id: ModelId.openapi({ param: undefined }),
    prediction_id: z.string().min(1).max(128),
    predicted_value: z.number().finite(),
    actual_value: z.number().finite(),
  })
  .openapi("TrackRequest");

/**
 * The performance tracker's routes: the summary and the chart series are public (as in the users' spec); the raw
 * log and manual reports are admin.
 */
export function performanceRoutes(services: Pick<Services, "performance" | "predictionLog" | "config">) {
  const { performance, predictionLog, config } = services;
  const guard = adminAuth(config.adminToken);
  return createRouteApp()
    .openapi(
      createRoute({
        method: "get",
        path: "/api/ml/performance/{model_id}",
        tags,
        summary:
          "Live performance of a model: accuracy against outcomes, per version and window, and serving",
        description:
          "Resolves what is due first (at most once per model per minute). Figures are computed from the prediction log.",
        request: { params: ModelParams, query: z.object({ source: Source }) },
        responses: { 200: json(SummarySchema, "Figures"), ...errorResponses(400, 404, 503) },
      }),
      async (c) => {
        const { model_id } = c.req.valid("param");
        const { source } = c.req.valid("query");
        return c.json(await performance.summary(model_id, { source }), 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/api/ml/performance/{model_id}/series",
        tags,
        summary: "Predicted vs actual prices and rolling 30-day skill per version, for charts",
        request: {
          params: ModelParams,
          query: z.object({
            source: Source,
            version: z.string().max(64).optional(),
            limit: z.coerce.number().int().min(1).max(MAX_SERIES_POINTS).default(500),
          }),
        },
        responses: { 200: json(SeriesSchema, "Series"), ...errorResponses(400, 404, 503) },
      }),
      async (c) => {
        const { model_id } = c.req.valid("param");
        return c.json(await performance.series(model_id, c.req.valid("query")), 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/api/ml/performance/{model_id}/predictions",
        tags,
        security,
        summary: "The prediction log of a model, newest target first, paged",
        middleware: [guard] as const,
        request: { params: ModelParams, query: ListQuery },
        responses: {
          200: json(
            z.object({
              model: z.string(),
              items: z.array(RecordSchema),
              next_cursor: z.string().optional(),
            }),
            "One page",
          ),
          ...errorResponses(400, 401, 403, 404, 503),
        },
      }),
      async (c) => {
        const model = await performance.modelOf(c.req.valid("param").model_id);
        const page = await predictionLog.list(model, c.req.valid("query"));
        return c.json({ model, ...page }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/api/ml/performance/track",
        tags,
        security,
        summary:
          "Report an actual value for a forecast by hand (kept beside the market's outcome, never over it)",
        middleware: [
          guard,
          limitBody(BODY_LIMITS.admin, "a report is {model_id, prediction_id, …}"),
        ] as const,
        request: { body: { required: true, content: { "application/json": { schema: TrackBody } } } },
        responses: {
          200: json(
            z.object({
              model: z.string(),
              prediction_id: z.string(),
              records: z.array(RecordSchema),
            }),
            "Stored on every version's record of the prediction",
          ),
          ...errorResponses(400, 401, 403, 404, 413, 503),
        },
      }),
      async (c) => {
        const { model_id, prediction_id, predicted_value, actual_value } = c.req.valid("json");
        const records = await performance.track(model_id, prediction_id, { predicted_value, actual_value });
        return c.json({ model: records[0]?.model ?? model_id, prediction_id, records }, 200);
      },
    );
}
