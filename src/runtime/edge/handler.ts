import { type AppDeps, createApp } from "../../app.js";
import { errorMessage } from "../../errors.js";
import { consoleLogger, type Logger } from "../../logger.js";
import { createServices } from "../../services/index.js";
import { redirectToStaticDashboard } from "../dashboard.js";

/** The part of a platform's execution context the handler uses: Vercel Edge's and workerd's both have it. */
export interface EdgeContext {
  waitUntil(work: Promise<unknown>): void;
}

export interface EdgeHandler<Env> {
  fetch(request: Request, env: Env, context?: EdgeContext): Promise<Response>;
}

/** Response headers of the request that paid the cold start. */
export const INIT_HEADER = "x-edgeml-init-ms";

interface Started {
  app: ReturnType<typeof createApp>["app"];
  /** Time to build the app and bring onnxruntime-web up, ms. */
  initMs: number;
}

function describe(error: unknown): string {
  return errorMessage(error);
}

/**
 * The app as an edge handler, built once per isolate on its first request (lazily: building it reads the
 * environment, which workerd only hands to `fetch`). That first request also brings onnxruntime-web up, so no
 * request after it pays the wasm start; the time is reported in `server-timing` and `x-edgeml-init-ms` of that
 * response and logged once.
 *
 * Side effects the app defers (cache writes, tracking) are handed to the `waitUntil` of the request being answered:
 * every piece of pending work is registered with at least one request that ends after it began, which keeps the
 * isolate alive until it settles.
 *
 * A failure to build or start (bad configuration, a broken wasm) answers every request 503 `not_ready` with the
 * reason, and is logged once: such a failure is a property of the deployment and does not heal by retrying.
 */
export function createEdgeHandler<Env>(
  build: (env: Env, defer: (work: Promise<unknown>) => void) => AppDeps,
  options: { logger?: Logger } = {},
): EdgeHandler<Env> {
  const logger = options.logger ?? consoleLogger;
  const pending = new Set<Promise<unknown>>();
  const defer = (work: Promise<unknown>) => {
    const tracked: Promise<unknown> = work
      .catch((error) => logger.error("background work failed", error))
      .finally(() => pending.delete(tracked));
    pending.add(tracked);
  };
  /** Resolves when nothing is pending, including work deferred while waiting. */
  const idle = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };

  let starting: Promise<Started> | undefined;
  const start = async (env: Env): Promise<Started> => {
    const began = performance.now();
    const deps = build(env, defer);
    const services = createServices(deps, { logger, ...deps });
    const { app } = createApp(services, deps);
    redirectToStaticDashboard(app);
    await deps.engine.init();
    const initMs = performance.now() - began;
    logger.info(
      `edgeml: cold start: app built and onnxruntime-web ready in ${initMs.toFixed(1)} ms ` +
        `(artifacts: ${deps.artifacts.kind}, pointers: ${deps.pointers.kind}, market: ${deps.market.name})`,
    );
    return { app, initMs };
  };

  return {
    async fetch(request, env, context) {
      let cold = false;
      if (!starting) {
        cold = true;
        starting = start(env);
        starting.catch((error) => logger.error("the edge app could not start", error));
      }
      let started: Started;
      try {
        started = await starting;
      } catch (error) {
        return Response.json(
          { error: `edgeml: the server could not start: ${describe(error)}`, code: "not_ready" },
          { status: 503, headers: { "cache-control": "no-store" } },
        );
      }
      let response = await started.app.fetch(request, env, context as never);
      if (cold) {
        response = new Response(response.body, response);
        response.headers.set(
          "server-timing",
          `edgeml-init;dur=${started.initMs.toFixed(1)};desc="app build + onnxruntime-web init (cold start)"`,
        );
        response.headers.set(INIT_HEADER, started.initMs.toFixed(1));
      }
      if (pending.size > 0) context?.waitUntil(idle());
      return response;
    },
  };
}
