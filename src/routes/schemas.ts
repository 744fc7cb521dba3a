import { z } from "@hono/zod-openapi";
import { JsonTensorSchema, ModelNameSchema, TensorSpecSchema, VersionSchema } from "../registry/metadata.js";

/** `{ error, code, details? }`: the one error shape. `error` alone is what Open Inference Protocol clients read. */
export const ErrorSchema = z
  .object({
    error: z.string().describe("What went wrong and what to do about it"),
    code: z.string().describe("Stable machine-readable code"),
    details: z.unknown().optional(),
  })
  .openapi("Error");

/** A symbol the forecasts and training take: BTC, ETH. */
export const SymbolId = z.string().min(1).max(16).openapi({ example: "BTC" });

export const NameParams = z.object({
  name: ModelNameSchema.openapi({ param: { name: "name", in: "path" } }),
});
export const NameVersionParams = NameParams.extend({
  version: VersionSchema.openapi({ param: { name: "version", in: "path" } }),
});

export const InferRequestSchema = z
  .object({
    id: z.string().max(256).optional(),
    parameters: z
      .object({
        binary_data_output: z
          .boolean()
          .optional()
          .describe("Every output as binary data after the JSON (binary tensor data extension)"),
      })
      .catchall(z.unknown())
      .optional(),
    inputs: z.array(JsonTensorSchema).min(1).max(64),
    outputs: z
      .array(
        z.object({
          name: z.string().min(1),
          parameters: z
            .object({
              binary_data: z
                .boolean()
                .optional()
                .describe("This output as binary data after the JSON; overrides binary_data_output"),
            })
            .catchall(z.unknown())
            .optional(),
        }),
      )
      .max(64)
      .optional(),
  })
  .openapi("InferenceRequest");

export const InferResponseSchema = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    outputs: z.array(JsonTensorSchema),
  })
  .openapi("InferenceResponse");

export const ModelMetadataResponseSchema = z
  .object({
    name: z.string(),
    versions: z.array(z.string()).optional(),
    platform: z.string(),
    inputs: z.array(TensorSpecSchema),
    outputs: z.array(TensorSpecSchema),
  })
  .openapi("ModelMetadata");

export const errorResponses = (
  ...statuses: (400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 501 | 503 | 504)[]
) =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: describeStatus[status], content: { "application/json": { schema: ErrorSchema } } },
    ]),
  );

const describeStatus = {
  400: "Invalid request: the details list what to fix",
  401: "Missing or wrong admin token",
  403: "Admin API disabled (no ADMIN_TOKEN configured)",
  404: "Unknown model or version",
  409: "Conflict with the registry's state",
  410: "The version is archived: restore it (the message says how) before it serves",
  413: "Body larger than the configured limit",
  415: "Unsupported content type",
  422: "The model does not reproduce its golden rows",
  501: "Not available in this deployment (training on an edge function)",
  503: "No servable model, or a version that failed verification",
  504: "Prediction did not finish within the timeout",
} as const;
