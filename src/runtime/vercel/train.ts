import { Hono } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppDeps } from "../../app.js";
import { BearerSecret } from "../../config.js";
import { asEdgeMLError, ERROR_STATUS, type ErrorCode, errorMessage } from "../../errors.js";
import { DEFAULT_HORIZON, forecastModelName } from "../../forecast/horizon.js";
import { createHttpApp } from "../../http.js";
import { rolloutEvaluateRoutes } from "../../routes/rollout-evaluate.js";
import { trainingRoutes } from "../../routes/training.js";
import { createServices } from "../../services/index.js";
import { createMemoryJobStore, type TrainingJob } from "../../storage/jobs.js";
import { dieboldMariano } from "../../training/diebold-mariano.js";
import { trainForecaster } from "../../training/forecaster.js";

/** The path Vercel cron calls (vercel.json `crons`), served by this Node function. */
export const CRON_PATH = "/api/train";

/** What the daily run retrains: every symbol the users forecast. */
export const CRON_SYMBOLS = ["BTC", "ETH"] as const;

export interface TrainFunctionOptions {
  deps: AppDeps;
  /** `CRON_SECRET`: Vercel sends it as `Authorization: Bearer <secret>`. Unset refuses every call. */
  cronSecret: string | undefined;
  /** When set, training cannot work in this deployment (say, no writable store); the cron answers 503 with it. */
  trainingUnavailable?: string;
  symbols?: readonly string[];
}

function unauthorized(message: string): Response {
  return Response.json(
    { error: `edgeml: ${message}`, code: "unauthorized" },
    {
      status: 401,
      headers: { "www-authenticate": 'Bearer realm="edgeml cron"', "cache-control": "no-store" },
    },
  );
}

/** Whether `header` is exactly `Bearer <secret>`, compared in constant time (hashes first, as hono's helper does). */
export async function isCronAuthorized(
  header: string | undefined,
  secret: string | undefined,
): Promise<boolean> {
  if (!secret || header === undefined) return false;
  return timingSafeEqual(header, `Bearer ${secret}`);
}

/**
 * The training function (Vercel Node.js runtime, api/train.ts). `GET /api/train` is the daily cron: with the right
 * bearer token it retrains BTC and ETH, one after the other, within the request (the function's maxDuration bounds
 * it), records each run as a training job, and answers with the jobs: 200 when all succeeded, else the status of
 * the first failure's code. The `user-agent: vercel-cron/1.0` of Vercel's calls is logged, not required: it is no
 * secret, and an operator may re-run the job with the token.
 *
 * It also serves the training routes (`POST /api/ml/train` and its status, routed here by vercel.json), so that
 * training runs where it belongs rather than in an edge isolate; every other path is the edge function's, and
 * answers 404 here. The services are built once, with the trainer (the Node function always has one): the cron and
 * the routes share one training service and one job store.
 */
export function createTrainFunction(options: TrainFunctionOptions): Hono {
  const secret = options.cronSecret ? BearerSecret("CRON_SECRET").safeParse(options.cronSecret) : undefined;
  if (secret && !secret.success) {
    throw new Error(`edgeml: invalid environment: ${secret.error.issues.map((i) => i.message).join("; ")}`);
  }
  const { deps } = options;
  const services = createServices(
    {
      ...deps,
      jobs: deps.jobs ?? createMemoryJobStore(),
      trainer: deps.trainer ?? trainForecaster,
      pairedTest: deps.pairedTest ?? dieboldMariano,
    },
    deps,
  );
  const { logger, training } = services;
  // The training routes and the rollout decisions (they need the test the edge does not carry), under the app's
  // rate limit and error handling: not the whole API.
  const routes = createHttpApp(services, deps, [
    trainingRoutes(services),
    rolloutEvaluateRoutes(services),
  ]).app;
  const symbols = options.symbols ?? CRON_SYMBOLS;

  const app = new Hono();
  app.get(CRON_PATH, async (c) => {
    if (!options.cronSecret) {
      logger.error("cron call refused: CRON_SECRET is not set in this deployment");
      return unauthorized("the cron endpoint is disabled: set CRON_SECRET in the project's environment");
    }
    if (!(await isCronAuthorized(c.req.header("authorization"), options.cronSecret))) {
      return unauthorized("the cron endpoint needs `Authorization: Bearer $CRON_SECRET`");
    }
    const started = new Date().toISOString();
    // First the feedback loop: yesterday's forecasts resolved against the bars that closed since. It runs even
    // where training cannot, and a failure of it never stops training (each model's run reports its own error).
    const outcomes = await services.performance.resolveDue().catch((error: unknown) => {
      logger.error("cron: resolving due forecasts failed", error);
      return { error: errorMessage(error) };
    });
    // Then the decisions those outcomes feed: every model's rollout (promote, end, continue) and its champion's
    // rollback check. Like the resolution, it runs where training cannot, and a failure of it never stops training.
    const rollouts = await services.rollouts.evaluateAll().catch((error: unknown) => {
      logger.error("cron: evaluating the rollouts failed", error);
      return { error: errorMessage(error) };
    });
    if (options.trainingUnavailable) {
      return c.json(
        { error: `edgeml: ${options.trainingUnavailable}`, code: "not_ready", outcomes, rollouts },
        503,
      );
    }
    const finished: TrainingJob[] = [];
    try {
      // One after the other, each awaited: the function's response is the end of its run.
      for (const symbol of symbols) finished.push(await training.run(symbol));
    } catch (error) {
      // The job store failed: the run's state cannot be recorded or read, so nothing more is started. Training
      // already done stays registered; Vercel retries nothing, and the next day's run trains again.
      logger.error("cron training stopped: the job store failed", error);
      const mapped = asEdgeMLError(error);
      const known = mapped && mapped.status < 500 ? mapped : undefined;
      return c.json(
        {
          error: known
            ? known.message
            : "edgeml: training job state is unavailable (job store down); the run stopped, try again shortly",
          code: known?.code ?? "store_unavailable",
          jobs: finished,
          outcomes,
          rollouts,
        },
        known ? known.status : 503,
        { "cache-control": "no-store" },
      );
    }
    const failed = finished.find((job) => job.state !== "succeeded");
    const code = failed?.error?.code;
    const status: ContentfulStatusCode = !failed
      ? 200
      : code && Object.hasOwn(ERROR_STATUS, code)
        ? ERROR_STATUS[code as ErrorCode]
        : 500;
    logger.info(
      `edgeml: cron training ${failed ? "failed" : "succeeded"} (${c.req.header("user-agent") ?? "no user-agent"}): ${finished.map((j) => `${j.model_id} ${j.state}`).join(", ")}`,
    );
    // What serves after the run: each run ended with the selection policy (trainSymbol), which wrote the champion.
    const serving = await Promise.all(
      finished.map(async (job) => {
        const name = forecastModelName(job.model_id, DEFAULT_HORIZON);
        const model = await services.registry.getModel(name).catch(() => undefined);
        return { model: name, ...model?.serving, automatic: model?.pointers.automatic === true };
      }),
    );
    return c.json(
      {
        started_at: started,
        finished_at: new Date().toISOString(),
        outcomes,
        rollouts,
        jobs: finished,
        serving,
      },
      status,
      {
        "cache-control": "no-store",
      },
    );
  });
  app.all("*", (c) => routes.fetch(c.req.raw));
  return app;
}
