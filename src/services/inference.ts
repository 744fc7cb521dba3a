import { EdgeMLError } from "../errors.js";
import type { TensorSpec } from "../inference/engine.js";
import { feedsFor, outputsFor, type TensorInput } from "../inference/request.js";
import { fromOrtTensor, type JsonTensor } from "../inference/tensors.js";
import { deadlineIn, type Registry, type Resolved } from "../registry/registry.js";
import type { Resolution } from "../registry/resolution.js";
import type { UsageTracker } from "../tracking/usage.js";

/** An Open Inference Protocol v2 request, as the route has validated it. */
export interface InferInput {
  id?: string;
  inputs: TensorInput[];
  outputs?: { name: string }[];
}

export interface InferOutput {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: JsonTensor[];
}

/** OIP model metadata: the version that serves (or the one named), its signature, and the model's versions. */
/** Who is asking, for a canary rollout, and who hears how the version was chosen (the route's `x-chosen-via`). */
export interface InferRouting {
  /** The client's canary key (`x-client-id`, else the rate limiter's identity): a canary may choose its challenger. */
  clientKey?: string;
  onResolved?: (via: Resolution) => void;
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** The Open Inference Protocol's operations on the registry: what /v2 serves and the CLI's `predict` calls. */
export function createInferenceOperations(deps: {
  registry: Registry;
  usage: UsageTracker;
  timeoutMs: number;
}) {
  const { registry } = deps;
  const metadataOf = async ({ meta }: Resolved, withVersions: boolean): Promise<ModelMetadata> => ({
    name: meta.name,
    versions: withVersions ? await registry.versionNames(meta.name) : [meta.version],
    platform: meta.platform,
    inputs: meta.signature.inputs,
    outputs: meta.signature.outputs,
  });
  return {
    /** Metadata of the version that serves by default (listing every version), or of the version named. */
    metadata: async (name: string, version?: string): Promise<ModelMetadata> =>
      metadataOf(await registry.resolve(name, version), version === undefined),
    /** Loads and verifies the version (the serving one by default): what a readiness probe asks. */
    async ready(name: string, version?: string) {
      const resolved = await registry.resolve(name, version);
      await registry.prepare(resolved.meta);
      return { name, version: resolved.meta.version, ready: true };
    },
    async infer(
      name: string,
      version: string | undefined,
      body: InferInput,
      routing: InferRouting = {},
    ): Promise<InferOutput> {
      // One deadline for the whole request: a stalled store read during resolution answers 504 like a slow run.
      const deadline = deadlineIn(deps.timeoutMs);
      const { meta, via } = await registry.resolve(name, version, deadline, routing.clientKey);
      routing.onResolved?.(via);
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
    },
  };
}

export type InferenceOperations = ReturnType<typeof createInferenceOperations>;
