/**
 * The app as `npm start` wires it (src/runtime/node/deps.ts, default configuration) on a copy of the shipped
 * `models/` in a temporary directory, plus a bare Hono route, on one @hono/node-server instance at 127.0.0.1 on a
 * port the OS picks. Defaults kept on purpose: rate limits per client (counted by socket address, in memory),
 * metrics (the in-memory store), the prediction log (SQLite in the temporary directory), usage counters, and the
 * engine that runs tree models inline and isolates only models whose cost their input does not bound. The only
 * change is the public budget, raised so the load (one client, 127.0.0.1) is counted but never refused: every
 * request still pays the limiter.
 *
 * Run by bench/inference.bench.ts through fork(): it sends `{ port, adminToken }` once listening, answers "cpu" with
 * its CPU time so far, and on "stop" (or when the parent goes away) closes the server, removes the temporary directory,
 * reports its engine stats and exits. It runs in its own process so that autocannon, in the parent, does not share
 * the server's event loop. On `{ profile: "start" }` / `{ profile: "stop", file }` it takes a V8 CPU profile of what
 * runs in between (bench --profile): the load alone, without start-up and warm-up.
 */

import { randomBytes } from "node:crypto";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { createApp } from "../src/app.js";
import { silentLogger } from "../src/logger.js";
import { nodeDeps } from "../src/runtime/node/deps.js";
import { BENCH_RATE_LIMIT_PUBLIC, MARKET_DATA, REPO_ROOT } from "./support.js";

export type ServerMessage =
  | { type: "listening"; port: number; adminToken: string }
  | { type: "cpu"; micros: number }
  | { type: "profiled" }
  | {
      type: "stopped";
      runs: number;
      sessionsCreated: number;
      unexpectedErrors: number;
      rateLimited: number;
      /** Forecasts of BTC-24h computed rather than served from the prediction cache (usage counters). */
      forecastMisses: number;
    };

if (!process.send) {
  console.error("bench/server.ts is started by bench/inference.bench.ts (it needs an IPC channel)");
  process.exit(2);
}
const send = (message: ServerMessage) => {
  if (process.connected) process.send?.(message);
};

const dir = await mkdtemp(join(tmpdir(), "edgeml-bench-"));
await cp(join(REPO_ROOT, "models"), join(dir, "models"), { recursive: true });
const adminToken = randomBytes(24).toString("hex");
// An explicit environment, not process.env: no variable of the machine (Upstash, Blob) changes the adapters.
const deps = nodeDeps({
  MODELS_DIR: join(dir, "models"),
  PREDICTION_LOG_FILE: join(dir, "predictions.sqlite"),
  MARKET_DATA_DIR: MARKET_DATA,
  ADMIN_TOKEN: adminToken,
  RATE_LIMIT_PUBLIC: BENCH_RATE_LIMIT_PUBLIC,
});
let unexpectedErrors = 0;
const { app, rateLimit, services } = createApp({
  ...deps,
  logger: {
    ...silentLogger,
    error: (context, error) => {
      unexpectedErrors += 1;
      console.error(`bench server: ${context}`, error);
    },
  },
});
app.post("/bare", (c) => c.json({ ok: true }));

await deps.engine.init();
const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
  send({ type: "listening", port: info.port, adminToken }),
);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.close(async () => {
    const usage = await services.usage.read("BTC-24h", await services.registry.versionNames("BTC-24h"));
    const forecastMisses = Object.values(usage.versions).reduce(
      (n, u) => n + u.cache_miss + u.cache_bypass,
      0,
    );
    await rm(dir, { recursive: true, force: true });
    const stats = deps.engine.stats();
    const limited = rateLimit.stats().limited;
    send({
      type: "stopped",
      runs: stats.runs,
      sessionsCreated: stats.sessionsCreated,
      unexpectedErrors,
      rateLimited: limited.public + limited.admin + limited.coldLoad,
      forecastMisses,
    });
    process.disconnect?.();
    process.exit(0);
  });
  if ("closeAllConnections" in server) server.closeAllConnections();
};
// A CPU profile of the timed load only (start-up and warm-up left out): `{ profile: "start" }`, then
// `{ profile: "stop", file }` writes it (bench --profile DIR).
let profiler: Session | undefined;
const profile = async (message: { profile: "start" } | { profile: "stop"; file: string }) => {
  if (message.profile === "start") {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.setSamplingInterval", { interval: 100 });
    await profiler.post("Profiler.start");
  } else if (profiler) {
    const { profile: taken } = await profiler.post("Profiler.stop");
    await writeFile(message.file, JSON.stringify(taken));
    profiler.disconnect();
    profiler = undefined;
  }
  send({ type: "profiled" });
};
process.on("message", (message) => {
  if (typeof message === "object" && message !== null && "profile" in message) {
    void profile(message as Parameters<typeof profile>[0]);
    return;
  }
  if (message === "stop") stop();
  if (message === "cpu") {
    // CPU time of the whole process (main thread, libuv pool, GC threads), to put a cost on each request.
    const usage = process.cpuUsage();
    send({ type: "cpu", micros: usage.user + usage.system });
  }
});
process.on("disconnect", stop);
process.on("SIGTERM", stop);
