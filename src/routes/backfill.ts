import { createRoute, z } from "@hono/zod-openapi";
import { BackfillRangeSchema } from "../performance/backfill.js";
import type { Services } from "../services/index.js";
import { adminAuth } from "./auth.js";
import { BODY_LIMITS, limitBody } from "./limits.js";
import { createRouteApp, json, ADMIN_SECURITY as security } from "./route-app.js";
import { errorResponses, NameParams } from "./schemas.js";

const BackfillSummarySchema = z
  .object({
    model: z.string(),
    version: z.string(),
    chosen_via: z
      .string()
      .describe("`requested` when the body named the version, else how the registry chose it"),
    data_cutoff: z
      .string()
      .nullable()
      .describe(
        "Close of the last bar the version was fitted, tuned or selected on; null for the naive baseline",
      ),
    from: z.string(),
    to: z.string(),
    forecasts: z.number().int().describe("Forecasts replayed (recorded now or by an earlier call)"),
    recorded: z.number().int().describe("Records the log did not hold yet"),
    resolved: z.number().int().describe("Forecasts whose target bar the market source has: resolved"),
    unresolved: z.number().int().describe("Forecasts whose target bar is not in the data yet"),
    skipped_before_cutoff: z.number().int().describe("As-of bars at or before data_cutoff: never replayed"),
    skipped_no_data: z
      .number()
      .int()
      .describe(
        "As-of bars after the cutoff the source cannot forecast from (no bar closes there yet, or a gap)",
      ),
    first_as_of: z.string().nullable(),
    last_as_of: z.string().nullable(),
  })
  .openapi("BackfillSummary");

/**
 * `POST /api/ml/models/{name}/backfill` (admin): replays a version's forecasts over a range of as-of bars after its
 * data cutoff, records them as `backfill` and resolves them against the market at once (services.backfill).
 */
export function backfillRoutes(services: Pick<Services, "backfill" | "config">) {
  const guard = adminAuth(services.config.adminToken);
  return createRouteApp().openapi(
    createRoute({
      method: "post",
      path: "/api/ml/models/{name}/backfill",
      tags: ["Model registry (admin)"],
      security,
      summary:
        "Replay a version's forecasts over history after its data cutoff, labelled backfill and resolved",
      description:
        "Each bar whose close lies in [from, to] and strictly after the version's `data_cutoff` gets the forecast `POST /api/ml/serve` would have answered at that close (`as_of`), recorded in the prediction log with `source: backfill` and prediction id `bf-<version>-<as_of ms>` (a rerun records nothing twice), and resolved against the bar closing at its `target_time` when the market source has it. At most 2000 bars a call. A version without `data_cutoff` (bring-your-own, or trained before it was recorded) answers 409: retrain it. The naive baseline (family naive) was fitted on nothing: any range replays.",
      middleware: [
        guard,
        limitBody(BODY_LIMITS.admin, "a backfill request is {from, to, version?}"),
      ] as const,
      request: {
        params: NameParams,
        body: { required: true, content: { "application/json": { schema: BackfillRangeSchema } } },
      },
      responses: {
        200: json(BackfillSummarySchema, "What was replayed, recorded and resolved"),
        ...errorResponses(400, 401, 403, 404, 409, 503, 504),
      },
    }),
    async (c) => {
      const { from, to, version } = c.req.valid("json");
      const iso = (ms: number) => new Date(ms).toISOString();
      const summary = await services.backfill.run({
        model: c.req.valid("param").name,
        from: iso(from),
        to: iso(to),
        ...(version === undefined ? {} : { version }),
      });
      return c.json(summary, 200);
    },
  );
}

/** The backfill route's types, for the CLI's client (`hc<BackfillRoutes>`). */
export type BackfillRoutes = ReturnType<typeof backfillRoutes>;
