import { EdgeMLError } from "../errors.js";
import type { InferenceEngine, ModelSignature } from "../inference/engine.js";
import { describeOnnx } from "../inference/onnx-model.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import { sha256Hex } from "../util/hash.js";
import { duplicateOf } from "./duplicates.js";
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
  /** The readable metadata of these listed versions of the model, read fresh enough to see every published one. */
  existing(name: string, versions: string[]): Promise<VersionMetadata[]>;
}

/** A registration's outcome: a new version, or the existing one it equals (nothing was written). */
export type RegistrationOutcome =
  /** `versions`: the model's versions as listed when it was published, itself included. */
  | { kind: "registered"; meta: VersionMetadata; versions: string[] }
  | { kind: "duplicate"; meta: VersionMetadata };

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
 * when another registration claims that number first. Nothing is written unless the candidate is valid, and nothing
 * when it has the bytes and calibration of a version the model already has (duplicates.ts): that version is the
 * answer. The caller serialises registrations of one model (Registry's lock), so two identical ones racing in one
 * process make one version; the check runs again after every lost race for a number.
 */
export async function registerVersion(
  deps: RegistrationDeps,
  name: string,
  bytes: Uint8Array,
  input: RegistrationInput = {},
): Promise<RegistrationOutcome> {
  const { extra, onnx, sha256, signature } = await validate(deps, name, bytes, input);
  for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
    const existing = await deps.artifacts
      .listVersions(name)
      .catch((error: unknown) => Promise.reject(storeUnavailable(error)));
    if (existing.length > 0) {
      const same = duplicateOf({ ...extra, sha256 }, await deps.existing(name, existing));
      if (same) return { kind: "duplicate", meta: same };
    }
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
    return { kind: "registered", meta, versions: [...existing, version] };
  }
  throw new EdgeMLError(
    "conflict",
    `could not claim a version number for '${name}' under contention; try again`,
  );
}
