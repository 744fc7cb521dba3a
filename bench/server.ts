/**
 * The app on embedded adapters (models and pointers in a temporary directory, onnxruntime-web in this process),
 * plus a bare Hono route, on one @hono/node-server instance at 127.0.0.1 on a port the OS picks.
 *
 * Run by bench/inference.bench.ts through fork(): it sends `{ port, adminToken }` once listening, answers "cpu" with
 * its CPU time so far, and on "stop" (or when the parent goes away) closes the server, removes the temporary directory, reports its engine stats and exits.
 * It runs in its own process so that autocannon, in the parent, does not share the server's event loop.
 */

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { createApp } from "../src/app.js";
import { AppConfigSchema } from "../src/config.js";
import { createOrtEngine } from "../src/inference/engine.js";
import { silentLogger } from "../src/logger.js";
import { createCsvMarketData } from "../src/market/node/csv.js";
import { createFsArtifactStore } from "../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../src/storage/node/json-file-pointers.js";
import { MARKET_DATA } from "./support.js";

export type ServerMessage =
  | { type: "listening"; port: number; adminToken: string }
  | { type: "cpu"; micros: number }
  | { type: "stopped"; runs: number; sessionsCreated: number; unexpectedErrors: number };

if (!process.send) {
  console.error("bench/server.ts is started by bench/inference.bench.ts (it needs an IPC channel)");
  process.exit(2);
}
const send = (message: ServerMessage) => {
  if (process.connected) process.send?.(message);
};

const dir = await mkdtemp(join(tmpdir(), "edgeml-bench-"));
const adminToken = randomBytes(24).toString("hex");
const defaults = AppConfigSchema.parse({});
const engine = createOrtEngine({
  maxSessions: defaults.sessionCacheMax,
  maxSessionBytes: defaults.sessionCacheMaxBytes,
  timeoutMs: defaults.inferTimeoutMs,
});
let unexpectedErrors = 0;
const { app } = createApp({
  artifacts: createFsArtifactStore(join(dir, "models")),
  pointers: createJsonFilePointerStore(join(dir, "pointers.json")),
  engine,
  // Not used by the routes measured here; offline CSVs keep the bench off the network.
  market: createCsvMarketData({ dir: MARKET_DATA }),
  config: { adminToken },
  logger: {
    ...silentLogger,
    error: (context, error) => {
      unexpectedErrors += 1;
      console.error(`bench server: ${context}`, error);
    },
  },
});
app.post("/bare", (c) => c.json({ ok: true }));

await engine.init();
const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
  send({ type: "listening", port: info.port, adminToken }),
);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.close(async () => {
    await rm(dir, { recursive: true, force: true });
    const stats = engine.stats();
    send({ type: "stopped", runs: stats.runs, sessionsCreated: stats.sessionsCreated, unexpectedErrors });
    process.disconnect?.();
    process.exit(0);
  });
  if ("closeAllConnections" in server) server.closeAllConnections();
};
process.on("message", (message) => {
  if (message === "stop") stop();
  if (message === "cpu") {
    // CPU time of the whole process (main thread, libuv pool, GC threads), to put a cost on each request.
    const usage = process.cpuUsage();
    send({ type: "cpu", micros: usage.user + usage.system });
  }
});
process.on("disconnect", stop);
process.on("SIGTERM", stop);
