import { inject } from "vitest";
import type { LocalStackEnv } from "../../../scripts/dev/local-stack";
import { type Adapters, adaptersFromEnv } from "../../../src/runtime/adapters.js";
import { TEST_STORE_TIMEOUT_MS } from "./upstash.js";

export interface ProductionAdaptersOptions {
  /** The servers to use; default: the ones the production-adapters run started (local-stack.setup.ts). */
  stack?: LocalStackEnv;
  /** Reuse a namespace, as a second instance of the same deployment would; default: a fresh one. */
  namespace?: string;
  /** More variables for adaptersFromEnv, e.g. `EDGE_CONFIG_CACHE_TTL_MS`. */
  env?: Record<string, string>;
}

/**
 * The production adapters, built by the production wiring (adaptersFromEnv) against local servers. Each call gets
 * a namespace of its own unless told otherwise — a Blob folder, an Edge Config key prefix, a Redis key prefix — so
 * test apps never see each other's models, pointers or cache.
 */
export function productionAdapters(
  options: ProductionAdaptersOptions = {},
): Adapters & { namespace: string } {
  const stack = options.stack ?? inject("localStack");
  if (!stack) {
    throw new Error(
      "edgeml tests: EDGEML_ADAPTERS=production needs the local stack; run `npm run test:production-adapters`",
    );
  }
  // The Blob client reads its API URL from the environment on every call; one emulator serves the whole run.
  process.env.VERCEL_BLOB_API_URL = stack.VERCEL_BLOB_API_URL;
  const namespace = options.namespace ?? `t${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const refuse = () => {
    throw new Error("edgeml tests: the local stack must configure every production adapter");
  };
  const adapters = adaptersFromEnv(
    {
      ...stack,
      UPSTASH_KEY_PREFIX: `${namespace}:`,
      EDGE_CONFIG_KEY_PREFIX: namespace,
      BLOB_PREFIX: `${namespace}/models/`,
      // Production's 1 s is for a request path; a busy CI machine can stall a healthy local round trip past it.
      UPSTASH_TIMEOUT_MS: String(TEST_STORE_TIMEOUT_MS),
      ...options.env,
    },
    { artifacts: refuse, pointers: refuse },
  );
  return { ...adapters, namespace };
}
