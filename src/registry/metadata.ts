import { z } from "@hono/zod-openapi";
import { INTERVAL_LEVELS, INTERVAL_METHOD, INTERVAL_SCALE, levelKey } from "../forecast/interval.js";
import { OIP_DATATYPES } from "../inference/datatypes.js";

/**
 * Names no model may take, each with why; compared case-insensitively, since a case-insensitive file system (macOS,
 * Windows) makes `Pointers.JSON` the same file as `pointers.json`.
 */
export const RESERVED_MODEL_NAMES: Readonly<Record<string, string>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, string>, {
    // The embedded pointer file, its lock and temporary files live in the models directory beside the model folders.
    "pointers.json": "the embedded pointer file lives in the models directory under this name",
    "pointers.json.lock": "the pointer file's lock lives in the models directory under this name",
    // Triton's statistics extension: GET /v2/models/stats must never be read as a model called `stats`.
    stats: "GET /v2/models/stats is the statistics route of the Open Inference Protocol",
    ...Object.fromEntries(
      Object.getOwnPropertyNames(Object.prototype).map((key) => [
        key.toLowerCase(),
        "it is a member of every JavaScript object (Object.prototype), which stores keyed by name would confuse with a model",
      ]),
    ),
  }),
);

/** Why a name is reserved, or undefined when it is free to use. */
export function reservedNameReason(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (Object.hasOwn(RESERVED_MODEL_NAMES, lower)) return RESERVED_MODEL_NAMES[lower];
  // Temporary files of the pointer file: `pointers.json.<uuid>.tmp`.
  if (lower.startsWith("pointers.json."))
    return "the pointer file's temporary files live in the models directory";
  return undefined;
}

const reservedList = () => Object.keys(RESERVED_MODEL_NAMES).sort().join(", ");

/** Model names travel in URLs and blob paths, so they are restricted to what is safe in both, minus reserved names. */
export const ModelNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/,
    "model names are 1-128 of A-Z a-z 0-9 _ . - and start with a letter or digit",
  )
  .superRefine((name, ctx) => {
    const why = reservedNameReason(name);
    if (why) {
      ctx.addIssue({
        code: "custom",
        message: `'${name}' is a reserved model name (${why}); pick another. Reserved, in any case: ${reservedList()}, pointers.json.*`,
      });
    }
  })
  .openapi({ example: "sk_gbr" });

/** Versions are assigned by the registry: 1, 2, 3, ... in registration order. */
export const VersionSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, "versions are positive integers such as 1 or 12")
  .openapi({ example: "1" });

export const DatatypeSchema = z.enum(OIP_DATATYPES).openapi({ example: "FP32" });

export const TensorSpecSchema = z
  .object({
    name: z.string(),
    datatype: DatatypeSchema,
    shape: z.array(z.number().int()).describe("-1 marks a dynamic dimension"),
  })
  .openapi("TensorMetadata");

/** A tensor in the protocol's JSON form. `data` is flat row-major; nested arrays are accepted and flattened. */
export const JsonTensorSchema = z
  .object({
    name: z.string().min(1),
    shape: z.array(z.number().int().nonnegative()).max(16),
    datatype: DatatypeSchema,
    parameters: z.record(z.string(), z.unknown()).optional(),
    // Elements are checked against the datatype when the tensor is built (toOrtTensor), with the element's index.
    data: z.array(z.unknown()).openapi({
      description: "Row-major values: numbers, booleans (BOOL) or strings (BYTES); nested arrays accepted",
    }),
  })
  .openapi("Tensor");

export const GoldenSchema = z
  .object({
    atol: z
      .number()
      .nonnegative()
      .default(0)
      .describe(
        "Largest absolute difference accepted per element; 0 (the default) demands the exact same numbers",
      ),
    cases: z
      .array(
        z.object({
          inputs: z.array(JsonTensorSchema).min(1),
          outputs: z.array(JsonTensorSchema).min(1),
        }),
      )
      .min(1)
      .max(64),
  })
  .openapi("GoldenRows", {
    description:
      "Input→output rows the model must reproduce; checked at registration and whenever a version loads",
  });

