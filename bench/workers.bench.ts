/**
 * `npm run bench:workers`: requests per second of `npm start` with WORKERS=2 against WORKERS=1 on this machine, in
 * one run (A/B rounds, interleaved), for OIP infer at batch 1 (a tree model) and a cached forecast; plus the cost
 * of one call over the workers' IPC wire to their primary. Rewrites the "Multi-core: WORKERS" section of
 * docs/benchmarks.md.
 *
 * The server is the real `npm start` script (src/runtime/node/server.ts through scripts/node-ts.mjs) on a copy of the shipped models
 * in a temporary directory, the shipped CSVs, default configuration except the rate-limit budgets (raised so that the
 * load, one client, is counted but never refused). The load generator is autocannon's CLI in a process of its own.
 *
 * Usage: tsx bench/workers.bench.ts [--seconds 10] [--rounds 3] [--connections 16] [--no-write] [--ipc-only]
 */
import { type ChildProcess, spawn } from "node:child_process";
import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createIpcCache } from "../src/storage/node/ipc-adapters.js";
import {
  batchingSender,
  createIpcClient,
  type PrimaryMessage,
  type WorkerMessage,
} from "../src/storage/node/ipc-channel.js";
import { createIpcHost } from "../src/storage/node/ipc-host.js";
import { writeDocSection } from "./doc-section.js";
import { startBare, stop } from "./peer/servers.js";
import { BENCH_RATE_LIMIT_PUBLIC, MARKET_DATA, median, NODE_TS_LOADER, REPO_ROOT } from "./support.js";

const HEADING = "## Multi-core: WORKERS";
const DATA_AS_OF = "2026-03-28";
const IPC_CALLS = 20_000;

/** Servers running now: stopped if the bench itself is stopped (Ctrl-C), so none is left behind. */
const running = new Set<ChildProcess>();

if (cluster.isWorker) {
  await ipcProbeWorker();
} else {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      for (const child of running) child.kill("SIGTERM");
      process.exit(130);
    });
  }
  await main();
}

interface Route {
  key: "infer" | "serve";
  label: string;
  path: string;
  body: string;
}

