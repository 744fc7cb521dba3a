/**
 * The serving app as a Vercel Edge Function, built once per isolate on its first request.
 *
 * The code is src/runtime/vercel/edge.ts, bundled by `npm run build:edge` (Vercel runs it as `vercel-build`) into
 * dist/vercel/edge.js: one self-contained module importing only the onnxruntime-web wasm as `?module`. It is that
 * bundle the runtime suites run in edge-runtime with strict code generation. See docs/edge.md.
 */
export const config = { runtime: "edge" };

export { default } from "../dist/vercel/edge.js";
