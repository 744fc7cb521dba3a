/** The two servers of bench/peer.bench.ts: edgeml as `npm start` runs it, and the peer (bench/peer/main.py). */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { BYO_MODELS, MARKET_DATA, NODE_TS_LOADER, REPO_ROOT } from "../support.js";
import { processTree } from "./procfs.js";
import { RATE_LIMIT_PUBLIC, SERVE_AS_OF } from "./spec.js";

const STARTUP_TIMEOUT_MS = 180_000;
export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export interface Running {
  child: ChildProcess;
  pid: number;
  base: string;
  /** Everything the server printed, to say why it failed. */
  output: string[];
}

/** Lines of the child's stdout and stderr, kept, and offered to `until` until it returns a value. */
export function watchOutput<T>(
  child: ChildProcess,
  output: string[],
  until: (line: string) => T | undefined,
) {
  return new Promise<T>((done, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`no start within ${STARTUP_TIMEOUT_MS / 1000} s:\n${output.join("\n")}`)),
      STARTUP_TIMEOUT_MS,
    );
    const onLine = (line: string) => {
      output.push(line);
      const value = until(line);
      if (value !== undefined) {
        clearTimeout(timer);
        done(value);
      }
    };
    for (const stream of [child.stdout, child.stderr]) if (stream) createInterface(stream).on("line", onLine);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`exited with ${code} before it was ready:\n${output.join("\n")}`));
    });
  });
}

/** A port that was free a moment ago: edgeml's cluster primary needs one number for every worker. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address ? done(address.port) : fail(new Error("no port")),
      );
    });
  });
}

/** The environment both servers start from: nothing of this machine's (Upstash, Blob, tokens) reaches them. */
export const baseEnv = () => ({
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? os.tmpdir(),
  LANG: "C.UTF-8",
});

export interface Edgeml extends Running {
  adminToken: string;
  dir: string;
}

export async function startEdgeml(workers: number): Promise<Edgeml> {
  const dir = await mkdtemp(join(os.tmpdir(), "edgeml-bench-peer-"));
  await cp(join(REPO_ROOT, "models"), join(dir, "models"), { recursive: true });
  const adminToken = randomBytes(24).toString("hex");
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", NODE_TS_LOADER, "src/runtime/node/server.ts"], {
    cwd: REPO_ROOT,
    env: {
      ...baseEnv(),
      PORT: String(port),
      HOST: "127.0.0.1",
      WORKERS: String(workers),
      MODELS_DIR: join(dir, "models"),
      PREDICTION_LOG_FILE: join(dir, "predictions.sqlite"),
      MARKET_DATA_DIR: MARKET_DATA,
      ADMIN_TOKEN: adminToken,
      RATE_LIMIT_PUBLIC,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  // One process prints its banner; N processes print it once all N listen (src/runtime/node/cluster.ts).
  const ready = workers === 1 ? /edgeml listening on/ : new RegExp(`all ${workers} workers listening`);
  await watchOutput(child, output, (line) => (ready.test(line) ? true : undefined)).catch(
    async (error: Error) => {
      // Nobody else knows this directory yet: a server that did not start leaves nothing behind.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      throw new Error(`edgeml (WORKERS=${workers}) ${error.message}`);
    },
  );
  return { child, pid: child.pid as number, base: `http://127.0.0.1:${port}`, output, adminToken, dir };
}

export interface PeerInfo {
  port: number;
  pid: number;
  model: {
    rows: number;
    iterations: number;
    max_abs_diff_vs_export: number;
    sklearn: string;
    train_seconds: number;
  };
  predict_us: number;
  versions: Record<string, string>;
}

export interface Peer extends Running {
  info: PeerInfo;
}

/** The first Python 3 that has FastAPI, uvicorn and scikit-learn (Debian's is /usr/bin/python3), or null. */
export function findPython(given?: string): string | null {
  const candidates = given ? [given] : ["/usr/bin/python3", "python3"];
  for (const python of candidates) {
    const probe = spawnSync(python, ["-c", "import fastapi, uvicorn, sklearn, numpy"], { stdio: "ignore" });
    if (probe.status === 0) return python;
  }
  return null;
}

export async function startPeer(python: string, workers: number): Promise<Peer> {
  const child = spawn(
    python,
    [
      join(REPO_ROOT, "bench", "peer", "main.py"),
      "--market",
      MARKET_DATA,
      "--export",
      join(BYO_MODELS, "sk_hgb_f32.json"),
      "--workers",
      String(workers),
      // Every worker starts with the timed forecast cached (app.py says why).
      "--prefill-as-of",
      SERVE_AS_OF,
    ],
    {
      cwd: REPO_ROOT,
      // One OpenMP thread per worker (scikit-learn's predict), BLAS likewise; no .pyc files in the repository.
      env: { ...baseEnv(), OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1", PYTHONDONTWRITEBYTECODE: "1" },
      // stdin stays open: the peer stops when it closes (this process gone).
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  const output: string[] = [];
  let info: PeerInfo | undefined;
  let workersReady = 0;
  await watchOutput(child, output, (line) => {
    let message: Partial<PeerInfo> & { worker_ready?: number };
    try {
      message = JSON.parse(line);
    } catch {
      return undefined; // a log line
    }
    if (message.worker_ready !== undefined) workersReady += 1;
    else info = message as PeerInfo;
    return info && workersReady === workers ? true : undefined;
  }).catch((error: Error) => {
    throw new Error(`the peer (${python}, ${workers} workers) ${error.message}`);
  });
  const ready = info as PeerInfo;
  return { child, pid: ready.pid, base: `http://127.0.0.1:${ready.port}`, output, info: ready };
}

/** SIGTERM to the root process each server runs from (both stop their workers), SIGKILL to what is left. */
export async function stop(server: Running): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  let tree: number[] = [];
  try {
    tree = processTree(server.pid).map((p) => p.pid);
  } catch {
    // already gone
  }
  const exited = new Promise<void>((done) => server.child.once("exit", () => done()));
  server.child.kill("SIGTERM");
  await Promise.race([exited, sleep(15_000)]);
  for (const pid of tree) {
    try {
      process.kill(pid, 0);
      process.kill(pid, "SIGKILL");
    } catch {
      // exited
    }
  }
}

/**
 * The ceiling (bench/peer/bare.ts): a bare Hono app in `workers` processes running `model` for infer and answering
 * `forecasts` ("SYMBOL|as_of" → edgeml's response body, captured before the load) for the cached forecast.
 */
export async function startBare(
  workers: number,
  model: string,
  forecasts: Record<string, string>,
  float64 = false,
): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", NODE_TS_LOADER, join("bench", "peer", "bare.ts")], {
    cwd: REPO_ROOT,
    env: {
      ...baseEnv(),
      BARE_PORT: String(port),
      BARE_WORKERS: String(workers),
      BARE_MODEL: model,
      BARE_FORECASTS: JSON.stringify(forecasts),
      BARE_FLOAT64: float64 ? "1" : "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  await watchOutput(child, output, (line) => (line === "bare listening" ? true : undefined)).catch(
    (error: Error) => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      throw new Error(`the bare Hono server (${workers} processes) ${error.message}`);
    },
  );
  return { child, pid: child.pid as number, base: `http://127.0.0.1:${port}`, output };
}
