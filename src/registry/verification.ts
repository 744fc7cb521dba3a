import type { Tensor } from "onnxruntime-web/wasm";
import { createAsyncCache } from "../cache/async-cache.js";
import { EdgeMLError } from "../errors.js";
import type { InferenceEngine, ModelSignature } from "../inference/engine.js";
import { feedsFor } from "../inference/request.js";
import { flatten, fromOrtTensor } from "../inference/tensors.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import { sha256Hex } from "../util/hash.js";
import { storeUnavailable } from "./failures.js";
import type { Golden, VersionMetadata } from "./metadata.js";
import { sessionKey } from "./metadata-reads.js";

/** Sessions verified at most in this process's memory (more than any engine keeps warm). */
const MAX_VERIFIED = 10_000;

/** Compares golden outputs element by element; returns a description of the first mismatch, or null. */
function goldenMismatch(golden: Golden, caseIndex: number, outputs: Record<string, Tensor>): string | null {
  const expected = golden.cases[caseIndex];
  if (!expected) return null;
  for (const want of expected.outputs) {
    // Names come from the registration's golden rows: an own key only, never an Object.prototype member.
    const tensor = Object.hasOwn(outputs, want.name) ? outputs[want.name] : undefined;
    if (!tensor) return `case ${caseIndex}: the model has no output '${want.name}'`;
    const got = fromOrtTensor(want.name, tensor).data;
    const wanted = flatten(want.data);
    if (got.length !== wanted.length) {
      return `case ${caseIndex}: output '${want.name}' has ${got.length} elements, golden rows have ${wanted.length}`;
    }
    for (let i = 0; i < got.length; i++) {
      const a = got[i];
      const b = wanted[i];
      const same =
        typeof a === "number" && typeof b === "number"
          ? Math.abs(a - b) <= golden.atol || Object.is(a, b)
          : a === b;
      if (!same) {
        return `case ${caseIndex}: output '${want.name}'[${i}] is ${String(a)}, golden row says ${String(b)} (atol ${golden.atol})`;
      }
    }
  }
  return null;
}

export interface Verification {
  /** Loads a version's bytes from the store and checks them against its sha256. */
  loader(meta: VersionMetadata): () => Promise<Uint8Array>;
  /** Runs the golden rows through the session `key`; the first mismatch, or null. */
  runGolden(
    key: string,
    load: () => Promise<Uint8Array>,
    signature: ModelSignature,
    golden: Golden,
  ): Promise<string | null>;
  /** Loads the version's session and checks its golden rows, once per process. */
  prepare(meta: VersionMetadata): Promise<void>;
}

/** Verification at load: sha256 of the bytes against the metadata, then the golden rows, before a version serves. */
export function createVerification(deps: {
  artifacts: ArtifactStore;
  engine: InferenceEngine;
  inferTimeoutMs: number;
}): Verification {
  const { artifacts, engine } = deps;

  const loader = (meta: VersionMetadata) => async (): Promise<Uint8Array> => {
    const bytes = await artifacts
      .getModel(meta.name, meta.version)
      .catch((error: unknown) => Promise.reject(storeUnavailable(error)));
    if (!bytes) {
      throw new EdgeMLError(
        "model_unavailable",
        `the bytes of ${sessionKey(meta)} are missing from the store`,
      );
    }
    const digest = await sha256Hex(bytes);
    if (digest !== meta.sha256) {
      throw new EdgeMLError(
        "model_unavailable",
        `${sessionKey(meta)} failed its integrity check (sha256 ${digest} ≠ ${meta.sha256}); it will not serve. Re-register the model or promote another version`,
      );
    }
    return bytes;
  };

  const runGolden: Verification["runGolden"] = async (key, load, signature, golden) => {
    for (let i = 0; i < golden.cases.length; i++) {
      const testCase = golden.cases[i];
      if (!testCase) continue;
      const outputs = await engine.run({
        key,
        load,
        feeds: feedsFor(signature, testCase.inputs),
        outputs: testCase.outputs.map((o) => o.name),
        timeoutMs: deps.inferTimeoutMs,
      });
      const mismatch = goldenMismatch(golden, i, outputs);
      if (mismatch) return mismatch;
    }
    return null;
  };

  // Policy: memo (a version verified once serves for the life of the process); a failure is not kept, so a
  // transient store error does not disable a version for the life of the process.
  const verified = createAsyncCache<string, true, VersionMetadata>({
    policy: { kind: "memo" },
    max: MAX_VERIFIED,
    load: async (key, meta) => {
      const load = loader(meta);
      await engine.signature(key, load);
      if (!meta.golden) return true;
      const mismatch = await runGolden(key, load, meta.signature, meta.golden);
      if (mismatch) {
        engine.evict(key);
        throw new EdgeMLError(
          "model_unavailable",
          `${key} no longer reproduces its golden rows (${mismatch}); it will not serve. Promote another version`,
        );
      }
      return true;
    },
  });

  return {
    loader,
    runGolden,
    async prepare(meta) {
      await verified.get(sessionKey(meta), meta);
    },
  };
}
