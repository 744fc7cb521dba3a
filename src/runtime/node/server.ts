import { serve } from "@hono/node-server";
import { createApp } from "../../app.js";
import { createServices } from "../../services/index.js";
import { describeAdapters } from "../adapters.js";
import { parseEnv } from "../env-schema.js";
import { serveDashboard } from "./dashboard-assets.js";
import { nodeDeps } from "./deps.js";
import { DOCS_ASSETS_BASE, serveDocsAssets } from "./docs-assets.js";
import { surviveStrayRejections } from "./stray-rejections.js";

surviveStrayRejections();

/** `npm start`: the Node server on embedded defaults. PORT (3000) and HOST (127.0.0.1) move it. */
const deps = nodeDeps();
const services = createServices(deps, deps);
const { registry, config, logger } = services;
const { app } = createApp(services, { ...deps, docsAssetsUrl: DOCS_ASSETS_BASE });
serveDocsAssets(app);
serveDashboard(app);
// Validated with every other variable by nodeDeps above (src/runtime/env-schema.ts): "PORT: must be a port number".
const { PORT: port = 3000, HOST: hostname = "127.0.0.1" } = parseEnv(process.env);

await deps.engine.init();
// The banner is informational: a store or pointer file that cannot be read must not keep the server from starting
// (requests then answer 503 saying what is wrong, and /v2/health/ready says not ready).
const models = await registry.listModels().catch((error: unknown) => {
  logger.warn("cannot list the models at start-up", error);
  return [];
});
const server = serve({ fetch: app.fetch, port, hostname }, (info) => {
  const base = `http://${hostname === "0.0.0.0" ? "localhost" : hostname}:${info.port}`;
  const initMs = deps.engine.stats().initMs ?? 0;
  logger.info(`edgeml listening on ${base} (onnxruntime-web ready in ${initMs.toFixed(0)} ms)`);
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
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
