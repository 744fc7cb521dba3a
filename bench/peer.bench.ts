/**
 * `npm run bench:peer`: edgeml side by side with a FastAPI + scikit-learn service (bench/peer/) serving the same
 * model family on the same data, on this machine, and the "## Side by side" section of docs/benchmarks.md.
 *
 *   npm run bench:peer [-- --workers N] [--rounds R] [--seconds S] [--connections C] [--no-write]
 *
 * Both servers start on 127.0.0.1 (ports the system picks): edgeml as `npm start` runs it with WORKERS=N, the peer
 * as uvicorn with N workers and one OpenMP thread each. Two paths, each on both servers: OIP infer at batch 1 on a
 * HistGradientBoostingRegressor (edgeml: the sk_hgb_f32.onnx export; the peer: the same model retrained by
 * scikit-learn, checked equal to the export) and a cached forecast (`POST /api/ml/serve` with `as_of`). After a
 * warm-up, R rounds run every path on both servers, alternating which server goes first; the load is autocannon in
 * a process of its own (bench/peer/load.ts), which checks every response. Each run records req/s, latency, and the
 * server's CPU time over the run (its whole process tree): on a busy machine req/s moves with the neighbours, CPU
 * per request much less.
 *
 * The peer needs Debian's python3-fastapi, python3-uvicorn and python3-sklearn (not part of CI); without them the
 * script says how to install them and exits 1.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { z } from "zod";
import { writeDocSection } from "./doc-section.js";
import type { Expect } from "./peer/checks.js";
import type { LoadResult, LoadSpec } from "./peer/load.js";
import { processTree } from "./peer/procfs.js";
import { BYO_MODELS, MARKET_DATA, median, REPO_ROOT, runChild } from "./support.js";

const COMMAND = "npm run bench:peer";
const SECTION = "## Side by side: edgeml against FastAPI + scikit-learn";
const INSTALL = "apt-get install -y python3-fastapi python3-uvicorn python3-sklearn";
/** The issue's goals: edgeml's req/s over the peer's. */
const GOALS = { infer: 40, serve: 10 } as const;
/** The shipped CSVs' last daily close: a replay forecast, so the answer is cacheable (as in `npm run bench`). */
const SERVE_AS_OF = "2026-03-28";
/** Counted by edgeml's limiter on every request, never reached: one client (127.0.0.1) sends the whole load. */
const RATE_LIMIT_PUBLIC = "1000000000/60s";
/**
 * edgeml runs the float32 ONNX export (float32 thresholds, leaves summed in float32), the peer scikit-learn in float64:
 * the same trees, so their answers differ by float32 rounding only. The outputs are 24 h log returns of about ±0.03;
 * the skl2onnx exports agree with scikit-learn to 4e-8 (byo-models/README.md).
 */
const TOLERANCE = 1e-6;
const TOLERANCE_TEXT = "1e-6";
const STARTUP_TIMEOUT_MS = 180_000;

type Route = "infer" | "serve";
type Server = "edgeml" | "peer";
const PATHS: readonly Route[] = ["infer", "serve"];
const PATH_LABEL: Record<Route, string> = {
  infer: "OIP infer, batch 1 (sk_hgb)",
  serve: `cached forecast (BTC 24h, as_of ${SERVE_AS_OF})`,
};

const Options = z.object({
  workers: z.coerce.number().int().min(1).max(64),
  rounds: z.coerce.number().int().min(1),
  seconds: z.coerce.number().int().min(1),
  connections: z.coerce.number().int().min(1),
  warmupSeconds: z.coerce.number().int().min(0),
  python: z.string().optional(),
  write: z.boolean(),
});
type Options = z.infer<typeof Options>;

/** The command that reproduces a run with these options. */
function command(o: Options): string {
  const given = {
    workers: o.workers,
    rounds: o.rounds,
    seconds: o.seconds,
    connections: o.connections,
    "warmup-seconds": o.warmupSeconds,
  };
  const flags = Object.entries(given)
    .filter(([key, value]) => DEFAULTS[key as keyof typeof DEFAULTS] !== value)
    .map(([key, value]) => `--${key} ${value}`);
  return flags.length > 0 ? `${COMMAND} -- ${flags.join(" ")}` : COMMAND;
}