export const FeatureSetSchema = z.object({ name: z.string().min(1), version: z.number().int().positive() });

/** What a forecasting model predicts: serving reads it to fetch the right bars and turn the output into a price. */
export const ForecastSpecSchema = z.object({
  symbol: z.string().min(1),
  interval: z.enum(["1d", "1h"]),
  horizon: z.string().regex(/^[1-9][0-9]*h$/, "horizons are in hours, such as 24h"),
  horizon_bars: z.number().int().positive(),
  target: z.literal("log_return"),
});
export type ForecastSpec = z.infer<typeof ForecastSpecSchema>;

/**
 * The prediction-interval calibration of a forecaster (src/forecast/interval.ts): split-conformal quantiles of
 * volatility-scaled absolute residuals on rows the model was never fitted or tuned on, one per served level.
 */
export const IntervalCalibrationSchema = z
  .object({
    method: z.literal(INTERVAL_METHOD),
    scale: z.literal(INTERVAL_SCALE),
    window: z
      .string()
      .describe("Which rows were scored: `test_split`, the held-out test split of the training run"),
    rows: z.number().int().positive(),
    from: z.iso.datetime().describe("Open time of the first calibration row's as-of bar"),
    to: z.iso.datetime().describe("Open time of the last calibration row's as-of bar"),
    quantiles: z
      .object(
        Object.fromEntries(
          INTERVAL_LEVELS.map((level) => [levelKey(level), z.number().positive()]),
        ) as Record<ReturnType<typeof levelKey>, z.ZodNumber>,
      )
      .strict()
      .describe("q_L per level L: the interval is ŷ ∓ q_L·σ in log return"),
  })
  .openapi("IntervalCalibration");
export type IntervalCalibration = z.output<typeof IntervalCalibrationSchema>;

/** What a client may say about a model when it registers it. Everything else the registry derives. */
export const RegistrationInputSchema = z
  .object({
    description: z.string().max(2_000).optional(),
    tags: z.record(z.string().max(64), z.string().max(256)).default({}),
    metrics: z.record(z.string().max(64), z.number()).default({}),
    feature_set: FeatureSetSchema.optional(),
    feature_names: z.array(z.string()).max(10_000).optional(),
    forecast: ForecastSpecSchema.optional(),
    golden: GoldenSchema.optional(),
    data_cutoff: z.iso
      .datetime()
      .optional()
      .describe(
        "Close time (ISO 8601 UTC) of the last bar the version was fitted, tuned or selected on: train, validation and test, up to the bar its last target used. Backfill replays only bars that close after it; a version without one (bring-your-own, or trained before it was recorded) cannot be backfilled",
      )
      .openapi({ example: "2025-12-28T00:00:00.000Z" }),
    report: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("Evaluation report of the trainer, kept as given"),
    calibration: IntervalCalibrationSchema.optional().describe(
      "Prediction-interval calibration: forecasts of a version without one carry `interval: null`",
    ),
  })
  .strict()
  .openapi("RegistrationMetadata");

export type RegistrationInput = z.input<typeof RegistrationInputSchema>;

/** `metadata.json` of a version: immutable once written, like the model bytes beside it. */
export const VersionMetadataSchema = RegistrationInputSchema.extend({
  name: ModelNameSchema,
  version: VersionSchema,
  created_at: z.string().datetime(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size_bytes: z.number().int().positive(),
  platform: z.literal("onnxruntime_onnx"),
  signature: z.object({ inputs: z.array(TensorSpecSchema), outputs: z.array(TensorSpecSchema) }),
  producer: z.object({ name: z.string(), version: z.string() }),
  onnx: z.object({ ir_version: z.number().int(), opsets: z.record(z.string(), z.number().int()) }),
}).openapi("ModelVersion");

export type VersionMetadata = z.output<typeof VersionMetadataSchema>;
export type Golden = z.output<typeof GoldenSchema>;
