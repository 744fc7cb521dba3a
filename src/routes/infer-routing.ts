import type { Context } from "hono";
import { clientKeyOf } from "../rollout/client-key.js";
import type { InferenceOperations, InferInput, InferOutput } from "../services/inference.js";
import type { AppEnv } from "./types.js";

/** An infer as every infer route runs it (the JSON route, its fast path, binary bodies): one place for routing. */
export type RoutedInfer = (
  c: Context<AppEnv>,
  name: string,
  version: string | undefined,
  body: InferInput,
) => Promise<InferOutput>;

/**
 * Runs the OIP infer with the client's canary key (`x-client-id`, else the rate limiter's identity; a malformed
 * `x-client-id` is the same 400 as on the forecast routes) and answers which version served and how, in
 * `x-model-version` and `x-chosen-via` (`canary` for a client the rollout sends to its challenger). A named version
 * needs no key: it is served as asked.
 */
export function routedInfer(infer: InferenceOperations["infer"]): RoutedInfer {
  return async (c, name, version, body) => {
    const clientKey = version === undefined ? await clientKeyOf(c) : undefined;
    const result = await infer(name, version, body, {
      clientKey,
      onResolved: (via) => c.header("x-chosen-via", via),
    });
    c.header("x-model-version", result.model_version);
    return result;
  };
}