interface Run {
  /** edgeml (`npm start`) or the ceiling (bench/peer/bare.ts: a bare Hono app, the model run, stored bytes). */
  server: "edgeml" | "bare";
  workers: number;
  route: Route["key"];
  reqPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU of every server process (primary and workers) per request, µs. */
  cpuPerRequest: number;
  /** The primary's share of it (WORKERS=2 only), µs. */
  primaryCpuPerRequest: number | null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "3" },
      connections: { type: "string", default: "16" },
      "no-write": { type: "boolean", default: false },
      "ipc-only": { type: "boolean", default: false },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const loadBefore = loadavg()[0] ?? 0;

  const golden = JSON.parse(await readFile(join(REPO_ROOT, "models/BTC-24h/1/metadata.json"), "utf8")) as {
    golden: { cases: { inputs: { data: number[]; shape: number[] }[] }[] };
  };
  const input = golden.golden.cases[0]?.inputs[0];
  if (!input) throw new Error("BTC-24h v1 has no golden input");
  const width = input.shape[1] ?? 30;
  const routes: Route[] = [
    {
      key: "infer",
      label: "POST /v2/models/BTC-24h/versions/1/infer (GBDT, batch 1)",
      path: "/v2/models/BTC-24h/versions/1/infer",
      body: JSON.stringify({
        inputs: [{ name: "features", datatype: "FP64", shape: [1, width], data: input.data.slice(0, width) }],
      }),
    },
    {
      key: "serve",
      label: "POST /api/ml/serve BTC 24h (cached forecast)",
      path: "/api/ml/serve",
      body: JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF }),
    },
  ];

  const ipc = await ipcProbe();
  if (values["ipc-only"]) {
    console.log(JSON.stringify(ipc));
    return;
  }
  const runs: Run[] = [];
  // The ceiling's cached forecast is edgeml's own answer, captured from the first server.
  let stored: string | undefined;
  const measureOn = async (server: Server, kind: Run["server"], workers: number, round: number) => {
    for (const route of routes) {
      await load(server.base, route, 2, connections); // warm-up: sessions, the cache entry, JIT
      if (kind === "edgeml" && route.key === "serve" && stored === undefined) {
        const response = await fetch(`${server.base}${route.path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: route.body,
        });
        stored = await response.text();
      }
      const before = cpuOf(server.pids);
      const result = await load(server.base, route, seconds, connections);
      const after = cpuOf(server.pids);
      const requests = result.requests;
      runs.push({
        server: kind,
        workers,
        route: route.key,
        reqPerSec: result.reqPerSec,
        p50: result.p50,
        p99: result.p99,
        non2xx: result.non2xx,
        errors: result.errors,
        cpuPerRequest: ((after.total - before.total) * 1e6) / Math.max(1, requests),
        primaryCpuPerRequest:
          workers > 1 ? ((after.primary - before.primary) * 1e6) / Math.max(1, requests) : null,
      });
      console.error(
        `round ${round + 1} ${kind} WORKERS=${workers} ${route.key}: ${result.reqPerSec.toFixed(0)} req/s, p50 ${result.p50} ms, non-2xx ${result.non2xx}`,
      );
    }
  };
  for (let round = 0; round < rounds; round++) {
    // A/B within each round, the order swapped every round: drift in the machine's load hits both alike.
    for (const workers of round % 2 === 0 ? [1, 2] : [2, 1]) {
      const server = await startServer(workers);
      try {
        await measureOn(server, "edgeml", workers, round);
      } finally {
        await server.stop();
      }
      const ceiling = await startCeiling(workers, stored ?? "");
      try {
        await measureOn(ceiling, "bare", workers, round);
      } finally {
        await ceiling.stop();
      }
    }
  }
  const loadAfter = loadavg()[0] ?? 0;
  const body = report({ runs, routes, ipc, seconds, rounds, connections, loadBefore, loadAfter });
  console.log(body);
  if (!values["no-write"]) await writeDocSection(HEADING, body);
}

/** One autocannon run in a process of its own; its JSON summary. */
function load(base: string, route: Route, seconds: number, connections: number) {
  return new Promise<{
    reqPerSec: number;
    p50: number;
    p99: number;
    requests: number;
    non2xx: number;
    errors: number;
  }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, "node_modules/autocannon/autocannon.js"),
        "--json",
        "-c",
        String(connections),
        "-d",
        String(seconds),
        "-m",
        "POST",
        "-H",
        "content-type=application/json",
        "-b",
        route.body,
        `${base}${route.path}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      try {
        const r = JSON.parse(out) as {
          requests: { average: number; total: number };
          latency: { p50: number; p99: number };
          non2xx: number;
          errors: number;
        };
        resolve({
          reqPerSec: r.requests.total / seconds,
          p50: r.latency.p50,
          p99: r.latency.p99,
          requests: r.requests.total,
          non2xx: r.non2xx,
          errors: r.errors,
        });
      } catch {
        reject(new Error(`autocannon exited with ${code} without a JSON summary: ${out.slice(0, 500)}`));
      }
    });
  });
}

interface Server {
  base: string;
  pids: { primary: number | null; all: () => number[] };
  stop: () => Promise<void>;
}

