import { Redis } from "@upstash/redis";
import { afterAll, beforeAll } from "vitest";
import { type RedisServerHandle, startRedisServer } from "../../../scripts/dev/redis-server";
import { startUpstashBridge, type UpstashBridgeHandle } from "../../../scripts/dev/upstash-bridge";

/**
 * Timeout of the Upstash adapters in tests. Production keeps 1 s (a cache read is on the response path); a CI
 * machine with both cores busy can stall a healthy local round trip past that, so tests that do not inject a fault
 * must never see one fire. Outages in tests are injected (a killed redis-server, a 500), and answer at once.
 */
export const TEST_STORE_TIMEOUT_MS = 15_000;

export interface LocalUpstash {
  /** The real redis-server behind the bridge: kill() and restart() it to test outages. */
  readonly redisServer: RedisServerHandle;
  readonly bridge: UpstashBridgeHandle;
  /** The real client as production builds it (auto-pipelining on, base64 responses). */
  client(options?: { automaticDeserialization?: boolean }): Redis;
  /** A key prefix no other test uses. */
  freshPrefix(): string;
}

/**
 * Starts a real redis-server and the Upstash REST bridge for the calling test file (beforeAll/afterAll), on ports
 * the OS picks. The returned object's fields are valid inside tests.
 */
export function useLocalUpstash(): LocalUpstash {
  let redisServer: RedisServerHandle | undefined;
  let bridge: UpstashBridgeHandle | undefined;
  beforeAll(async () => {
    redisServer = await startRedisServer();
    bridge = await startUpstashBridge({ redisUrl: redisServer.url, token: "test-token" });
  });
  afterAll(async () => {
    await bridge?.close();
    await redisServer?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (!value) throw new Error("useLocalUpstash: use it inside a test, after beforeAll");
    return value;
  };
  return {
    get redisServer() {
      return started(redisServer);
    },
    get bridge() {
      return started(bridge);
    },
    client(options = {}) {
      const { url, token } = started(bridge);
      return new Redis({ url, token, ...options });
    },
    freshPrefix: () => `t${crypto.randomUUID().slice(0, 8)}:`,
  };
}
