import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  findRedisServerBinary,
  type RedisServerHandle,
  RedisServerNotInstalledError,
  startRedisServer,
} from "../../scripts/dev/redis-server";

/** One short-lived connection per check, so a killed server cannot leave a reconnecting client behind. */
async function ping(url: string): Promise<string> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 1_000 } });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.ping();
  } finally {
    client.destroy();
  }
}

describe("startRedisServer()", () => {
  let server: RedisServerHandle;

  beforeAll(async () => {
    server = await startRedisServer({ port: 0 });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("listens on 127.0.0.1 on a port the OS picked and answers PING", async () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.isRunning()).toBe(true);
    await expect(ping(server.url)).resolves.toBe("PONG");
  });

  it("runs without persistence", async () => {
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      expect(await client.configGet("save")).toEqual({ save: "" });
      expect(await client.configGet("appendonly")).toEqual({ appendonly: "no" });
      expect(await client.configGet("bind")).toEqual({ bind: "127.0.0.1" });
    } finally {
      client.destroy();
    }
  });

  it("kill() crashes it and restart() brings an empty server back on the same port", async () => {
    const client = createClient({ url: server.url });
    await client.connect();
    await client.set("survives-a-crash", "no");
    client.destroy();
    const port = server.port;

    await server.kill();
    expect(server.isRunning()).toBe(false);
    expect(server.pid).toBeUndefined();
    await expect(ping(server.url)).rejects.toThrow();

    await server.restart();
    expect(server.port).toBe(port);
    expect(server.isRunning()).toBe(true);
    const after = createClient({ url: server.url });
    await after.connect();
    try {
      expect(await after.get("survives-a-crash")).toBeNull();
    } finally {
      after.destroy();
    }
  });

  it("stop() is graceful and idempotent", async () => {
    const own = await startRedisServer();
    await own.stop();
    await own.stop();
    expect(own.isRunning()).toBe(false);
    await expect(ping(own.url)).rejects.toThrow();
  });
});

describe("when redis-server is not installed", () => {
  it("throws an error that says how to install it", async () => {
    const attempt = startRedisServer({ binary: "/nonexistent/redis-server" });
    await expect(attempt).rejects.toBeInstanceOf(RedisServerNotInstalledError);
    await expect(attempt).rejects.toThrow("apt-get install -y redis-server");
  });

  it("still finds Debian's binary with an empty PATH", () => {
    expect(findRedisServerBinary("")).toMatch(/\/redis-server$/);
  });
});