/** `npm start`'s script with WORKERS=`workers` on a copy of the shipped models; resolves once every worker listens. */
async function startServer(workers: number): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), "edgeml-bench-workers-"));
  await cp(join(REPO_ROOT, "models"), join(dir, "models"), { recursive: true });
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", NODE_TS_LOADER, join(REPO_ROOT, "src/runtime/node/server.ts")],
    {
      cwd: REPO_ROOT,
      // An explicit environment: no variable of the machine (Upstash, Blob) changes the adapters.
      env: {
        PATH: process.env.PATH,
        PORT: "0",
        HOST: "127.0.0.1",
        WORKERS: String(workers),
        MODELS_DIR: join(dir, "models"),
        PREDICTION_LOG_FILE: join(dir, "predictions.sqlite"),
        MARKET_DATA_DIR: MARKET_DATA,
        RATE_LIMIT_PUBLIC: BENCH_RATE_LIMIT_PUBLIC,
        RATE_LIMIT_COLD_LOAD: BENCH_RATE_LIMIT_PUBLIC,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const base = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk;
      const match = /edgeml listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      const all = workers === 1 || out.includes(`all ${workers} workers listening`);
      if (match?.[1] && all) resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => reject(new Error(`the server exited with ${code}:\n${out}`)));
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  const root = child.pid as number;
  return {
    base,
    pids: {
      primary: workers > 1 ? root : null,
      all: () => [root, ...descendants(root)],
    },
    stop: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The ceiling (bench/peer/bare.ts) in `workers` processes, node:cluster as `npm start`: a bare Hono app running the
 * same BTC-24h v1 model for infer and answering `forecast` (edgeml's bytes) for the cached forecast. What two
 * processes gain over one for a server that does nothing else, on this machine, with this load generator.
 */
async function startCeiling(workers: number, forecast: string): Promise<Server> {
  const bare = await startBare(
    workers,
    join(REPO_ROOT, "models/BTC-24h/1/model.onnx"),
    { [`BTC|${DATA_AS_OF}`]: forecast },
    true,
  );
  running.add(bare.child);
  bare.child.once("exit", () => running.delete(bare.child));
  const root = bare.pid;
  return {
    base: bare.base,
    pids: { primary: workers > 1 ? root : null, all: () => [root, ...descendants(root)] },
    stop: () => stop(bare),
  };
}

/** Every process below `pid` (Linux /proc). */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8");
    children = text.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** CPU seconds (user + system) of the server's processes, and of its primary. */
function cpuOf(pids: Server["pids"]): { total: number; primary: number } {
  const ticks = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8") as string;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return 0;
    }
  };
  const all = pids.all();
  return {
    total: all.reduce((sum, pid) => sum + ticks(pid), 0),
    primary: pids.primary ? ticks(pids.primary) : 0,
  };
}

/**
 * The IPC wire alone: a cluster worker (this script, forked) calls the primary's cache `IPC_CALLS` times, one after
 * another, then `IPC_CALLS` at once; the primary hosts the stores as `npm start`'s does.
 */
async function ipcProbe(): Promise<{ sequentialUs: number; concurrentUs: number }> {
  const host = createIpcHost();
  const worker = cluster.fork();
  host.attach(
    worker.id,
    batchingSender<PrimaryMessage>((message) => worker.send(message)),
  );
  worker.on("message", (message: unknown) => {
    if (typeof message === "object" && message !== null && "probe" in message) return;
    host.receive(worker.id, message);
  });
  const result = await new Promise<{ sequentialUs: number; concurrentUs: number }>((resolve, reject) => {
    worker.on("message", (message: unknown) => {
      if (typeof message === "object" && message !== null && "probe" in message) {
        resolve((message as { probe: { sequentialUs: number; concurrentUs: number } }).probe);
      }
    });
    worker.on("exit", (code) => reject(new Error(`the IPC probe exited with ${code}`)));
  });
  worker.kill();
  return result;
}

async function ipcProbeWorker(): Promise<void> {
  const client = createIpcClient({
    send: batchingSender<WorkerMessage>((message) => {
      process.send?.(message);
    }),
    onMessage: (listener) => {
      process.on("message", listener);
      return () => process.off("message", listener);
    },
  });
  await createIpcCache(client).set("k", { prediction_id: "p", predicted_price: 1 }, 60_000);
  // The call itself, not the adapter: createIpcCache answers a repeated read from its copy, without the wire.
  const get = () => client.call("cache", "getEntry", ["k"]);
  for (let i = 0; i < 2_000; i++) await get(); // warm-up
  let started = performance.now();
  for (let i = 0; i < IPC_CALLS; i++) await get();
  const sequentialUs = ((performance.now() - started) * 1000) / IPC_CALLS;
  started = performance.now();
  await Promise.all(Array.from({ length: IPC_CALLS }, () => get()));
  const concurrentUs = ((performance.now() - started) * 1000) / IPC_CALLS;
  process.send?.({ probe: { sequentialUs, concurrentUs } });
  await new Promise(() => {});
}

function report(input: {
  runs: Run[];
  routes: Route[];
  ipc: { sequentialUs: number; concurrentUs: number };
  seconds: number;
  rounds: number;
  connections: number;
  loadBefore: number;
  loadAfter: number;
}): string {
  const { runs, routes, ipc } = input;
  const pick = (workers: number, route: Route["key"], server: Run["server"] = "edgeml") =>
    runs.filter((r) => r.workers === workers && r.route === route && r.server === server);
  const med = (rs: Run[], f: (r: Run) => number) => median(rs.map(f));
  const fmt = (n: number, digits = 0) =>
    n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  /** One table row: `server`'s runs of `route` with 1 and 2 processes, medians and ratios. */
  const summarise = (route: Route, server: Run["server"], label: string) => {
    const one = pick(1, route.key, server);
    const two = pick(2, route.key, server);
    const rps1 = med(one, (r) => r.reqPerSec);
    const rps2 = med(two, (r) => r.reqPerSec);
    const perRound = two.map((r, i) => r.reqPerSec / (one[i]?.reqPerSec ?? Number.NaN));
    const cpu1 = med(one, (r) => r.cpuPerRequest);
    const cpu2 = med(two, (r) => r.cpuPerRequest);
    const primary = med(two, (r) => r.primaryCpuPerRequest ?? 0);
    const p50s = `${fmt(
      med(one, (r) => r.p50),
      1,
    )} / ${fmt(
      med(two, (r) => r.p50),
      1,
    )} ms`;
    const failed = one.concat(two).reduce((n, r) => n + r.non2xx + r.errors, 0);
    return {
      key: route.key,
      ratio: rps2 / rps1,
      cpu1,
      cpu2,
      primary,
      line: `| ${label} | ${fmt(rps1)} | ${fmt(rps2)} | **${fmt(rps2 / rps1, 2)}×** | ${perRound.map((x) => `${fmt(x, 2)}×`).join(", ")} | ${p50s} | ${fmt(cpu1)} / ${fmt(cpu2)} µs | ${fmt(primary)} µs | ${failed} |`,
    };
  };
  const rows = routes.map((route) => summarise(route, "edgeml", route.label));
  // The same columns for the ceiling (bench/peer/bare.ts), whose primary takes no IPC calls.
  const ceiling = routes.map((route) =>
    summarise(
      route,
      "bare",
      `ceiling (bare Hono, bench/peer/bare.ts): ${route.key === "infer" ? "the model run" : "stored bytes"}`,
    ),
  );
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const date = new Date().toISOString().slice(0, 10);
  return [
    HEADING,
    "",
    `Reproduce with \`npm run bench:workers\` (\`tsx bench/workers.bench.ts [--seconds ${input.seconds}] [--rounds ${input.rounds}]\`). It rewrites this section; measured on ${date}, ${cpu}, ${availableParallelism()} cores, Node ${process.versions.node}; 1-minute load average ${fmt(input.loadBefore, 1)} when it started, ${fmt(input.loadAfter, 1)} when it ended.`,
    "",
    `\`npm start\`'s own script (src/runtime/node/server.ts) with WORKERS=1 (one process, today's server) and WORKERS=2 (a node:cluster primary and two workers on one port), each on a copy of the shipped models, the shipped CSVs, default configuration except the rate-limit budgets (raised so the load, one client, is counted but never refused: every request still pays the limiter, which with two workers lives in the primary). autocannon's CLI in a process of its own, ${input.connections} connections, ${input.seconds} s per route after a 2 s warm-up; ${input.rounds} rounds, A/B order swapped each round; medians over rounds.`,
    "",
    "| route | req/s, 1 worker | req/s, 2 workers | 2 / 1 | 2 / 1 by round | p50, 1 / 2 | server CPU per request, 1 / 2 | of which the primary (2) | non-2xx + errors |",
    "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => r.line),
    ...ceiling.map((r) => r.line),
    "",
    `One call over the IPC wire (a cluster worker calling the primary's cache, \`cache.getEntry\` of a forecast-sized value over the wire, not from the worker's copy, ${fmt(IPC_CALLS)} calls): **${fmt(input.ipc.sequentialUs, 1)} µs** round trip one after another, ${fmt(ipc.concurrentUs, 1)} µs each when ${fmt(IPC_CALLS)} are in flight at once.`,
    "",
    "Reading:",
    "",
    `- **Two workers against one: ${rows.map((r) => `${fmt(r.ratio, 2)}× the ${r.key === "infer" ? "infer requests" : "cached forecasts"} per second`).join(", ")} (medians).** CPU per request with one and two workers: ${rows.map((r) => `${fmt(r.cpu1)} → ${fmt(r.cpu2)} µs (${r.key})`).join(", ")}, of which the primary takes ${rows.map((r) => `${fmt(r.primary)} µs`).join(" and ")} (the calls that still reach it, and the connections it hands out). With the load generator on the same cores, that extra CPU is what the second core would have served with.`,
    `- **The ceiling shows what this machine allows: ${ceiling.map((r) => `${fmt(r.ratio, 2)}× (${r.key})`).join(", ")} for a bare Hono app in two processes against one**, the same cluster, the same load, nothing on its path (no IPC, limiter, cache or metrics). Where the ceiling itself gains little, the second core is taken by the load generator and the primary, and no server can show two workers' worth here; edgeml's ratio is read against it.`,
    `- **The load generator competes for the same ${availableParallelism()} cores.** autocannon runs in its own process, but on this machine it takes a large share of one core at these rates: with two workers, server and load generator want more cores than the machine has, so the 2 / 1 ratio here is a floor of what a machine with cores to spare (or a load generator elsewhere) sees. The primary takes CPU too (accepting connections and handing them round-robin, and every IPC call).`,
    `- **What a request pays for the second worker.** Not the wire, on most requests: a worker admits from the rate-limit lease the primary gave it and answers a cached forecast from its copy (src/storage/node/ipc-adapters.ts); usage and telemetry are sent after the answer, batched per event-loop turn (a strace of one worker under the cached-forecast load on 2026-12-01: 122 messages received from the primary over about 8,000 requests, its sends at most one per event-loop turn of about 5 requests, against a socket read and write per request). The primary's share per request is the column above. What the CPU-per-request columns show beyond it is spent in the workers themselves: two Node processes, the primary and the load generator on 2 vCPUs, each worker descheduled and rescheduled many times a second; the ceiling, whose requests touch far less code and memory, pays much less for it. Whether two workers pay on a given machine is for its own load to say: ${rows.every((r) => r.ratio >= 1) ? "here, with the load generator local, two served at least as many as one on every route (medians)" : rows.every((r) => r.ratio < 1) ? "here, with the load generator local, one served more on every route (medians)" : `here, with the load generator local, it depends on the route (medians: ${rows.map((r) => `${fmt(r.ratio, 2)}× ${r.key}`).join(", ")})`}.`,
    `- Rounds disagree (2 / 1 by round): this machine is shared with other jobs (the load averages above), so one round's ratio is not a measurement; compare the medians, and rerun on a quiet machine before quoting one. The IPC probe's sequential round trip is mostly two process wake-ups on a busy machine; in flight together, calls cost ${fmt(ipc.concurrentUs, 1)} µs each.`,
  ].join("\n");
}
