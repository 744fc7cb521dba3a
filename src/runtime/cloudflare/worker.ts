/**
 * The serving app as a Cloudflare Worker (workerd): the second edge target. wrangler.toml compiles the wasm as a
 * CompiledWasm module; the environment's variables and secrets arrive as `env`. See docs/edge.md.
 */

import { EMBEDDED_REGISTRY } from "edgeml:embedded-registry";
import wasm from "../../../wasm/ort-wasm-simd-threaded.wasm?module";
import { platformAddress } from "../../routes/ratelimit.js";
import { edgeDeps } from "../edge/deps.js";
import { createEdgeHandler, type EdgeContext } from "../edge/handler.js";

/** Worker variables and secrets; only strings are read (bindings of other kinds are ignored). */
type WorkerEnv = Record<string, unknown>;

const strings = (env: WorkerEnv): Record<string, string | undefined> =>
  Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );

const handler = createEdgeHandler((env: WorkerEnv, defer) =>
  // Cloudflare sets cf-connecting-ip itself on every request to a Worker: the client's address.
  edgeDeps({
    env: strings(env),
    wasm,
    embedded: EMBEDDED_REGISTRY,
    defer,
    clientKey: platformAddress("cf-connecting-ip"),
  }),
);

export default {
  fetch(request: Request, env: WorkerEnv, context: EdgeContext): Promise<Response> {
    return handler.fetch(request, env, context);
  },
};
