/**
 * The Vercel Edge Function's code, bundled by `npm run build:edge` into dist/vercel/edge.js, which
 * api/[[...route]].ts exports. The wasm stays an import: Vercel compiles `?module` imports into a
 * WebAssembly.Module at deploy time (the edge cannot compile wasm from bytes). See docs/edge.md.
 */
import { EMBEDDED_REGISTRY } from "edgeml:embedded-registry";
import wasm from "../../../wasm/ort-wasm-simd-threaded.wasm?module";
import { edgeDeps } from "../edge/deps.js";
import { createEdgeHandler, type EdgeContext } from "../edge/handler.js";
import { VERCEL_CLIENT_ADDRESS } from "./client-address.js";
import { vercelEdgeEnv } from "./edge-env.js";

export { VERCEL_CLIENT_ADDRESS };

const handler = createEdgeHandler((env: Record<string, string | undefined>, defer) =>
  edgeDeps({ env, wasm, embedded: EMBEDDED_REGISTRY, defer, clientKey: VERCEL_CLIENT_ADDRESS }),
);

/** Vercel calls an edge function with the request and a context whose waitUntil outlives the response. */
export default function edgeml(request: Request, context: EdgeContext): Promise<Response> {
  return handler.fetch(request, vercelEdgeEnv(), context);
}
