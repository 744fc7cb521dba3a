// Written by scripts/build_vercel.ts (npm run vercel-build) for EDGEML_VERCEL_RUNTIME=edge. The committed file
// is the edge entry; a nodejs build rewrites it, a default build writes it back.

/**
 * The serving app as a Vercel Edge Function, built once per isolate on its first request.
 *
 * The code is src/runtime/vercel/edge.ts, bundled by the build into dist/vercel/edge.js: one self-contained module
 * importing only the onnxruntime-web wasm as `?module`. It is that bundle the runtime suites run in edge-runtime with
 * strict code generation. See docs/edge.md.
 */
export const config = { runtime: "edge" };

export { default } from "../dist/vercel/edge.js";
