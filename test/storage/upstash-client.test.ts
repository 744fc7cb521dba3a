import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adaptersFromEnv } from "../../src/runtime/adapters.js";

/** A TCP server that accepts each connection and resets it at once: a network error to every request, counted. */
let server: Server;
let connections = 0;
beforeAll(async () => {
  server = createServer((socket: Socket) => {
    connections += 1;
    socket.resetAndDestroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe("the @upstash/redis client as the production wiring builds it", () => {
  it("retries a network error once, not five times behind the adapters' timeout", async () => {
    const { port } = server.address() as { port: number };
    // Artifacts and pointers are not under test: any object stands in for them.
    const unused = () => ({}) as never;
    const adapters = adaptersFromEnv(
      {
        UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`,
        UPSTASH_REDIS_REST_TOKEN: "token",
        // Generous, so the count below is the client's retries, never a timeout cutting them short.
        UPSTASH_TIMEOUT_MS: "60000",
      },
      { artifacts: unused, pointers: unused },
    );
    const before = connections;
    await expect(adapters.jobs.get(crypto.randomUUID())).rejects.toMatchObject({ failure: "unavailable" });
    // One attempt and one retry. The client's default (5 retries, exp(n)·50 ms apart) made 6 connections over 4.3 s.
    expect(connections - before).toBe(2);
  });
});