const log = (line: string) => console.error(`bench:peer: ${line}`);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Until multi-process `npm start` is the default everywhere, one process of each; `--workers N` for N of each. */
const DEFAULTS = { workers: 1, rounds: 3, seconds: 10, connections: 16, "warmup-seconds": 3 } as const;

function options(): Options {
  const text = (key: keyof typeof DEFAULTS) => ({ type: "string", default: String(DEFAULTS[key]) }) as const;
  const { values } = parseArgs({
    options: {
      workers: text("workers"),
      rounds: text("rounds"),
      seconds: text("seconds"),
      connections: text("connections"),
      "warmup-seconds": text("warmup-seconds"),
      python: { type: "string" },
      "no-write": { type: "boolean", default: false },
    },
  });
  const parsed = Options.safeParse({
    ...values,
    warmupSeconds: values["warmup-seconds"],
    write: !values["no-write"],
  });
  if (!parsed.success) {
    console.error(`bench:peer: ${z.prettifyError(parsed.error)}`);
    process.exit(2);
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------- the servers

interface Running {
  child: ChildProcess;
  pid: number;
  base: string;
  /** Everything the server printed, to say why it failed. */
  output: string[];
}

/** Lines of the child's stdout and stderr, kept, and offered to `until` until it returns a value. */
function watchOutput<T>(child: ChildProcess, output: string[], until: (line: string) => T | undefined) {
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
function freePort(): Promise<number> {
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
const baseEnv = () => ({
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? os.tmpdir(),
  LANG: "C.UTF-8",
});

interface Edgeml extends Running {
  adminToken: string;
  dir: string;
}

async function startEdgeml(workers: number): Promise<Edgeml> {
  const dir = await mkdtemp(join(os.tmpdir(), "edgeml-bench-peer-"));
  await cp(join(REPO_ROOT, "models"), join(dir, "models"), { recursive: true });
  const adminToken = randomBytes(24).toString("hex");
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "src/runtime/node/server.ts"], {
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
  await watchOutput(child, output, (line) => (ready.test(line) ? true : undefined)).catch((error: Error) => {
    throw new Error(`edgeml (WORKERS=${workers}) ${error.message}`);
  });
  return { child, pid: child.pid as number, base: `http://127.0.0.1:${port}`, output, adminToken, dir };
}

interface PeerInfo {
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

interface Peer extends Running {
  info: PeerInfo;
}

/** The first Python 3 that has FastAPI, uvicorn and scikit-learn (Debian's is /usr/bin/python3), or null. */
function findPython(given?: string): string | null {
  const candidates = given ? [given] : ["/usr/bin/python3", "python3"];
  for (const python of candidates) {
    const probe = spawnSync(python, ["-c", "import fastapi, uvicorn, sklearn, numpy"], { stdio: "ignore" });
    if (probe.status === 0) return python;
  }
  return null;
}

async function startPeer(python: string, workers: number): Promise<Peer> {
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
async function stop(server: Running): Promise<void> {
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

// ---------------------------------------------------------------------------------------------- requests

interface ExportCase {
  input: { name: string; shape: [number, number]; data: number[] };
  output_name: string;
  expected_sklearn_predict: number[];
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status < 200 || response.status > 299)
    throw new Error(`POST ${url}: ${response.status} ${text}`);
  return { response, json: JSON.parse(text) as Record<string, unknown> };
}

const inferBody = (c: ExportCase, rows: number) =>
  JSON.stringify({
    inputs: [
      {
        name: c.input.name,
        shape: [rows, c.input.shape[1]],
        datatype: "FP32",
        data: c.input.data.slice(0, rows * c.input.shape[1]),
      },
    ],
  });

/** Registers sk_hgb_f32.onnx with scikit-learn's predictions as golden rows (checked at load) and promotes it. */
async function registerModel(edgeml: Edgeml, c: ExportCase): Promise<void> {
  const golden = 8;
  const metadata = {
    description:
      "bench:peer: scikit-learn 1.2.1 HistGradientBoostingRegressor (200 iterations), skl2onnx float32",
    golden: {
      atol: TOLERANCE,
      cases: [
        {
          inputs: [{ ...JSON.parse(inferBody(c, golden)).inputs[0] }],
          outputs: [
            {
              name: c.output_name,
              shape: [golden, 1],
              datatype: "FP32",
              data: c.expected_sklearn_predict.slice(0, golden),
            },
          ],
        },
      ],
    },
  };
  const admin = { authorization: `Bearer ${edgeml.adminToken}` };
  const bytes = await readFile(join(BYO_MODELS, "sk_hgb_f32.onnx"));
  const registered = await fetch(`${edgeml.base}/api/ml/models/sk_hgb/versions`, {
    method: "POST",
    headers: {
      ...admin,
      "content-type": "application/octet-stream",
      "x-model-metadata": JSON.stringify(metadata),
    },
    body: new Uint8Array(bytes),
  });
  if (registered.status !== 201)
    throw new Error(`edgeml: registration failed: ${registered.status} ${await registered.text()}`);
  const { version } = (await registered.json()) as { version: string };
  await post(`${edgeml.base}/api/ml/models/sk_hgb/promote`, { version, reason: "bench:peer" }, admin);
}

/** Until `times` requests in a row answer 2xx: every worker of a multi-process server has seen the promotion. */
async function untilServing(url: string, body: string, times: number): Promise<void> {
  let inRow = 0;
  for (let attempt = 0; attempt < 400 && inRow < times; attempt++) {
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    await r.arrayBuffer();
    inRow = r.ok ? inRow + 1 : 0;
    if (!r.ok) await sleep(50);
  }
  if (inRow < times) throw new Error(`${url} does not answer 2xx`);
}

const outputsOf = (json: Record<string, unknown>) =>
  ((json.outputs as { data: number[] }[] | undefined)?.[0]?.data ?? []) as number[];

interface Agreement {
  rows: number;
  edgemlVsSklearn: number;
  peerVsSklearn: number;
  edgemlVsPeer: number;
  closePrice: number;
}

/** The daily close the naive BTC-24h forecast as of SERVE_AS_OF must give: the CSV's bar of the day before. */
async function csvClose(): Promise<number> {
  const day = new Date(Date.parse(SERVE_AS_OF) - 86_400_000).toISOString().slice(0, 10);
  const text = await readFile(join(MARKET_DATA, "BTC-USD_1d.csv"), "utf8");
  const line = text.split("\n").find((l) => l.startsWith(`${day},`));
  if (!line) throw new Error(`BTC-USD_1d.csv has no bar on ${day}`);
  return Number(line.split(",")[4]);
}

/** Same rows to both servers: every prediction against scikit-learn's and each other's; the forecasts equal. */
async function checkAgreement(edgeml: Edgeml, peer: Peer, c: ExportCase): Promise<Agreement> {
  const rows = c.input.shape[0];
  const body = inferBody(c, rows);
  const [mine, theirs] = await Promise.all(
    [edgeml, peer].map(async (s) => outputsOf((await post(`${s.base}/v2/models/sk_hgb/infer`, body)).json)),
  );
  const maxDiff = (a: number[], b: number[]) => {
    if (a.length !== rows || b.length !== rows)
      throw new Error(`expected ${rows} predictions, got ${a.length} and ${b.length}`);
    return Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number))));
  };
  const sklearn = c.expected_sklearn_predict;
  const agreement = {
    rows,
    edgemlVsSklearn: maxDiff(mine as number[], sklearn),
    peerVsSklearn: maxDiff(theirs as number[], sklearn),
    edgemlVsPeer: maxDiff(mine as number[], theirs as number[]),
    closePrice: await csvClose(),
  };
  if (
    agreement.edgemlVsPeer > TOLERANCE ||
    agreement.edgemlVsSklearn > TOLERANCE ||
    agreement.peerVsSklearn > 1e-12
  )
    throw new Error(`the servers disagree beyond ${TOLERANCE}: ${JSON.stringify(agreement)}`);
  const serveBody = { symbol: "BTC", horizon: "24h", as_of: SERVE_AS_OF };
  for (const s of [edgeml, peer]) {
    await post(`${s.base}/api/ml/serve`, serveBody);
    const { response, json } = await post(`${s.base}/api/ml/serve`, serveBody);
    if (
      json.cached !== true ||
      response.headers.get("x-cache") !== "HIT" ||
      json.predicted_price !== agreement.closePrice
    )
      throw new Error(
        `${s.base}: the second forecast is not the cached naive one (close ${agreement.closePrice}): ${JSON.stringify(json)}`,
      );
  }
  return agreement;
}

// ---------------------------------------------------------------------------------------------- load

interface Run extends LoadResult {
  round: number;
  path: Route;
  server: Server;
  load1: number;
}

function loadSpec(
  o: Options,
  server: Running,
  path: Route,
  c: ExportCase,
  close: number,
  seconds: number,
): LoadSpec {
  const expect: Expect =
    path === "infer"
      ? {
          kind: "infer",
          modelName: "sk_hgb",
          prediction: c.expected_sklearn_predict[0] as number,
          tolerance: TOLERANCE,
        }
      : { kind: "serve", price: close, asOf: new Date(SERVE_AS_OF).toISOString() };
  return {
    url: path === "infer" ? `${server.base}/v2/models/sk_hgb/infer` : `${server.base}/api/ml/serve`,
    body:
      path === "infer"
        ? inferBody(c, 1)
        : JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: SERVE_AS_OF }),
    connections: o.connections,
    seconds,
    serverPid: server.pid,
    expect,
  };
}

