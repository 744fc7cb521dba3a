import type { AppDeps } from "../../app.js";
import { adaptersFromEnv } from "../adapters.js";
import { nodeDeps } from "../node/deps.js";
import { VERCEL_CLIENT_ADDRESS } from "./client-address.js";
import { vercelWaitUntil } from "./request-context.js";

/**
 * Dependencies of the Vercel Node.js function (training and the cron): the Node runtime's (onnxruntime-web from
 * bytes, Yahoo Finance) with the production stores from the environment. The deployment's file system is
 * read-only, so training there needs Vercel Blob: without BLOB_READ_WRITE_TOKEN the cron says so instead of
 * failing on a write.
 */
export function vercelNodeDeps(env: Record<string, string | undefined>): {
  deps: AppDeps;
  trainingUnavailable?: string;
} {
  const base = nodeDeps(env);
  const adapters = adaptersFromEnv(env, { artifacts: () => base.artifacts, pointers: () => base.pointers });
  const onVercel = Boolean(env.VERCEL);
  return {
    // Behind Vercel's proxy the socket is Vercel's: the client is in the headers Vercel sets.
    deps: {
      ...base,
      ...adapters,
      waitUntil: vercelWaitUntil,
      clientKey: VERCEL_CLIENT_ADDRESS,
    },
    trainingUnavailable:
      onVercel && !env.BLOB_READ_WRITE_TOKEN
        ? "training on Vercel needs a writable model store: set BLOB_READ_WRITE_TOKEN (Vercel Blob) and EDGE_CONFIG (pointers)"
        : undefined,
  };
}
