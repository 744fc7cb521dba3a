import { createRoute, z } from "@hono/zod-openapi";
import { VERSION } from "../config.js";
import type { Services } from "../services/index.js";
import { fastJsonInfer } from "./fast-infer.js";
import { routedInfer } from "./infer-routing.js";
import { limitBody } from "./limits.js";
import {
  BINARY_DESCRIPTION,
  BINARY_TENSOR_EXTENSION,
  binaryTensorData,
  inferResponse,
} from "./oip-binary.js";
import { createRouteApp, json } from "./route-app.js";
import {
  errorResponses,
  InferRequestSchema,
  InferResponseSchema,
  ModelMetadataResponseSchema,
  NameParams,
  NameVersionParams,
} from "./schemas.js";

const tags = ["Open Inference Protocol v2"];

const Duration = z.object({ count: z.number().int(), ns: z.number().int() });
/** Triton's statistics extension (extension_statistics.md): one entry per model version. */
const ModelStatsSchema = z
  .object({
    model_stats: z.array(
      z.object({
        name: z.string(),
        version: z.string(),
        last_inference: z
          .number()
          .int()
          .describe("Milliseconds since the epoch of the last request; 0 if none"),
        inference_count: z.number().int().describe("Rows run through the model (cache hits not included)"),
        execution_count: z.number().int().describe("Model executions (cache hits not included)"),
        inference_stats: z.object({
          success: Duration,
          fail: Duration,
          queue: Duration.describe("Not measured apart (0): queueing is inside compute_infer"),
          compute_input: Duration.describe("Not measured apart (0)"),
          compute_infer: Duration,
          compute_output: Duration.describe("Not measured apart (0)"),
          cache_hit: Duration.describe("Forecast cache hits; lookups are not timed (ns 0)"),
          cache_miss: Duration.describe("Forecast cache misses; lookups are not timed (ns 0)"),
        }),
        batch_stats: z
          .array(z.object({ batch_size: z.number().int() }))
          .describe("Always empty: executions are not counted by batch size"),
      }),
    ),
  })
  .openapi("ModelStatistics");

/** A statistics route: public like the rest of OIP; figures aggregated over every instance (the metrics store). */
const statsRoute = <Path extends string, R extends { params?: typeof NameParams | typeof NameVersionParams }>(
  path: Path,
  request: R,
  summary: string,
) =>
  createRoute({
    method: "get",
    path,
    tags,
    summary,
    request,
    responses: {
      200: json(ModelStatsSchema, "Statistics since the metrics store was created"),
      ...errorResponses(400, 404, 503),
    },
  });

/** Triton's statistics extension: public like the rest of OIP, aggregated over every instance. */
function statisticsRoutes(telemetry: Services["telemetry"]) {
  return createRouteApp()
    .openapi(statsRoute("/v2/models/stats", {}, "Statistics of every version of every model"), async (c) =>
      c.json({ model_stats: await telemetry.modelStats() }, 200),
    )
    .openapi(
      statsRoute("/v2/models/{name}/stats", { params: NameParams }, "Statistics of every version of a model"),
      async (c) => c.json({ model_stats: await telemetry.modelStats(c.req.valid("param").name) }, 200),
    )
    .openapi(
      statsRoute(
        "/v2/models/{name}/versions/{version}/stats",
        { params: NameVersionParams },
        "Statistics of a model version",
      ),
      async (c) => {
        const { name, version } = c.req.valid("param");
        return c.json({ model_stats: await telemetry.modelStats(name, version) }, 200);
      },
    );
}

const INFER_BODY = {
  required: true,
  description: BINARY_DESCRIPTION,
  content: { "application/json": { schema: InferRequestSchema } },
} as const;
/** What both infer routes share: all but their path, parameters, body and middleware. */
const INFER_ROUTE = {
  method: "post",
  tags,
  summary: "Run inference",
  responses: {
    200: {
      ...json(InferResponseSchema, "Outputs (binary ones after the JSON, as the request asked)"),
      headers: z.object({
        "x-model-version": z.string(),
        "x-chosen-via": z
          .string()
          .describe(
            "How the version was chosen: requested, pinned, canary (a rollout's challenger), champion, …",
          ),
      }),
    },
    ...errorResponses(400, 404, 413, 415, 503, 504),
  },
} as const;