async function measure(
  o: Options,
  servers: Record<Server, Running>,
  c: ExportCase,
  close: number,
): Promise<Run[]> {
  if (o.warmupSeconds > 0) {
    for (const server of ["edgeml", "peer"] as const) {
      for (const path of PATHS) {
        log(`warm-up: ${server} ${path}, ${o.warmupSeconds} s`);
        await runChild<LoadResult>("peer/load.ts", [
          JSON.stringify(loadSpec(o, servers[server], path, c, close, o.warmupSeconds)),
        ]);
      }
    }
  }
  const runs: Run[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    // Alternate who goes first, so a slow spell of the shared machine does not always land on the same server.
    const order: Server[] = round % 2 === 1 ? ["edgeml", "peer"] : ["peer", "edgeml"];
    for (const path of PATHS) {
      for (const server of order) {
        const load1 = os.loadavg()[0] ?? Number.NaN;
        log(`round ${round}/${o.rounds}: ${server} ${path}, ${o.seconds} s`);
        const result = await runChild<LoadResult>("peer/load.ts", [
          JSON.stringify(loadSpec(o, servers[server], path, c, close, o.seconds)),
        ]);
        if (result.non2xx > 0 || result.errors > 0 || result.mismatches > 0 || result.requests === 0) {
          throw new Error(
            `${server} ${path}: ${result.requests} requests, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.mismatches} wrong answers (first: ${result.firstMismatch})`,
          );
        }
        runs.push({ ...result, round, path, server, load1 });
      }
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------- report

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const int = (value: number) => Math.round(value).toLocaleString("en-US");
const ms = (value: number) => `${fixed(value, value < 10 ? 2 : 1)} ms`;
const us = (value: number) => `${fixed(value, value < 100 ? 1 : 0)} µs`;
const times = (value: number) => `${fixed(value, value < 10 ? 2 : 1)}×`;
const pct = (value: number) => `${fixed(value * 100, 0)}%`;
const cpuPerRequest = (r: LoadResult) => r.serverCpuUs / r.requests;
const busy = (r: LoadResult) => r.serverCpuUs / (r.seconds * 1e6);

/** A markdown table, first column left-aligned and the others right-aligned, padded as biome formats it. */
function table(header: string[], rows: string[][]): string {
  const width = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${width.map((w, i) => (i === 0 ? (cells[i] ?? "").padEnd(w) : (cells[i] ?? "").padStart(w))).join(" | ")} |`;
  const rule = `| ${width.map((w, i) => (i === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

interface Summary {
  path: Route;
  edgeml: { reqPerSec: number; p50Ms: number; p99Ms: number; cpuUs: number; busy: number };
  peer: Summary["edgeml"];
  /** Medians over rounds of the per-round ratios. */
  reqRatio: number;
  cpuRatio: number;
  reqRatios: number[];
  cpuRatios: number[];
}

function summarise(runs: Run[], rounds: number): Summary[] {
  return PATHS.map((path) => {
    const of = (server: Server) => runs.filter((r) => r.path === path && r.server === server);
    const stats = (server: Server) => {
      const rs = of(server);
      return {
        reqPerSec: median(rs.map((r) => r.reqPerSec)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        cpuUs: median(rs.map(cpuPerRequest)),
        busy: median(rs.map(busy)),
      };
    };
    const reqRatios: number[] = [];
    const cpuRatios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const e = of("edgeml").find((r) => r.round === round) as Run;
      const p = of("peer").find((r) => r.round === round) as Run;
      reqRatios.push(e.reqPerSec / p.reqPerSec);
      cpuRatios.push(cpuPerRequest(p) / cpuPerRequest(e));
    }
    return {
      path,
      edgeml: stats("edgeml"),
      peer: stats("peer"),
      reqRatio: median(reqRatios),
      cpuRatio: median(cpuRatios),
      reqRatios,
      cpuRatios,
    };
  });
}

function summaryTable(summaries: Summary[]): string {
  return table(
    [
      "path (medians over rounds)",
      "edgeml req/s",
      "peer req/s",
      "req/s edgeml / peer",
      "edgeml p50 / p99",
      "peer p50 / p99",
      "server CPU per request, edgeml",
      "peer",
      "CPU peer / edgeml",
    ],
    summaries.map((s) => [
      PATH_LABEL[s.path],
      int(s.edgeml.reqPerSec),
      int(s.peer.reqPerSec),
      `**${times(s.reqRatio)}**`,
      `${ms(s.edgeml.p50Ms)} / ${ms(s.edgeml.p99Ms)}`,
      `${ms(s.peer.p50Ms)} / ${ms(s.peer.p99Ms)}`,
      us(s.edgeml.cpuUs),
      us(s.peer.cpuUs),
      `**${times(s.cpuRatio)}**`,
    ]),
  );
}

function roundsTable(runs: Run[]): string {
  const rows = runs.map((r) => {
    const other = runs.find((x) => x.round === r.round && x.path === r.path && x.server !== r.server) as Run;
    const mine = r.server === "edgeml";
    const e = mine ? r : other;
    const p = mine ? other : r;
    return [
      `${r.round}`,
      r.path,
      r.server,
      int(r.reqPerSec),
      ms(r.p50Ms),
      ms(r.p99Ms),
      us(cpuPerRequest(r)),
      pct(busy(r)),
      us(r.loadCpuUs / r.requests),
      fixed(r.load1, 1),
      mine ? times(e.reqPerSec / p.reqPerSec) : "",
      mine ? times(cpuPerRequest(p) / cpuPerRequest(e)) : "",
    ];
  });
  return table(
    [
      "round",
      "path",
      "server",
      "req/s",
      "p50",
      "p99",
      "server CPU / request",
      "server on CPU",
      "autocannon CPU / request",
      "1-min load before",
      "req/s edgeml / peer",
      "CPU peer / edgeml",
    ],
    rows,
  );
}

interface Report {
  o: Options;
  runs: Run[];
  summaries: Summary[];
  agreement: Agreement;
  peer: PeerInfo;
  loadStart: number[];
  loadEnd: number[];
  minutes: number;
}

function verdict(s: Summary, goal: number): string {
  const met = s.reqRatio >= goal;
  return `${times(s.reqRatio)} the peer's req/s (rounds: ${s.reqRatios.map(times).join(", ")}): the goal of ${goal}× is ${met ? "**met**" : "**not met**"}`;
}

function reading(r: Report): string {
  const [infer, serve] = r.summaries as [Summary, Summary];
  const peerModelShare = r.peer.predict_us / infer.peer.cpuUs;
  const lines = [
    `- **Infer:** edgeml served ${verdict(infer, GOALS.infer)}. Per request, the peer's server used ${us(infer.peer.cpuUs)} of CPU against edgeml's ${us(infer.edgeml.cpuUs)} (${times(infer.cpuRatio)}). Of the peer's, \`model.predict\` on one row alone takes ${us(r.peer.predict_us)} of CPU (${pct(peerModelShare)}; median of 300 calls timed alone in the peer at start): scikit-learn ${r.peer.versions["scikit-learn"]}'s HistGradientBoostingRegressor walks its 200 trees one predictor call at a time from Python (each entering an OpenMP region, here of one thread), a cost that hardly depends on the batch size. The rest is FastAPI, pydantic and uvicorn.`,
    `- **Cached forecast:** edgeml served ${verdict(serve, GOALS.serve)}. Per request, ${us(serve.peer.cpuUs)} of server CPU for the peer against ${us(serve.edgeml.cpuUs)} for edgeml (${times(serve.cpuRatio)}). Here neither server runs a model: the peer pays for the framework alone (a pydantic v1 body, a dict lookup, FastAPI's encoding of the answer), edgeml for its whole request path (rate limiter, zod validation, version resolution, the prediction cache, usage counters, metrics).`,
  ];
  const starved = r.runs.filter((x) => busy(x) < 0.9 * r.o.workers);
  if (starved.length > 0) {
    lines.push(
      `- The servers were on a CPU less than ${r.o.workers === 1 ? "all" : `${r.o.workers} cores' worth`} of the time in ${starved.length} of the ${r.runs.length} runs (column "server on CPU"): autocannon shares the ${os.availableParallelism()} cores with the server under load, and other work on this machine takes its share (load averages above). Those req/s are floors; the CPU time per request is the comparison that holds on a busy machine, and the two ratios can differ for that reason.`,
    );
  }
  if ((r.loadStart[0] ?? 0) >= 1) {
    lines.push(
      `- The machine was not quiet (1-minute load average ${fixed(r.loadStart[0] ?? Number.NaN, 1)} at the start, ${fixed(r.loadEnd[0] ?? Number.NaN, 1)} at the end, on ${os.availableParallelism()} cores): tail latencies partly measure waiting for a CPU. Rerun on a quiet machine before quoting p99s.`,
    );
  }
  lines.push(
    `- What the comparison is not: the peer is Debian 12's stack (pydantic ${r.peer.versions.pydantic}; pydantic 2's Rust core validates faster, as would an \`orjson\` response class), and its forecast cache is one dict per worker${r.o.workers > 1 ? " (so each worker computes its own first answer, under its own prediction_id, where edgeml's workers share one cache and one prediction_id per bar)" : ""}, with no rate limiting, metrics or prediction log. It is the service the issue's users would write, measured fairly (same machine, same load, same answers), not the fastest Python possible.`,
    `- Checks: the peer's model reproduces scikit-learn's predictions stored with the export on all 256 test rows (max difference ${r.peer.model.max_abs_diff_vs_export}); on those rows edgeml's answers differ from scikit-learn's by at most ${r.agreement.edgemlVsSklearn.toExponential(1)} and from the peer's by at most ${r.agreement.edgemlVsPeer.toExponential(1)} (tolerance ${TOLERANCE_TEXT}: float32 against float64 arithmetic on the same trees); both forecasts are the naive BTC-24h answer, the CSV close ${r.agreement.closePrice}. During the timed runs every response was checked: ${int(r.runs.reduce((n, x) => n + x.requests, 0))} responses, 0 non-2xx, 0 errors, 0 wrong answers (infer: the row's prediction within ${TOLERANCE_TEXT}; forecast: \`cached: true\`, that close, that \`as_of\`).`,
  );
  return lines.join("\n");
}

function section(r: Report): string {
  const cpus = os.cpus();
  const v = r.peer.versions;
  const loads = (l: number[]) => l.map((x) => fixed(x, 2)).join(" / ");
  return [
    SECTION,
    "",
    `Reproduce with \`${command(r.o)}\` (\`tsx bench/peer.bench.ts\`; \`-- --workers N\` runs N processes of each; about ${Math.ceil(r.minutes)} minutes; needs \`${INSTALL}\`, not part of CI). It rewrites this section; measured on ${new Date().toISOString().slice(0, 10)}:`,
    "",
    `- Node ${process.version} on ${os.platform()} ${os.arch()}; CPU: ${cpus[0]?.model ?? "unknown"}, ${cpus.length} cores (available parallelism ${os.availableParallelism()}); ${fixed(os.totalmem() / 2 ** 30, 1)} GiB RAM. Load averages (1 / 5 / 15 min): ${loads(r.loadStart)} at the start, ${loads(r.loadEnd)} at the end (this benchmark's own processes included; other work shared the machine).`,
    `- **edgeml**: \`npm start\`'s server (\`src/runtime/node/server.ts\`) with WORKERS=${r.o.workers}, the default configuration (rate limits counted per client, metrics, usage counters, the SQLite prediction log, tree models inline), embedded stores on a copy of \`models/\` in a temporary directory, market data from the CSVs; the public rate limit raised to ${RATE_LIMIT_PUBLIC} so that the single load client is counted, never refused. \`sk_hgb_f32.onnx\` from \`../shared/data/byo-models\` registered through the admin API (golden rows: scikit-learn's predictions) and promoted.`,
    `- **peer** (\`bench/peer/\`): FastAPI ${v.fastapi}, pydantic ${v.pydantic}, uvicorn ${v.uvicorn} (${v.loop}, ${v.http}), scikit-learn ${v["scikit-learn"]}, numpy ${v.numpy}, Python ${v.python}, Debian packages; ${r.o.workers} uvicorn worker${r.o.workers > 1 ? "s" : ""}, OMP_NUM_THREADS=1. Its model is the export's own HistGradientBoostingRegressor, retrained at start (${r.peer.model.train_seconds} s) on the export's data, recovered from the export and checked at every start: ${int(r.peer.model.rows)} rows, bars 170–10,169 of BTCUSDT_1h.csv and ETHUSDT_1h.csv interleaved hour by hour, the 30 features of the export (\`bench/peer/features.py\` reproduces its 256 test rows bit for bit in float32) as float32, target the 24 h log return; \`max_iter=200, max_depth=5, learning_rate=0.05, random_state=0\`, the rest scikit-learn's defaults. It predicts the export's stored scikit-learn outputs exactly. Handlers validate the body with pydantic models, as FastAPI users write them; the forecast is computed on first request (the naive close edgeml's serving BTC-24h version gives) and then served from a dict.`,
    `- **Load**: autocannon in a process of its own (\`bench/peer/load.ts\`), ${r.o.connections} connections, ${r.o.seconds} s per run after a ${r.o.warmupSeconds} s warm-up per server and path; ${r.o.rounds} round${r.o.rounds > 1 ? "s" : ""}, each running both paths on both servers, alternating which server goes first. The same request bodies to both: the export's first test row (FP32, shape [1, 30]) and \`{"symbol":"BTC","horizon":"24h","as_of":"${SERVE_AS_OF}"}\`. Server CPU per request: utime + stime of the server's whole process tree (all its processes and threads, from /proc, 10 ms resolution) over the run, divided by its requests. Latency percentiles from autocannon's per-response times.`,
    "",
    summaryTable(r.summaries),
    "",
    "Every run:",
    "",
    roundsTable(r.runs),
    "",
    "### Reading the side by side",
    "",
    reading(r),
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------- main

const o = options();
const python = findPython(o.python);
if (!python) {
  console.error(
    `bench:peer: the peer needs Python 3 with FastAPI, uvicorn and scikit-learn; on Debian or Ubuntu: ${INSTALL}`,
  );
  process.exit(1);
}
const started = performance.now();
const loadStart = os.loadavg();
const c = JSON.parse(await readFile(join(BYO_MODELS, "sk_hgb_f32.json"), "utf8")) as ExportCase;
log(`starting edgeml (WORKERS=${o.workers}) and the peer (${python}, ${o.workers} uvicorn workers)`);
const launched = await Promise.allSettled([startEdgeml(o.workers), startPeer(python, o.workers)]);
const [edgemlStart, peerStart] = launched;
const running = launched.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
const stopAll = () => Promise.all(running.map(stop));
process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));
try {
  if (edgemlStart.status === "rejected") throw edgemlStart.reason;
  if (peerStart.status === "rejected") throw peerStart.reason;
  const edgeml = edgemlStart.value;
  const peer = peerStart.value;
  log(`peer trained in ${peer.info.model.train_seconds} s; predict at batch 1: ${peer.info.predict_us} µs`);
  await registerModel(edgeml, c);
  await untilServing(`${edgeml.base}/v2/models/sk_hgb/infer`, inferBody(c, 1), 4 * o.workers);
  const agreement = await checkAgreement(edgeml, peer, c);
  const runs = await measure(o, { edgeml, peer }, c, agreement.closePrice);
  const report: Report = {
    o,
    runs,
    summaries: summarise(runs, o.rounds),
    agreement,
    peer: peer.info,
    loadStart,
    loadEnd: os.loadavg(),
    minutes: (performance.now() - started) / 60_000,
  };
  const body = section(report);
  console.log(body);
  if (o.write) {
    await writeDocSection(SECTION, body);
    log(`wrote "${SECTION}" in docs/benchmarks.md`);
  }
} finally {
  await stopAll();
  if (edgemlStart.status === "fulfilled") await rm(edgemlStart.value.dir, { recursive: true, force: true });
}
