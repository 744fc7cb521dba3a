import { createRoute, z } from "@hono/zod-openapi";
import { StartRolloutSchema } from "../rollout/control.js";
import type { Services } from "../services/index.js";
import { AuditEntrySchema, RolloutSchema } from "../storage/pointers.js";
import { adminAuth } from "./auth.js";
import { BODY_LIMITS, limitBody } from "./limits.js";
import { createRouteApp, json, ADMIN_SECURITY as security } from "./route-app.js";
import { errorResponses, NameParams } from "./schemas.js";

const tags = ["Rollouts (admin)"];

// Rebuilt with the OpenAPI zod (the storage schema is plain zod, which may load before the extension).
const RolloutStateSchema = z.object(RolloutSchema.shape).openapi("Rollout");

const RolloutChangeSchema = z
  .object({ rollout: RolloutStateSchema, change: AuditEntrySchema })
  .openapi("RolloutChange");

const RolloutStatusSchema = z
  .object({
    rollout: RolloutStateSchema,
    comparison: z
      .looseObject({})
      .nullable()
      .describe(
        "The live comparison so far (src/rollout/evaluate.ts): each version's distinct resolved outcomes since started_at, their paired errors and what POST …/rollout/evaluate would decide now. It decides nothing",
      ),
  })
  .openapi("RolloutStatus");

/**
 * A model's rollout (admin): `POST` starts one (canary or shadow) against the serving version, `GET` reads it with
 * the live comparison so far, `DELETE` ends it. Serving reads the rollout from the pointers (src/rollout/assign.ts,
 * src/rollout/shadow.ts); the decisions from outcomes are `POST …/rollout/evaluate` and the cron.
 */
export function rolloutRoutes(services: Pick<Services, "rolloutControl" | "rollouts" | "config">) {
  const { rolloutControl, rollouts } = services;
  const guard = adminAuth(services.config.adminToken);
  const path = "/api/ml/models/{name}/rollout";
  return createRouteApp()
    .openapi(
      createRoute({
        method: "post",
        path,
        tags,
        security,
        summary: "Start a canary or shadow rollout of a version against the one serving now",
        description:
          "canary: a stable share of clients (by x-client-id, else address) gets the challenger; shadow: the champion answers and the challenger is logged beside it (README, Rollouts). 409 while one runs or the model is pinned.",
        middleware: [
          guard,
          limitBody(
            BODY_LIMITS.admin,
            "a rollout is {challenger, mode, weight, min_outcomes?, max_duration_seconds?}",
          ),
        ] as const,
        request: {
          params: NameParams,
          body: { required: true, content: { "application/json": { schema: StartRolloutSchema } } },
        },
        responses: {
          201: json(RolloutChangeSchema, "Started: the rollout and its audit entry"),
          ...errorResponses(400, 401, 403, 404, 409, 410, 503),
        },
      }),
      async (c) => {
        const started = await rolloutControl.start(c.req.valid("param").name, c.req.valid("json"));
        return c.json(started, 201);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path,
        tags,
        security,
        summary: "The running rollout and its live comparison so far",
        middleware: [guard] as const,
        request: { params: NameParams },
        responses: {
          200: json(RolloutStatusSchema, "The rollout"),
          ...errorResponses(400, 401, 403, 404, 503),
        },
      }),
      async (c) => {
        const { name } = c.req.valid("param");
        const { rollout } = await rolloutControl.get(name);
        const comparison = await rollouts.compare(name);
        return c.json({ rollout, comparison: comparison as Record<string, unknown> | null }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "delete",
        path,
        tags,
        security,
        summary: "End the running rollout: the champion serves every client again, nothing is promoted",
        middleware: [guard] as const,
        request: { params: NameParams },
        responses: {
          200: json(RolloutChangeSchema, "Ended: the rollout and its audit entry (rollout_end)"),
          ...errorResponses(400, 401, 403, 404, 503),
        },
      }),
      async (c) => c.json(await rolloutControl.stop(c.req.valid("param").name), 200),
    );
}

/** The rollout routes' types, for the CLI's client (`hc<RolloutRoutes>`). */
export type RolloutRoutes = ReturnType<typeof rolloutRoutes>;
