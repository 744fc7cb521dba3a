/**
 * The four local stand-ins of the production services, started together on free ports of 127.0.0.1: a real
 * redis-server with the Upstash REST bridge in front, the Edge Config emulator and the Blob emulator. Used by
 * `npm run dev:stack`, by the production-adapter test run (vitest global setup) and by the storage suites.
 */
import { type BlobEmulatorHandle, startBlobEmulator } from "./blob-emulator";
import { type EdgeConfigEmulatorHandle, startEdgeConfigEmulator } from "./edge-config-emulator";
import { type RedisServerHandle, startRedisServer } from "./redis-server";
import { startUpstashBridge, type UpstashBridgeHandle } from "./upstash-bridge";

/** The bridge's bearer token: a fixed dev value, the services listen on loopback only. */
export const LOCAL_UPSTASH_TOKEN = "edgeml-dev-upstash-token";

export interface LocalStackOptions {
  /** Ports for each service; 0 (default) lets the OS pick. */
  ports?: { redis?: number; upstash?: number; edgeConfig?: number; blob?: number };
  /** Edge Config size limit; default 512 KiB as Vercel's Enterprise plan. Test runs with many apps raise it. */
  edgeConfigMaxSizeBytes?: number;
}

export interface LocalStack {
  redis: RedisServerHandle;
  upstash: UpstashBridgeHandle;
  edgeConfig: EdgeConfigEmulatorHandle;
  blob: BlobEmulatorHandle;
  /** The environment that points the app (adaptersFromEnv) and the clients at this stack. */
  env: LocalStackEnv;
  close(): Promise<void>;
}

/** Plain strings only, so the value can cross process boundaries (vitest `provide`, a child's env). */
export interface LocalStackEnv {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
  EDGE_CONFIG: string;
  EDGE_CONFIG_ID: string;
  VERCEL_API_TOKEN: string;
  VERCEL_API_URL: string;
  BLOB_READ_WRITE_TOKEN: string;
  VERCEL_BLOB_API_URL: string;
}

/** The variables that point the app (adaptersFromEnv) and the clients at an Upstash endpoint and the emulators. */
export function localStackEnv(
  upstash: { url: string; token: string },
  edgeConfig: Pick<EdgeConfigEmulatorHandle, "connectionString" | "id" | "apiToken" | "url">,
  blob: Pick<BlobEmulatorHandle, "token" | "apiUrl">,
): LocalStackEnv {
  return {
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: upstash.token,
    EDGE_CONFIG: edgeConfig.connectionString,
    EDGE_CONFIG_ID: edgeConfig.id,
    VERCEL_API_TOKEN: edgeConfig.apiToken,
    VERCEL_API_URL: edgeConfig.url,
    BLOB_READ_WRITE_TOKEN: blob.token,
    VERCEL_BLOB_API_URL: blob.apiUrl,
  };
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const started: { close(): Promise<void> }[] = [];
  try {
    const redis = await startRedisServer({ port: options.ports?.redis ?? 0 });
    started.push(redis);
    const upstash = await startUpstashBridge({
      redisUrl: redis.url,
      token: LOCAL_UPSTASH_TOKEN,
      port: options.ports?.upstash ?? 0,
    });
    started.push(upstash);
    const edgeConfig = await startEdgeConfigEmulator({
      port: options.ports?.edgeConfig ?? 0,
      ...(options.edgeConfigMaxSizeBytes ? { maxSizeBytes: options.edgeConfigMaxSizeBytes } : {}),
    });
    started.push(edgeConfig);
    const blob = await startBlobEmulator({ port: options.ports?.blob ?? 0 });
    started.push(blob);
    const env = localStackEnv(upstash, edgeConfig, blob);
    return { redis, upstash, edgeConfig, blob, env, close: () => closeAll(started) };
  } catch (error) {
    await closeAll(started);
    throw error;
  }
}

/** Closes in reverse start order, so the bridge goes before the redis-server it talks to. */
async function closeAll(started: { close(): Promise<void> }[]): Promise<void> {
  for (const service of [...started].reverse()) {
    await service.close().catch(() => {});
  }
}
