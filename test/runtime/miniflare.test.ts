import { startMiniflare } from "../../scripts/edge/runtimes.js";
import { describeEdgeRuntime } from "./support/api-suite.js";

/** Cloudflare Workers: the bundle of src/runtime/cloudflare/worker.ts in workerd (miniflare), the wasm a CompiledWasm module. */
describeEdgeRuntime("Cloudflare Workers (workerd via miniflare)", "workerd", startMiniflare);
