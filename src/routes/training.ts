import { createRoute, z } from "@hono/zod-openapi";
import { UntilSchema } from "../forecast/training.js";
import type { Services } from "../services/index.js";
import { TrainingJobSchema } from "../storage/jobs.js";
import { adminAuth } from "./auth.js";
import { BODY_LIMITS, limitBody } from "./limits.js";
import { createRouteApp, json, ADMIN_SECURITY as security } from "./route-app.js";
import { errorResponses, SymbolId } from "./schemas.js";

/** Listed with the forecasts in the docs: the users' seed API. */
const tags = ["Forecasts"];

/**
 * Training requests and their status, both admin: a job's report tells how the models were trained (data range,
 * metrics, versions), and a request_id travels in URLs, which access logs and proxies keep, so it is no secret
 * (docs/architecture.md). Where no trainer is wired (the edge), a request answers 501 `training_unavailable`; the
 * status of jobs the Node function ran still answers from the shared job store.
 */
export function trainingRoutes(services: Pick<Services, "training" | "config">) {
  const { training } = services;
  const guard = adminAuth(services.config.adminToken);
  return createRouteApp()
    .openapi(
      createRoute({
        method: "post",
        path: "/api/ml/train",
        tags,
        security,
        summary: "Train a symbol's forecasters on the configured market data (admin)",
        middleware: [
          guard,
          limitBody(BODY_LIMITS.train, "a training request is {model_id, until?}"),
        ] as const,
        request: {
          body: {
            required: true,
            content: {
              "application/json": {
                schema: z.object({
                  model_id: SymbolId.describe("The symbol: BTC or ETH"),
                  until: UntilSchema.optional(),
                }),
              },
            },
          },
        },
        responses: {
          202: json(
            z.object({ request_id: z.string(), status: z.string(), status_url: z.string() }),
            "Queued",
          ),
          ...errorResponses(400, 401, 403, 501, 503),
        },
      }),
      async (c) => {
        const { model_id, until } = c.req.valid("json");
        const job = await training.start(model_id, { until });
        const statusUrl = `/api/ml/train/status?request_id=${job.request_id}`;
        c.header("location", statusUrl);
        return c.json({ request_id: job.request_id, status: job.state, status_url: statusUrl }, 202);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/api/ml/train/status",
        tags,
        security,
        summary:
          "State of a training request: queued, running, succeeded (with the reports) or failed (with the error) (admin)",
        middleware: [guard] as const,
        request: { query: z.object({ request_id: z.string().uuid() }) },
        responses: {
          // Rebuilt here: TrainingJobSchema comes from plain zod, and only schemas created after @hono/zod-openapi
          // has extended zod have `.openapi`, which depends on the entry's import order (the edge bundles import
          // the storage adapters first).
          200: json(z.object(TrainingJobSchema.shape).openapi("TrainingJob"), "The job"),
          ...errorResponses(400, 401, 403, 404, 503),
        },
      }),
      async (c) => c.json(await training.status(c.req.valid("query").request_id), 200),
    );
}
