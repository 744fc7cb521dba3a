import { serve } from "@hono/node-server";
import type { AppDeps } from "../../app.js";
import { createApp } from "../../app.js";
import { createServices, type Services } from "../../services/index.js";
import { describeAdapters } from "../adapters.js";
import { serveDashboard } from "./dashboard-assets.js";
import { DOCS_ASSETS_BASE, serveDocsAssets } from "./docs-assets.js";

export interface ServeOptions {
  port: number;
  hostname: string;
  /** Print the whole banner (models, routes, limits); otherwise one line. One worker of several prints it. */
  banner: boolean;
  /** A header naming the process that answered (`x-edgeml-worker: <pid>`), set on every response when several serve. */
  workerHeader?: string;
  /** Extra words for the listening line ("worker 2 of 4"). */
  label?: string;
}

export interface Serving {
  services: Services;
  /** Stops accepting connections and resolves once the requests in flight are answered. */
  close(): Promise<void>;
}

/**
 * The Node server on `deps`: the app with its docs and dashboard assets, onnxruntime-web initialised before the
 * first request, listening on `port`. `npm start` with one process calls this alone; with several, each worker does.
 */
export async function serveNode(deps: AppDeps, options: ServeOptions): Promise<Serving> {
  const services = createServices(deps, deps);
  const { registry, logger } = services;
  const { app } = createApp(services, { ...deps, docsAssetsUrl: DOCS_ASSETS_BASE });
  serveDocsAssets(app);
  serveDashboard(app);
  const { port, hostname } = options;

  await deps.engine.init();
  // The banner is informational: a store or pointer file that cannot be read must not keep the server from starting
  // (requests then answer 503 saying what is wrong, and /v2/health/ready says not ready).
  const models = options.banner
    ? await registry.listModels().catch((error: unknown) => {
        logger.warn("cannot list the models at start-up", error);
        return [];
      })
    : [];
  const header = options.workerHeader;
  const fetch: typeof app.fetch = header
    ? async (request, ...rest) => {
        const response = await app.fetch(request, ...rest);
        // A response built around an immutable one (a redirect, a static file) is not ours to change.
        try {
          response.headers.set("x-edgeml-worker", header);
        } catch {}
        return response;
      }
    : app.fetch;
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const listening = serve({ fetch, port, hostname }, (info) => {
      const base = `http://${hostname === "0.0.0.0" ? "localhost" : hostname}:${info.port}`;
      const initMs = deps.engine.stats().initMs ?? 0;
      const label = options.label ? ` (${options.label})` : "";
      logger.info(`edgeml listening on ${base}${label} (onnxruntime-web ready in ${initMs.toFixed(0)} ms)`);
      if (options.banner) printBanner(base, deps, services, models);
      resolve(listening);
    });
  });
  return {
    services,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function printBanner(
  base: string,
  deps: AppDeps,
  services: Services,
  models: Awaited<ReturnType<Services["registry"]["listModels"]>>,
): void {
  const { config, logger } = services;
  logger.info(`  API docs:  ${base}/docs   (OpenAPI: ${base}/openapi.json)`);
  logger.info(`  dashboard: ${base}/dashboard`);
  logger.info(`  storage:   ${describeAdapters(deps)}; market data: ${deps.market.name}`);
  const rate = (limit: { limit: number; windowMs: number } | null) =>
    limit ? `${limit.limit}/${limit.windowMs / 1000}s` : "off";
  logger.info(
    `  rate limits per client (${deps.rateLimiter?.kind ?? "memory"}): public ${rate(config.rateLimitPublic)}, ` +
      `admin ${rate(config.rateLimitAdmin)}, cold loads ${rate(config.rateLimitColdLoad)}`,
  );
  for (const m of models) {
    logger.info(
      `  model ${m.name}: versions ${m.versions.join(", ")}; serving ${m.serving?.version ?? "none"}`,
    );
    logger.info(`    POST ${base}/v2/models/${m.name}/infer`);
  }
  if (!config.adminToken) logger.info("  admin API disabled: set ADMIN_TOKEN to register and promote models");
}
