import { EdgeMLError } from "../errors.js";
import type { InferenceEngine, ModelSignature } from "../inference/engine.js";
import { describeOnnx } from "../inference/onnx-model.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import { sha256Hex } from "../util/hash.js";
import { storeUnavailable } from "./failures.js";
import {
  ModelNameSchema,
  type RegistrationInput,
  RegistrationInputSchema,
  type VersionMetadata,
  VersionMetadataSchema,
} from "./metadata.js";
import type { Verification } from "./verification.js";

/** How many times a registration re-reads the versions after losing a race for a version number. */
const PUBLISH_ATTEMPTS = 20;

export interface RegistrationDeps {
  artifacts: ArtifactStore;
  engine: InferenceEngine;
  verification: Pick<Verification, "runGolden">;
  now: () => Date;
}

/** Validates a candidate: its name, its input, its graph, a session of its own and its golden rows. */
async function validate(deps: RegistrationDeps, name: string, bytes: Uint8Array, input: RegistrationInput) {
  const validName = ModelNameSchema.safeParse(name);
  if (!validName.success) {
    throw new EdgeMLError("invalid_request", validName.error.issues[0]?.message ?? "invalid model name", {
      details: validName.error.issues,
    });
  }
  const extra = RegistrationInputSchema.parse(input);
  const onnx = await describeOnnx(bytes);
  const sha256 = await sha256Hex(bytes);
  // The candidate gets a session of its own, dropped once validated: it serves only after it is published.
  const key = `registration:${sha256}:${crypto.randomUUID()}`;
  const load = async () => bytes;
  let signature: ModelSignature;
  try {
    signature = await deps.engine.signature(key, load);
    const mismatch = extra.golden && (await deps.verification.runGolden(key, load, signature, extra.golden));
    if (mismatch) {
      throw new EdgeMLError("golden_mismatch", `the model does not reproduce its golden rows: ${mismatch}`, {
        details: { mismatch },
      });
    }
  } finally {
    deps.engine.evict(key);
  }
  return { extra, onnx, sha256, signature };
}

/**
 * Registers a version: validates it, then publishes it under the next version number, re-reading the versions
 * when another registration claims that number first. Nothing is written unless the candidate is valid.
 */
export async function registerVersion(
  deps: RegistrationDeps,
  name: string,
  bytes: Uint8Array,
  input: RegistrationInput = {},
): Promise<VersionMetadata> {
  const { extra, onnx, sha256, signature } = await validate(deps, name, bytes, input);
  for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
    const existing = await deps.artifacts
      .listVersions(name)
      .catch((error: unknown) => Promise.reject(storeUnavailable(error)));
    const version = String(existing.reduce((max, v) => Math.max(max, Number(v)), 0) + 1);
    const meta: VersionMetadata = VersionMetadataSchema.parse({
      ...extra,
      name,
      version,
      created_at: deps.now().toISOString(),
      sha256,
      size_bytes: bytes.byteLength,
      platform: "onnxruntime_onnx",
      signature,
      producer: onnx.producer,
      onnx: { ir_version: onnx.irVersion, opsets: onnx.opsets },
    });
    try {
      await deps.artifacts.publish(name, version, {
        model: bytes,
        metadata: `${JSON.stringify(meta, null, 2)}\n`,
      });
    } catch (error) {
      if (error instanceof EdgeMLError && error.code === "conflict") continue;
      throw storeUnavailable(error);
    }
    return meta;
  }
  throw new EdgeMLError(
    "conflict",
    `could not claim a version number for '${name}' under contention; try again`,
  );
}