/** The Open Inference Protocol v2 REST surface (KServe / Triton clients): health, metadata, readiness, infer. */
export function oipRoutes(services: Pick<Services, "config" | "inference" | "ready" | "telemetry">) {
  const { config, inference, telemetry } = services;
  const infer = routedInfer(inference.infer);
  const readyResponses = {
    200: json(z.object({ name: z.string(), version: z.string(), ready: z.boolean() }), "Loaded and verified"),
    ...errorResponses(400, 404, 503),
  };
  const limit = limitBody(config.maxInferBytes, "split the batch (MAX_INFER_BYTES sets the limit)");
  const inferRoute = <Path extends string, P extends typeof NameParams | typeof NameVersionParams>(
    path: Path,
    params: P,
  ) =>
    createRoute({
      ...INFER_ROUTE,
      path,
      // After the body limit: binary bodies, then the fast path of plain JSON ones (src/routes/fast-infer.ts), then
      // the route's validators for everything else.
      middleware: [
        limit,
        binaryTensorData(params, infer),
        fastJsonInfer(params, infer, inferResponse),
      ] as const,
      request: { params, body: INFER_BODY },
    });

  // The statistics routes come first, before /v2/models/{name}: the first route registered answers
  // `/v2/models/stats` (as on Triton, a model named "stats" has no metadata route).
  return createRouteApp()
    .route("/", statisticsRoutes(telemetry))
    .openapi(
      createRoute({
        method: "get",
        path: "/v2",
        tags,
        summary: "Server metadata",
        responses: {
          200: json(
            z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) }),
            "Server metadata",
          ),
        },
      }),
      (c) =>
        c.json(
          { name: config.serverName, version: VERSION, extensions: ["statistics", BINARY_TENSOR_EXTENSION] },
          200,
        ),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v2/health/live",
        tags,
        summary: "Liveness",
        responses: { 200: json(z.object({ live: z.boolean() }), "The server is up") },
      }),
      (c) => c.json({ live: true }, 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v2/health/ready",
        tags,
        summary: "Readiness: inference runtime initialised and model store reachable",
        responses: {
          200: json(z.object({ ready: z.boolean() }), "Ready to serve"),
          503: json(z.object({ ready: z.boolean() }), "Not ready"),
        },
      }),
      async (c) => ((await services.ready()) ? c.json({ ready: true }, 200) : c.json({ ready: false }, 503)),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v2/models/{name}",
        tags,
        summary: "Model metadata (of the version that serves by default)",
        request: { params: NameParams },
        responses: {
          200: json(ModelMetadataResponseSchema, "Model metadata"),
          ...errorResponses(400, 404),
        },
      }),
      async (c) => c.json(await inference.metadata(c.req.valid("param").name), 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v2/models/{name}/versions/{version}",
        tags,
        summary: "Model version metadata",
        request: { params: NameVersionParams },
        responses: {
          200: json(ModelMetadataResponseSchema, "Model metadata"),
          ...errorResponses(400, 404),
        },
      }),
      async (c) => {
        const { name, version } = c.req.valid("param");
        return c.json(await inference.metadata(name, version), 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v2/models/{name}/ready",
        tags,
        summary: "Model readiness (loads and verifies it)",
        request: { params: NameParams },
        responses: readyResponses,
      }),
      async (c) => c.json(await inference.ready(c.req.valid("param").name), 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v2/models/{name}/versions/{version}/ready",
        tags,
        summary: "Model version readiness (loads and verifies it)",
        request: { params: NameVersionParams },
        responses: readyResponses,
      }),
      async (c) => {
        const { name, version } = c.req.valid("param");
        return c.json(await inference.ready(name, version), 200);
      },
    )
    .openapi(inferRoute("/v2/models/{name}/infer", NameParams), async (c) => {
      const body = c.req.valid("json");
      const result = await infer(c, c.req.valid("param").name, undefined, body);
      return inferResponse(c, body, result);
    })
    .openapi(inferRoute("/v2/models/{name}/versions/{version}/infer", NameVersionParams), async (c) => {
      const { name, version } = c.req.valid("param");
      const body = c.req.valid("json");
      const result = await infer(c, name, version, body);
      return inferResponse(c, body, result);
    });
}

/** The OIP routes' types, for the CLI's client (`hc<OipRoutes>`). */
export type OipRoutes = ReturnType<typeof oipRoutes>;
