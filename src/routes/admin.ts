import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { EdgeMLError } from "../errors.js";
import { RegistrationInputSchema, VersionMetadataSchema, VersionSchema } from "../registry/metadata.js";
import type { Services } from "../services/index.js";
import { ArchivedVersionSchema, AuditEntrySchema, ModelPointersSchema } from "../storage/pointers.js";
import { USAGE_EVENTS } from "../tracking/usage.js";
import { base64ToBytes } from "../util/base64.js";
import { adminAuth } from "./auth.js";
import { assertJsonDepth, BODY_LIMITS, limitBody } from "./limits.js";
import { createRouteApp, json, ADMIN_SECURITY as security } from "./route-app.js";
import { errorResponses, NameParams, NameVersionParams } from "./schemas.js";
import type { AppEnv } from "./types.js";

const tags = ["Model registry (admin)"];

/** Header carrying registration metadata with a raw `application/octet-stream` upload: JSON, or base64 of it. */
export const METADATA_HEADER = "x-model-metadata";

/** Header of a registration that registered nothing: the existing version it equals (also `duplicate_of`). */
export const DUPLICATE_HEADER = "x-duplicate-of";

/** A registration's answer: the version's metadata, and what the registration did beside it. */
const RegistrationResultSchema = VersionMetadataSchema.extend({
  duplicate_of: VersionSchema.optional().describe(
    "Present when nothing was registered: the upload has the bytes and calibration (golden rows, forecast spec, feature set) of this existing version, whose metadata this is",
  ),
  archived: z
    .array(VersionSchema)
    .optional()
    .describe("Versions retention archived because this one registered (RETAIN_VERSIONS)"),
  retention_error: z
    .string()
    .optional()
    .describe(
      "The version registered, but retention could not write the pointers; the next registration archives what this one could not",
    ),
}).openapi("Registration");

/** `{version}` makes that version the champion (a person's choice); `{auto: true}` hands the model back to the policy. */
const promoteBody = (reason: z.ZodOptional<z.ZodString>) =>
  z
    .object({
      version: VersionSchema.optional(),
      auto: z
        .literal(true)
        .optional()
        .describe(
          "Clear the champion a person set and let the selection policy (SELECTION_POLICY) choose now and after every training run",
        ),
      reason,
    })
    .strict()
    .refine((body) => (body.version === undefined) !== (body.auto === undefined), {
      message:
        'give either {"version": "<n>"} to make that version the champion, or {"auto": true} to hand the model back to the selection policy',
    });

const ModelSummarySchema = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    pointers: ModelPointersSchema,
    serving: z.object({ version: z.string(), via: z.string() }).nullable(),
    unreadable: z
      .array(z.object({ version: z.string(), reason: z.string() }))
      .describe("Versions whose metadata cannot be read (truncated, not JSON): skipped until repaired"),
    archived: z
      .array(ArchivedVersionSchema.extend({ version: z.string(), archived: z.literal(true) }))
      .describe(
        "Versions retention archived (when, why): listed, never served until restored with POST .../versions/{version}/restore",
      ),
  })
  .openapi("ModelSummary");

const PointerChangeSchema = z.object({ change: AuditEntrySchema, serving: ModelSummarySchema.shape.serving });

const ModelDetailSchema = ModelSummarySchema.extend({
  metadata: z.array(VersionMetadataSchema),
  history: z.array(AuditEntrySchema),
  usage: z
    .object({
      available: z.boolean(),
      versions: z.record(z.string(), z.object(Object.fromEntries(USAGE_EVENTS.map((e) => [e, z.number()])))),
    })
    .describe("Requests served per version since the counters began (all instances on Upstash)"),
});

function parseMetadataText(text: string, where: string): unknown {
  const trimmed = text.trim();
  const decoded = trimmed.startsWith("{") ? trimmed : new TextDecoder().decode(headerBytes(trimmed, where));
  let value: unknown;
  try {
    value = JSON.parse(decoded);
  } catch {
    throw new EdgeMLError("invalid_request", `${where} is not valid JSON (nor base64 of JSON)`);
  }
  assertJsonDepth(value, where);
  return value;
}

function headerBytes(text: string, where: string): Uint8Array {
  try {
    return base64ToBytes(text);
  } catch {
    throw new EdgeMLError("invalid_request", `${where} is neither JSON nor base64`);
  }
}

