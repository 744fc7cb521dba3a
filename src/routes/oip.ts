import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppConfig } from "../config.js";
import { EdgeMLError } from "../errors.js";
import { feedsFor, outputsFor } from "../inference/request.js";
import { fromOrtTensor } from "../inference/tensors.js";
import { deadlineIn, type Registry, type Resolved } from "../registry/registry.js";
import type { UsageTracker } from "../tracking/usage.js";
import {
  errorResponses,
  InferRequestSchema,
  InferResponseSchema,
  ModelMetadataResponseSchema,
  NameParams,
  NameVersionParams,
} from "./schemas.js";
import { limitBody } from "./limits.js";
import type { AppEnv } from "./types.js";

const tags = ["Open Inference Protocol v2"];
const json = <T>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export interface OipDeps {
  registry: Registry;
  usage: UsageTracker;
  config: AppConfig;
  /** Whether the runtime is up and the stores answer; backs /v2/health/ready. */
  ready: () => Promise<boolean>;
  serverVersion: string;
}

/** The Open Inference Protocol v2 REST surface (KServe / Triton clients): health, metadata, readiness, infer. */
export function registerOipRoutes(app: OpenAPIHono<AppEnv>, deps: OipDeps): void {
  const { registry, config } = deps;

  app.openapi(
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
    (c) => c.json({ name: config.serverName, version: deps.serverVersion, extensions: [] }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v2/health/live",
      tags,
      summary: "Liveness",
      responses: { 200: json(z.object({ live: z.boolean() }), "The server is up") },
    }),
    (c) => c.json({ live: true }, 200),
  );

  app.openapi(
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
    async (c) => ((await deps.ready()) ? c.json({ ready: true }, 200) : c.json({ ready: false }, 503)),
  );

  const metadataOf = async (resolved: Resolved, withVersions: boolean) => {
    const { meta } = resolved;
    const versions = withVersions ? await registry.versionNames(meta.name) : [meta.version];
    return {
      name: meta.name,
      versions,
      platform: meta.platform,
      inputs: meta.signature.inputs,
      outputs: meta.signature.outputs,
    };
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/v2/models/{name}",
      tags,
      summary: "Model metadata (of the version that serves by default)",
      request: { params: NameParams },
      responses: { 200: json(ModelMetadataResponseSchema, "Model metadata"), ...errorResponses(400, 404) },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      return c.json(await metadataOf(await registry.resolve(name), true), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v2/models/{name}/versions/{version}",
      tags,
      summary: "Model version metadata",
      request: { params: NameVersionParams },
      responses: { 200: json(ModelMetadataResponseSchema, "Model metadata"), ...errorResponses(400, 404) },
    }),
    async (c) => {
      const { name, version } = c.req.valid("param");
      return c.json(await metadataOf(await registry.resolve(name, version), false), 200);
    },
  );

  const readyResponses = {
    200: json(z.object({ name: z.string(), version: z.string(), ready: z.boolean() }), "Loaded and verified"),
    ...errorResponses(400, 404, 503),
  };
  const ready = async (name: string, version?: string) => {
    const resolved = await registry.resolve(name, version);
    await registry.prepare(resolved.meta);
    return { name, version: resolved.meta.version, ready: true };
  };
  app.openapi(
    createRoute({
      method: "get",
      path: "/v2/models/{name}/ready",
      tags,
      summary: "Model readiness (loads and verifies it)",
      request: { params: NameParams },
      responses: readyResponses,
    }),
    async (c) => c.json(await ready(c.req.valid("param").name), 200),
  );
  app.openapi(
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
      return c.json(await ready(name, version), 200);
    },
  );

  const limit = limitBody(config.maxInferBytes, "split the batch (MAX_INFER_BYTES sets the limit)");
  const inferRoute = <P extends typeof NameParams | typeof NameVersionParams>(path: string, params: P) =>
    createRoute({
      method: "post",
      path,
      tags,
      summary: "Run inference",
      middleware: [limit] as const,
      request: {
        params,
        body: { required: true, content: { "application/json": { schema: InferRequestSchema } } },
      },
      responses: {
        200: {
          ...json(InferResponseSchema, "Outputs"),
          headers: z.object({ "x-model-version": z.string() }),
        },
        ...errorResponses(400, 404, 413, 415, 503, 504),
      },
    });

  const infer = async (
    name: string,
    version: string | undefined,
    body: z.infer<typeof InferRequestSchema>,
  ) => {
    // One deadline for the whole request: a stalled store read during resolution answers 504 like a slow run.
    const deadline = deadlineIn(config.inferTimeoutMs);
    const { meta } = await registry.resolve(name, version, deadline);
    const feeds = feedsFor(meta.signature, body.inputs);
    const outputNames = outputsFor(meta.signature, body.outputs);
    const outputs = await registry.infer(meta, feeds, outputNames, deadline);
    deps.usage.record(meta.name, meta.version, { inferences: 1, rows: body.inputs[0]?.shape[0] ?? 1 });
    return {
      model_name: meta.name,
      model_version: meta.version,
      ...(body.id !== undefined && { id: body.id }),
      outputs: outputNames.map((n) => {
        const tensor = outputs[n];
        if (!tensor) throw new EdgeMLError("model_unavailable", `the model produced no output '${n}'`);
        return fromOrtTensor(n, tensor);
      }),
    };
  };

  app.openapi(inferRoute("/v2/models/{name}/infer", NameParams), async (c) => {
    const result = await infer(c.req.valid("param").name, undefined, c.req.valid("json"));
    c.header("x-model-version", result.model_version);
    return c.json(result, 200);
  });
  app.openapi(inferRoute("/v2/models/{name}/versions/{version}/infer", NameVersionParams), async (c) => {
    const { name, version } = c.req.valid("param");
    const result = await infer(name, version, c.req.valid("json"));
    c.header("x-model-version", result.model_version);
    return c.json(result, 200);
  });
}
