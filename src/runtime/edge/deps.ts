import type { AppDeps } from "../../app.js";
import { precompiledWasm } from "../../inference/precompiled-wasm.js";
import { createYahooMarketData } from "../../market/yahoo.js";
import type { ClientAddress } from "../../routes/ratelimit.js";
import {
  createEmbeddedArtifactStore,
  createEmbeddedPointerStore,
  type EmbeddedRegistry,
} from "../../storage/embedded.js";
import { adaptersFromEnv } from "../adapters.js";
import { configFromEnv, engineFromConfig } from "../env.js";

export interface EdgeDepsOptions {
  /** The environment's variables: `process.env` on Vercel Edge (see vercelEdgeEnv), the `env` binding on workerd. */
  env: Record<string, string | undefined>;
  /**
   * `ort-wasm-simd-threaded.wasm`, precompiled by the platform (on Vercel's Node.js runtime, compiled by
   * src/runtime/vercel/node.ts from onnxruntime-web's own file).
   */
  wasm: WebAssembly.Module;
  /** The registry generated from `models/` at build time; serves unless Blob / Edge Config are configured. */
  embedded: EmbeddedRegistry;
  /** Where the app hands side effects: the edge handler's waitUntil bridge. */
  defer: (work: Promise<unknown>) => void;
  /** The client's address: the platform's own client-IP header (rate limits count by it). */
  clientKey?: ClientAddress;
}

/**
 * Dependencies of an edge runtime (Vercel Edge, workerd): no file system, no compiling wasm from bytes. Storage
 * comes from adaptersFromEnv (Vercel Blob, Edge Config, Upstash Redis, all over fetch) with the embedded registry
 * as the fallback; market data from Yahoo Finance over fetch; onnxruntime-web from the precompiled module. Vercel's
 * Node.js serving function takes the same (its file system is read-only and has no models/ of its own).
 */
export function edgeDeps(options: EdgeDepsOptions): AppDeps {
  const { env, embedded } = options;
  const config = configFromEnv(env);
  const adapters = adaptersFromEnv(env, {
    artifacts: () => createEmbeddedArtifactStore(embedded),
    pointers: () => createEmbeddedPointerStore(embedded),
  });
  return {
    ...adapters,
    engine: engineFromConfig(config, precompiledWasm(options.wasm)),
    market: createYahooMarketData(),
    waitUntil: options.defer,
    clientKey: options.clientKey,
    config,
  };
}