/** Reads an upload: raw bytes with metadata in a header, or multipart with `model` and `metadata` parts. */
async function readUpload(c: Context<AppEnv>): Promise<{ bytes: Uint8Array; metadata: unknown }> {
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (type.startsWith("application/octet-stream")) {
    const header = c.req.header(METADATA_HEADER);
    return {
      bytes: new Uint8Array(await c.req.arrayBuffer()),
      metadata: header ? parseMetadataText(header, `the ${METADATA_HEADER} header`) : {},
    };
  }
  if (type.startsWith("multipart/form-data")) {
    let form: Awaited<ReturnType<typeof c.req.parseBody>>;
    try {
      form = await c.req.parseBody();
    } catch (error) {
      // The platform's multipart parser throws a TypeError on a missing boundary or a truncated part.
      throw new EdgeMLError(
        "invalid_request",
        "the multipart body could not be parsed; send parts 'model' (the .onnx file) and 'metadata' (JSON) with the boundary named in Content-Type",
        { cause: error },
      );
    }
    const model = form.model;
    if (!(model instanceof File)) {
      throw new EdgeMLError(
        "invalid_request",
        "multipart uploads need a file part named 'model' with the .onnx bytes",
      );
    }
    const part = form.metadata;
    const metadataText = part instanceof File ? await part.text() : part;
    return {
      bytes: new Uint8Array(await model.arrayBuffer()),
      metadata:
        typeof metadataText === "string" ? parseMetadataText(metadataText, "the 'metadata' part") : {},
    };
  }
  throw new EdgeMLError(
    "unsupported_media_type",
    "upload the model as Content-Type: application/octet-stream (metadata in the X-Model-Metadata header) or multipart/form-data",
  );
}

/** `POST /api/ml/models/{name}/versions`: raw bytes or multipart, read by `readUpload` rather than a validator. */
function registrationRoute(guard: MiddlewareHandler, maxModelBytes: number) {
  return createRoute({
    method: "post",
    path: "/api/ml/models/{name}/versions",
    tags,
    security,
    summary: "Register a new version from ONNX bytes",
    description: `Body: the raw .onnx file as \`application/octet-stream\`, with optional registration metadata (golden rows, tags, metrics, description) as JSON, or base64 of JSON, in the \`${METADATA_HEADER}\` header. Or \`multipart/form-data\` with a \`model\` file part and a \`metadata\` JSON part (for large golden sets). The model is parsed, loaded and its golden rows checked before anything is written; versions are numbered 1, 2, 3, ... An upload with the bytes and calibration (golden rows, forecast spec, feature set) of an existing version registers nothing: 200 with that version's metadata, \`duplicate_of\` and the \`${DUPLICATE_HEADER}\` header. A new version may archive older ones (RETAIN_VERSIONS), listed in \`archived\`.`,
    middleware: [guard, limitBody(maxModelBytes, "MAX_MODEL_BYTES sets the limit of model uploads")] as const,
    request: {
      params: NameParams,
      body: {
        required: true,
        content: {
          // Plain OpenAPI schemas, not zod: these bodies are read by `readUpload`, not by the JSON validator.
          "application/octet-stream": { schema: { type: "string", format: "binary" } },
          "multipart/form-data": {
            schema: {
              type: "object",
              required: ["model"],
              properties: {
                model: { type: "string", format: "binary" },
                metadata: { $ref: "#/components/schemas/RegistrationMetadata" },
              },
            },
          },
        },
      },
    },
    responses: {
      200: json(RegistrationResultSchema, "Nothing registered: the upload equals the version `duplicate_of`"),
      201: json(RegistrationResultSchema, "Registered"),
      ...errorResponses(400, 401, 403, 409, 413, 415, 422),
    },
  });
}

/**
 * Registry administration: register versions, inspect them, move the champion and pin pointers. Every route declares
 * its guard (`adminAuth`, first in its middleware) and its OpenAPI `security`: no route is admin by its path alone.
 */
