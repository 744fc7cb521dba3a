import { startVercelNode } from "../../scripts/vercel/node-launcher.js";
import { describeEdgeRuntime } from "./support/api-suite.js";

/**
 * Vercel's Node.js runtime (EDGEML_VERCEL_RUNTIME=nodejs): the bundle of src/runtime/vercel/node.ts behind the
 * generated api/[[...route]].js, served by Vercel's own Node launcher (@vercel/node's dev server) over HTTP, its
 * per-method handlers `hono/vercel`'s handle. The same suite as the edge runtimes, against the same app on Node.
 */
describeEdgeRuntime("Vercel Node.js function (Vercel's Node launcher)", "vercel-node", startVercelNode);
