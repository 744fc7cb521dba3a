/**
 * The serving app as a Vercel Node.js function (`EDGEML_VERCEL_RUNTIME=nodejs`), for the plans whose Edge Function
 * size limit the onnxruntime-web wasm alone exceeds (docs/edge.md, "Which runtime on Vercel"). `npm run
 * vercel-build` bundles it into dist/vercel/node.js, which the generated api/[[...route]].ts exports.
 *
 * It is the edge function's wiring with two differences. The same: one app from createApp, built on the first request
 * by createEdgeHandler (cold start reported in `x-edgeml-init-ms`, a start failure answered 503 `not_ready`), the
 * production stores from the environment (Vercel Blob, Edge Config, Upstash Redis) with the models of models/
 * embedded in the bundle as the read-only fallback, Yahoo Finance for market data, no trainer (vercel.json sends
 * training to api/train.ts), and /dashboard left to the static output. The differences: onnxruntime-web is imported
 * from node_modules and its wasm compiled here, on the first request, from the file there (the edge platforms compile
 * it at deploy), and background work is handed to Vercel's `waitUntil` of the request being served
 * (src/runtime/vercel/request-context.ts).
 *
 * Every model runs inline, as on the edge: the Node server's worker-thread isolation would need a second file
 * traced into the function, and the function's `maxDuration` ends a run that never returns.
 */

import { EMBEDDED_REGISTRY } from "edgeml:embedded-registry";
import { readFileSync } from "node:fs";
import { Hono } from "hono";
import { handle } from "hono/vercel";
import { edgeDeps } from "../edge/deps.js";
import { createEdgeHandler } from "../edge/handler.js";
import { VERCEL_CLIENT_ADDRESS } from "./client-address.js";
import { vercelWaitUntil } from "./request-context.js";

/**
 * onnxruntime-web's wasm, compiled here from the file beside the module Node resolves `onnxruntime-web/wasm` to (Vercel
 * traces that file into the function), and started as on the edge (precompiledWasm). Left to itself, onnxruntime-web
 * on Node would import its Emscripten glue, ort-wasm-simd-threaded.mjs, by a computed path that Vercel's tracing does
 * not follow, and fail to start in the deployed function; given the module, it uses the glue bundled in its own file.
 */
function ortWasm(): WebAssembly.Module {
  return new WebAssembly.Module(
    readFileSync(new URL("ort-wasm-simd-threaded.wasm", import.meta.resolve("onnxruntime-web/wasm"))),
  );
}

/** Vercel's context for the function's deferred work: the request's own `waitUntil`, looked up when work is handed. */
const context = { waitUntil: (work: Promise<unknown>) => vercelWaitUntil(work) };

/**
 * The function as a Hono app over `env` (the process's environment on Vercel), for `hono/vercel`'s `handle`: every
 * path goes to the edge handler, which builds the app on the first request.
 */
export function createVercelNodeApp(env: Record<string, string | undefined> = process.env): Hono {
  const handler = createEdgeHandler((vars: Record<string, string | undefined>, defer) =>
    edgeDeps({
      env: vars,
      wasm: ortWasm(),
      embedded: EMBEDDED_REGISTRY,
      defer,
      clientKey: VERCEL_CLIENT_ADDRESS,
    }),
  );
  const app = new Hono();
  app.all("*", (c) => handler.fetch(c.req.raw, env, context));
  return app;
}

const fetch = handle(createVercelNodeApp());

/**
 * Web-standard handlers per method, the shape Vercel's Node.js launcher turns into a request handler (as for
 * api/train.ts). A `default` function export would be taken for a Node `(req, res)` handler instead.
 */
export {
  fetch as DELETE,
  fetch as GET,
  fetch as HEAD,
  fetch as OPTIONS,
  fetch as PATCH,
  fetch as POST,
  fetch as PUT,
};
