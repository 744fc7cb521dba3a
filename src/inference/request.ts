import type { Tensor } from "onnxruntime-web/wasm";
import { EdgeMLError } from "../errors.js";
import type { ModelSignature } from "./engine.js";
import { toOrtTensor } from "./tensors.js";

export interface TensorInput {
  name: string;
  datatype: string;
  shape: number[];
  /** JSON elements, or (binary tensor data, src/inference/binary.ts) the typed array onnxruntime takes, checked. */
  data: unknown[] | ArrayBufferView;
}

/**
 * Checks protocol inputs against a model's signature (names, datatypes, rank and fixed dimensions) and converts them
 * to onnxruntime tensors. Every mismatch is a 400 that names the input and what the model expects.
 */
export function feedsFor(signature: ModelSignature, inputs: readonly TensorInput[]): Record<string, Tensor> {
  // No prototype: input names are the model's and the client's, and `constructor` or `__proto__` are valid ones.
  const feeds: Record<string, Tensor> = Object.create(null);
  const expectedNames = signature.inputs.map((i) => i.name);
  for (const input of inputs) {
    const spec = signature.inputs.find((s) => s.name === input.name);
    if (!spec) {
      throw new EdgeMLError(
        "invalid_tensor",
        `unknown input '${input.name}'; the model's inputs are ${expectedNames.join(", ")}`,
      );
    }
    if (feeds[input.name]) {
      throw new EdgeMLError("invalid_tensor", `input '${input.name}' is given twice; send each input once`);
    }
    if (input.datatype !== spec.datatype) {
      throw new EdgeMLError(
        "invalid_tensor",
        `input '${input.name}' has datatype ${input.datatype} but the model expects ${spec.datatype}`,
      );
    }
    const rankOk = input.shape.length === spec.shape.length;
    const dimsOk = rankOk && spec.shape.every((d, i) => d < 0 || d === input.shape[i]);
    if (!dimsOk) {
      throw new EdgeMLError(
        "invalid_tensor",
        `input '${input.name}' has shape [${input.shape.join(", ")}] but the model expects [${spec.shape.join(", ")}] (-1 is any size)`,
      );
    }
    feeds[input.name] = toOrtTensor(input.name, spec.datatype, input.shape, input.data);
  }
  const missing = expectedNames.filter((name) => !feeds[name]);
  if (missing.length > 0) {
    throw new EdgeMLError(
      "invalid_tensor",
      `missing input(s): ${missing.join(", ")}; the model's inputs are ${expectedNames.join(", ")} (GET /v2/models/{name} lists their shapes)`,
    );
  }
  return feeds;
}

/** Checks a requested output selection against the signature; undefined selects every output. */
export function outputsFor(signature: ModelSignature, requested?: readonly { name: string }[]): string[] {
  const names = signature.outputs.map((o) => o.name);
  if (!requested || requested.length === 0) return names;
  for (const { name } of requested) {
    if (!names.includes(name)) {
      throw new EdgeMLError(
        "invalid_tensor",
        `unknown output '${name}'; the model's outputs are ${names.join(", ")}`,
      );
    }
  }
  return [...new Set(requested.map((r) => r.name))];
}