export function adminRoutes(services: Pick<Services, "registry" | "models" | "config">) {
  const { registry, models, config } = services;
  const guard = adminAuth(config.adminToken);
  const reason = z.string().max(500).optional();
  const pointerRoute = <P extends string, B extends z.ZodType>(path: P, summary: string, body: B) =>
    createRoute({
      method: "post",
      path,
      tags,
      security,
      summary,
      middleware: [guard, limitBody(BODY_LIMITS.admin, "a pointer change is {version, reason?}")] as const,
      request: {
        params: NameParams,
        body: { required: true, content: { "application/json": { schema: body } } },
      },
      responses: {
        200: json(PointerChangeSchema, "Pointer changed"),
        ...errorResponses(400, 401, 403, 404, 409),
      },
    });

  const app = createRouteApp();
  app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer" });
  app.openAPIRegistry.register("RegistrationMetadata", RegistrationInputSchema);
  return app
    .openapi(registrationRoute(guard, config.maxModelBytes), async (c) => {
      const { name } = c.req.valid("param");
      const upload = await readUpload(c);
      if (upload.bytes.byteLength === 0) {
        throw new EdgeMLError("invalid_onnx", "the upload is empty; send the .onnx file's bytes as the body");
      }
      // Parsed here, not by a validator: the metadata arrives in a header or a multipart part, not a JSON body.
      const input = RegistrationInputSchema.safeParse(upload.metadata);
      if (!input.success) {
        throw new EdgeMLError("invalid_request", "the registration metadata is not valid", {
          details: input.error.issues,
        });
      }
      const meta = await registry.register(name, upload.bytes, input.data);
      c.header("location", `/api/ml/models/${meta.name}/versions/${meta.version}`);
      if (meta.duplicate_of !== undefined) {
        c.header(DUPLICATE_HEADER, meta.duplicate_of);
        return c.json(meta, 200);
      }
      return c.json(meta, 201);
    })
    .openapi(
      createRoute({
        method: "get",
        path: "/api/ml/models",
        tags,
        security,
        summary: "List models, their versions and which one serves",
        middleware: [guard] as const,
        responses: {
          200: json(z.object({ models: z.array(ModelSummarySchema) }), "Models"),
          ...errorResponses(401, 403),
        },
      }),
      async (c) => c.json({ models: await models.list() }, 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/api/ml/models/{name}",
        tags,
        security,
        summary: "A model: versions with metadata, pointers, the serving version and the audit log",
        middleware: [guard] as const,
        request: { params: NameParams },
        responses: { 200: json(ModelDetailSchema, "Model"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => c.json(await models.detail(c.req.valid("param").name), 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/api/ml/models/{name}/versions/{version}",
        tags,
        security,
        summary: "One version's metadata",
        middleware: [guard] as const,
        request: { params: NameVersionParams },
        responses: { 200: json(VersionMetadataSchema, "Version"), ...errorResponses(400, 401, 403, 404) },
      }),
      async (c) => {
        const { name, version } = c.req.valid("param");
        return c.json(await registry.metadata(name, version), 200);
      },
    )
    .openapi(
      pointerRoute(
        "/api/ml/models/{name}/promote",
        'Make a version the champion, or hand the model back to the selection policy with {"auto": true}',
        promoteBody(reason),
      ),
      async (c) => {
        const { version, auto, reason } = c.req.valid("json");
        const { name } = c.req.valid("param");
        if (auto) return c.json(await models.handBack(name, reason), 200);
        return c.json(await models.promote(name, version as string, reason), 200);
      },
    )
    .openapi(
      pointerRoute(
        "/api/ml/models/{name}/rollback",
        "Put the previous champion back (or the version named in `to`)",
        z.object({ to: VersionSchema.optional(), reason }).strict(),
      ),
      async (c) => c.json(await models.rollback(c.req.valid("param").name, c.req.valid("json")), 200),
    )
    .openapi(
      pointerRoute(
        "/api/ml/models/{name}/pin",
        "Pin a version (it beats the champion); null unpins",
        z.object({ version: VersionSchema.nullable(), reason }).strict(),
      ),
      async (c) => {
        const { version, reason } = c.req.valid("json");
        return c.json(await models.pin(c.req.valid("param").name, version, reason), 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/api/ml/models/{name}/versions/{version}/restore",
        tags,
        security,
        summary: "Restore an archived version: it serves again, and retention keeps it from then on",
        middleware: [guard, limitBody(BODY_LIMITS.admin, "a restore is {reason?}")] as const,
        request: {
          params: NameVersionParams,
          body: {
            required: false,
            content: { "application/json": { schema: z.object({ reason }).strict() } },
          },
        },
        responses: {
          200: json(PointerChangeSchema, "Restored"),
          ...errorResponses(400, 401, 403, 404, 409),
        },
      }),
      async (c) => {
        const { name, version } = c.req.valid("param");
        const { reason } = c.req.valid("json") ?? {};
        return c.json(await models.restore(name, version, reason), 200);
      },
    );
}

/** The admin routes' types, for the CLI's client (`hc<AdminRoutes>`). */
export type AdminRoutes = ReturnType<typeof adminRoutes>;
