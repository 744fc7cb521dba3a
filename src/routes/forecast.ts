import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { AsOfSchema } from "../forecast/as-of.js";
import { INTERVAL_LEVELS, isIntervalLevel } from "../forecast/interval.js";
import { ClientIdSchema } from "../rollout/assign.js";
import { clientKeyOf } from "../rollout/client-key.js";
import type { Services } from "../services/index.js";
import { fastServe, type ServeBody } from "./fast-serve.js";
import { BODY_LIMITS, limitBody } from "./limits.js";
import { createRouteApp, json } from "./route-app.js";
import { errorResponses, SymbolId } from "./schemas.js";
import type { AppEnv } from "./types.js";

const tags = ["Forecasts"];
/** `x-client-id`: what a canary rollout keys the client by (src/rollout/assign.ts). */
const ClientHeaders = z.object({ "x-client-id": ClientIdSchema.optional() });
const Horizon = z.string().min(1).max(8).openapi({ example: "24h" });
const AsOf = AsOfSchema.optional().openapi({ example: "2026-03-20" });
const levels = `one of the calibrated levels ${INTERVAL_LEVELS.join(", ")} (a fraction: 0.8 is the central 80 % interval)`;
const IntervalLevel = z
  .number({ error: `must be a number, ${levels}` })
  .refine(isIntervalLevel, { message: `must be ${levels}` })
  .optional()
  .describe(
    `Level of the forecast's interval, one of ${INTERVAL_LEVELS.join(", ")}; default FORECAST_INTERVAL_LEVEL (0.8)`,
  )
  .openapi({ example: 0.8 });

export const ForecastSchema = z
  .object({
    prediction_id: z.string(),
    symbol: z.string(),
    horizon: z.string(),
    model_name: z.string(),
    model_version: z.string(),
    chosen_via: z
      .string()
      .describe(
        "How the version was chosen: requested, pinned, canary (a rollout's challenger, for a stable share of clients), champion, policy, naive, best…",
      ),
    family: z
      .string()
      .nullable()
      .describe("The version's model family (its tags.family: gbdt, ridge, ...), null if unknown"),
    as_of: z.string().describe("Close time of the last bar used"),
    data_age_seconds: z
      .number()
      .describe("Seconds from as_of to this answer: how old the data behind the forecast is"),
    target_time: z.string().describe("When the predicted price is due: as_of + horizon"),
    last_close: z.number(),
    predicted_log_return: z.number(),
    predicted_price: z.number(),
    created_at: z.string(),
    cached: z.boolean(),
    beats_naive: z
      .boolean()
      .describe(
        "Whether the serving version beats the naive no-change forecast with significance: its one-sided Diebold–Mariano p-value on walk-forward folds is below 0.05. False for the naive version (what serves when nothing beats it) and for versions without a walk-forward evaluation",
      ),
    evidence: z
      .object({
        p_value: z
          .number()
          .nullable()
          .describe("The version's one-sided Diebold–Mariano p-value against naive"),
        window: z
          .object({ from: z.string(), to: z.string() })
          .nullable()
          .describe("The walk-forward span: first fold's start .. last fold's end"),
        folds: z.number().int().describe("Walk-forward folds"),
      })
      .describe("The serving version's walk-forward evidence behind beats_naive"),
    interval: z
      .object({
        level: z.number().describe("A fraction: 0.8 is the central 80 % interval"),
        lower: z.number(),
        upper: z.number(),
      })
      .nullable()
      .describe(
        "Central prediction interval of the price at target_time: split-conformal on volatility-scaled residuals the version never trained on (docs/forecasting.md). Null for a version without calibration",
      ),
  })
  .openapi("Forecast");

/** The serve route's body; its fast path (./fast-serve.ts) takes a strict subset of it. */
export const ServeRequestSchema = z.object({
  symbol: SymbolId,
  horizon: Horizon.default("24h"),
  as_of: AsOf,
  interval_level: IntervalLevel,
});

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

/** The users' seed API: serve and batch, with their paths and bodies kept (training: ./training.ts). */
export function forecastRoutes(services: Pick<Services, "forecaster">) {
  const { forecaster } = services;
  // The serve route's operation and response, for its handler and its fast path (./fast-serve.ts) alike.
  const serve = async (c: Context<AppEnv>, body: ServeBody) => {
    const { forecast, cache } = await forecaster.forecast(body.symbol, body.horizon, {
      asOf: body.as_of,
      intervalLevel: body.interval_level,
      clientKey: await clientKeyOf(c),
    });
    c.header("x-model-version", forecast.model_version);
    c.header("x-chosen-via", forecast.chosen_via);
    c.header("x-cache", cache);
    return c.json(forecast, 200);
  };
  return createRouteApp()
    .openapi(
      createRoute({
        method: "post",
        path: "/api/ml/serve",
        tags,
        summary: "Forecast one symbol",
        middleware: [
          limitBody(BODY_LIMITS.forecast, "a forecast request is {symbol, horizon, as_of?, interval_level?}"),
          fastServe(serve),
        ] as const,
        request: {
          body: {
            required: true,
            content: {
              "application/json": {
                schema: ServeRequestSchema,
              },
            },
          },
          headers: ClientHeaders,
        },
        responses: {
          200: {
            ...json(ForecastSchema, "The forecast"),
            headers: z.object({
              "x-model-version": z.string(),
              "x-chosen-via": z.string(),
              "x-cache": z.enum(["HIT", "MISS", "BYPASS"]),
            }),
          },
          ...errorResponses(400, 503, 504),
        },
      }),
      async (c) => serve(c, c.req.valid("json")),
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/api/ml/batch",
        tags,
        summary: "Forecast several symbols; each succeeds or fails on its own",
        middleware: [
          limitBody(BODY_LIMITS.batch, "a batch is {symbols: [...], horizon, as_of?, interval_level?}"),
        ] as const,
        request: {
          body: {
            required: true,
            content: {
              "application/json": {
                schema: z.object({
                  symbols: z.array(SymbolId).min(1).max(20),
                  horizon: Horizon.default("24h"),
                  as_of: AsOf,
                  interval_level: IntervalLevel,
                }),
              },
            },
          },
          headers: ClientHeaders,
        },
        responses: {
          200: json(
            z.object({ horizon: z.string(), results: z.array(BatchItemSchema) }),
            "Per-symbol results",
          ),
          ...errorResponses(400),
        },
      }),
      async (c) => {
        const { symbols, horizon, as_of, interval_level } = c.req.valid("json");
        const results = await forecaster.batch(symbols, horizon, {
          asOf: as_of,
          intervalLevel: interval_level,
          clientKey: await clientKeyOf(c),
        });
        return c.json({ horizon, results }, 200);
      },
    );
}
