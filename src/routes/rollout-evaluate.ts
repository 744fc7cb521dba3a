import { createRoute, z } from "@hono/zod-openapi";
import { EvaluateRequestSchema } from "../rollout/evaluate.js";
import type { Services } from "../services/index.js";
import { adminAuth } from "./auth.js";
import { BODY_LIMITS, limitBody } from "./limits.js";
import { createRouteApp, json, ADMIN_SECURITY as security } from "./route-app.js";
import { errorResponses, NameParams } from "./schemas.js";

const Evidence = z
  .record(z.string(), z.unknown())
  .describe(
    "The numbers the decision used, as written to the audit entry's rollout_evidence: test, alpha, source, pairing, window, outcomes per version, pairs, mean APE each, DM statistic, p-values",
  );

const AuditEntry = z
  .record(z.string(), z.unknown())
  .nullable()
  .describe("The audit entry written; null: none");

const RolloutVerdictSchema = z
  .object({
    rollout: z.record(z.string(), z.unknown()).describe("The rollout pointer evaluated"),
    action: z.enum(["promote", "end", "continue"]),
    reason: z.enum([
      "challenger_better",
      "challenger_worse",
      "timeout",
      "too_few_outcomes",
      "not_significant",
      "test_unavailable",
    ]),
    summary: z.string(),
    evidence: Evidence,
    written: AuditEntry,
  })
  .openapi("RolloutVerdict");

const RollbackVerdictSchema = z
  .object({
    champion: z.string().nullable(),
    action: z.enum(["rollback", "keep", "skip", "alert"]),
    to: z.string().nullable(),
    summary: z.string(),
    evidence: Evidence.nullable(),
    written: AuditEntry,
  })
  .openapi("RollbackVerdict");

const EvaluationSchema = z
  .object({
    model: z.string(),
    dry_run: z.boolean(),
    rollout: RolloutVerdictSchema.nullable().describe("Null when the model has no rollout running"),
    rollback: RollbackVerdictSchema,
  })
  .openapi("RolloutEvaluation");

const DryRunQuery = z.object({
  dry_run: z
    .enum(["true", "false"])
    .transform((v) => v === "true")
    .optional()
    .describe("true: answer what would be decided, write nothing"),
});

/**
 * `POST /api/ml/models/{name}/rollout/evaluate` (admin): the rollout's comparison decided now (promote, end or
 * continue) and the champion's rollback check, each written with its audit entry unless `?dry_run=true`. Mounted by
 * the app and by the Vercel Node function (vercel.json routes the path there): the decisions need the test, which
 * the edge does not carry (501 `evaluation_unavailable`).
 */
export function rolloutEvaluateRoutes(services: Pick<Services, "rollouts" | "config">) {
  const guard = adminAuth(services.config.adminToken);
  return createRouteApp().openapi(
    createRoute({
      method: "post",
      path: "/api/ml/models/{name}/rollout/evaluate",
      tags: ["Rollouts (admin)"],
      security,
      summary:
        "Decide a rollout from outcomes now: promote, end or continue; and the champion's rollback check",
      description:
        "Pairs the challenger's resolved outcomes with the champion's (shadow: by shadow_of; canary and replayed sources: by target bar; copies of one cached forecast count once) and, once there are min_outcomes pairs, runs the selection policy's one-sided Diebold–Mariano tests on the absolute percentage errors at α = 0.05: significantly better promotes the challenger, significantly worse ends the rollout; past max_duration_seconds it ends undecided (timeout). Then the champion's live outcomes are tested against naive: significantly worse rolls it back to the previous champion that is not, or to the naive version. Each decision is written to the audit log with its numbers. By default only live and shadow records since the rollout started count; `source` backfill or replay with `from`/`to` (bounds on served_at; a backfill is served at its as-of) decides on replayed history.",
      middleware: [
        guard,
        limitBody(BODY_LIMITS.admin, "an evaluation request is {source?, from?, to?}"),
      ] as const,
      request: {
        params: NameParams,
        query: DryRunQuery,
        body: { required: false, content: { "application/json": { schema: EvaluateRequestSchema } } },
      },
      responses: {
        200: json(EvaluationSchema, "What was decided, with the numbers, and the audit entries written"),
        ...errorResponses(400, 401, 403, 404, 501, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid("json") ?? {};
      const { dry_run } = c.req.valid("query");
      const result = await services.rollouts.evaluate(c.req.valid("param").name, {
        ...body,
        dryRun: dry_run === true,
      });
      return c.json(result, 200);
    },
  );
}

/** The route's types, for the CLI's client (`hc<RolloutEvaluateRoutes>`). */
export type RolloutEvaluateRoutes = ReturnType<typeof rolloutEvaluateRoutes>;
