/**
 * A real Debian `redis-server` for tests and local development: started on a free port of 127.0.0.1, with no
 * persistence, and owned by the process that started it (it is SIGKILLed when that process exits).
 *
 *   npx tsx scripts/dev/redis-server.ts --port 6380
 *
 * The programmatic API (`startRedisServer`) is what test suites use; `kill()` + `restart()` simulate a crash and a
 * recovery on the same port, which is how the Upstash bridge's outage behaviour is tested.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parseArgs } from "node:util";
import { failCli, isMain, parsePort, runUntilSignal } from "./lib/cli";
import { LOOPBACK } from "./lib/http";

/** Long enough for a cold start on a loaded 2-core CI machine; a healthy redis-server answers in ~10 ms. */
const DEFAULT_STARTUP_TIMEOUT_MS = 10_000;
/** SIGTERM makes redis-server exit at once when it has nothing to save; past this we SIGKILL it. */
const STOP_GRACE_MS = 3_000;
/** Picking a free port and binding it are two steps; another process can win the race, so we retry. */
const PORT_ATTEMPTS = 5;

export interface RedisServerOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Path of the `redis-server` binary; default: found on PATH or in /usr/bin, /usr/sbin. */
  binary?: string;
  /** How long to wait for the first PONG; default 10 s. */
  startupTimeoutMs?: number;
  /** More `--name value` arguments for redis-server, e.g. `["--maxmemory", "16mb"]`. */
  extraArgs?: readonly string[];
}

export interface RedisServerHandle {
  readonly port: number;
  /** `redis://127.0.0.1:PORT`, for `createClient({ url })`. */
  readonly url: string;
  /** PID of the current redis-server process, undefined while it is down. */
  readonly pid: number | undefined;
  isRunning(): boolean;
  /** Graceful shutdown (SIGTERM). Idempotent. */
  stop(): Promise<void>;
  /** Crash (SIGKILL): in-flight commands fail, clients see the connection drop. */
  kill(): Promise<void>;
  /** Starts a fresh, empty redis-server on the same port (stopping the current one first if it runs). */
  restart(): Promise<void>;
  /** Same as `stop()`; named for symmetry with the other dev tools. */
  close(): Promise<void>;
}

/** Thrown when no redis-server binary can be found; its message says how to install one. */
export class RedisServerNotInstalledError extends Error {
  constructor(searched: string) {
    super(
      `edgeml dev: redis-server was not found (searched ${searched}). ` +
        "Install it with `apt-get install -y redis-server` (Debian/Ubuntu), or pass `binary`.",
    );
    this.name = "RedisServerNotInstalledError";
  }
}

/** The first executable `redis-server` on PATH or in the Debian locations, or undefined. */
export function findRedisServerBinary(pathEnv = process.env.PATH ?? ""): string | undefined {
  const dirs = [...pathEnv.split(delimiter).filter(Boolean), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  for (const dir of dirs) {
    const candidate = join(dir, "redis-server");
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** Starts redis-server and resolves once it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const binary = options.binary ?? findRedisServerBinary();
  if (!binary) throw new RedisServerNotInstalledError("PATH, /usr/bin, /usr/sbin, /usr/local/bin");
  try {
    accessSync(binary, fsConstants.X_OK);
  } catch {
    throw new RedisServerNotInstalledError(binary);
  }
  const timeoutMs = options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
  const extraArgs = options.extraArgs ?? [];

  const osPicksPort = (options.port ?? 0) === 0;
  let port = options.port ?? 0;
  let child: RunningRedis | undefined;
  for (let attempt = 1; !child; attempt++) {
    const candidate = osPicksPort ? await pickFreePort() : port;
    try {
      child = await spawnRedis(binary, candidate, extraArgs, timeoutMs);
      port = candidate;
    } catch (error) {
      const portTaken = error instanceof RedisStartError && /address already in use/i.test(error.output);
      if (!osPicksPort || !portTaken || attempt >= PORT_ATTEMPTS) throw error;
    }
  }

  let current: RunningRedis | undefined = child;
  const handle: RedisServerHandle = {
    port,
    url: `redis://${LOOPBACK}:${port}`,
    get pid() {
      return current?.process.pid;
    },
    isRunning: () => current !== undefined && current.process.exitCode === null && !current.exited,
    stop: async () => {
      const running = current;
      current = undefined;
      if (running) await running.terminate("SIGTERM");
    },
    kill: async () => {
      const running = current;
      current = undefined;
      if (running) await running.terminate("SIGKILL");
    },
    restart: async () => {
      await handle.stop();
      current = await spawnRedis(binary, port, extraArgs, timeoutMs);
    },
    close: () => handle.stop(),
  };
  return handle;
}

class RedisStartError extends Error {
  readonly output: string;
  constructor(message: string, output: string) {
    super(output ? `${message}\n--- redis-server output ---\n${output.trim()}` : message);
    this.name = "RedisStartError";
    this.output = output;
  }
}

interface RunningRedis {
  readonly process: ChildProcess;
  readonly exited: boolean;
  terminate(signal: "SIGTERM" | "SIGKILL"): Promise<void>;
}

/** Every redis-server we started, so that none outlives the test process (vitest worker, CLI) that owns it. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  liveChildren.add(child);
  child.once("exit", () => liveChildren.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const running of liveChildren) running.kill("SIGKILL");
  });
}

async function spawnRedis(
  binary: string,
  port: number,
  extraArgs: readonly string[],
  timeoutMs: number,
): Promise<RunningRedis> {
  // A private working directory per process: even an explicit SAVE cannot leave a dump.rdb that a later
  // restart on the same port would load, so every (re)start begins empty, as a crash without persistence does.
  const dir = await mkdtemp(join(tmpdir(), "edgeml-redis-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    LOOPBACK,
    "--save",
    "",
    "--appendonly",
    "no",
    "--daemonize",
    "no",
    "--dir",
    dir,
    "--logfile",
    "",
    "--loglevel",
    "warning",
    ...extraArgs,
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  trackChild(child);
  let output = "";
  const collect = (chunk: Buffer): void => {
    // Keep only the tail: enough to explain a failed start, bounded for a long-running server.
    output = (output + chunk.toString("utf8")).slice(-4_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
    child.once("error", () => {
      exited = true;
      resolve();
    });
  });
  void exitPromise.then(() => rm(dir, { recursive: true, force: true }));

  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (exited)
      throw new RedisStartError(`redis-server exited before answering PING on port ${port}`, output);
    if (await answersPing(port)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exitPromise;
      throw new RedisStartError(
        `redis-server did not answer PING on port ${port} within ${timeoutMs} ms`,
        output,
      );
    }
    await sleep(20);
  }

  return {
    process: child,
    get exited() {
      return exited;
    },
    terminate: async (signal) => {
      if (exited) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      await exitPromise;
      clearTimeout(timer);
    },
  };
}

/** One raw RESP round trip; avoids depending on a client library just to know the server is up. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port });
    let reply = "";
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      // "-LOADING" while a dataset loads, "+PONG" when ready.
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}

function pickFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string" } } });
  startRedisServer({ port: parsePort(values.port) }).then(
    (redis) => {
      console.log(`redis-server listening at ${redis.url} (pid ${redis.pid}); Ctrl-C to stop`);
      runUntilSignal("redis-server", () => redis.stop());
    },
    (error: unknown) => failCli("redis-server", error),
  );
}
