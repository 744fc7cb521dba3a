/**
 * The "## Side by side" section of docs/benchmarks.md, written by bench/peer.bench.ts: what is compared and how (the
 * section's opening, rewritten by every run), then one subsection per process count ("### 1 process each",
 * "### 2 processes each"), each rewritten only by a run with that count, so both configurations stay on the page.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import { writeDocSection } from "../doc-section.js";
import { median } from "../support.js";
import type { LoadResult } from "./load.js";
import type { PeerInfo } from "./servers.js";
import {
  type Agreement,
  command,
  GOALS,
  INSTALL,
  type Options,
  RATE_LIMIT_PUBLIC,
  ROUTE_LABEL,
  ROUTES,
  type Route,
  type Run,
  SECTION,
  SERVE_AS_OF,
  type Server,
  TOLERANCE_TEXT,
} from "./spec.js";

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

interface Stats {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUs: number;
  busy: number;
}

interface Summary {
  path: Route;
  edgeml: Stats;
  peer: Stats;
  bare: Stats;
  /** Medians over rounds of the per-round ratios. */
  reqRatio: number;
  cpuRatio: number;
  reqRatios: number[];
  cpuRatios: number[];
  /** The ceiling: the bare Hono app's req/s over the peer's, median of the rounds'. */
  ceilingRatio: number;
  ceilingRatios: number[];
  /** edgeml's req/s over the bare app's: how much of the ceiling edgeml reaches. */
  ofCeiling: number;
}

function summarise(runs: Run[], rounds: number): Summary[] {
  return ROUTES.map((path) => {
    const of = (server: Server) => runs.filter((r) => r.path === path && r.server === server);
    const stats = (server: Server): Stats => {
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
    const ceilingRatios: number[] = [];
    const shares: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const e = of("edgeml").find((r) => r.round === round) as Run;
      const p = of("peer").find((r) => r.round === round) as Run;
      const b = of("bare").find((r) => r.round === round) as Run;
      reqRatios.push(e.reqPerSec / p.reqPerSec);
      cpuRatios.push(cpuPerRequest(p) / cpuPerRequest(e));
      ceilingRatios.push(b.reqPerSec / p.reqPerSec);
      shares.push(e.reqPerSec / b.reqPerSec);
    }
    return {
      path,
      edgeml: stats("edgeml"),
      peer: stats("peer"),
      bare: stats("bare"),
      reqRatio: median(reqRatios),
      cpuRatio: median(cpuRatios),
      reqRatios,
      cpuRatios,
      ceilingRatio: median(ceilingRatios),
      ceilingRatios,
      ofCeiling: median(shares),
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
      "ceiling: bare Hono req/s",
      "bare / peer",
    ],
    summaries.map((s) => [
      ROUTE_LABEL[s.path],
      int(s.edgeml.reqPerSec),
      int(s.peer.reqPerSec),
      `**${times(s.reqRatio)}**`,
      `${ms(s.edgeml.p50Ms)} / ${ms(s.edgeml.p99Ms)}`,
      `${ms(s.peer.p50Ms)} / ${ms(s.peer.p99Ms)}`,
      us(s.edgeml.cpuUs),
      us(s.peer.cpuUs),
      `**${times(s.cpuRatio)}**`,
      int(s.bare.reqPerSec),
      times(s.ceilingRatio),
    ]),
  );
}

function roundsTable(runs: Run[]): string {
  const rows = runs.map((r) => {
    // Ratios are against the peer's run of the same round and path, on edgeml's and the ceiling's rows.
    const p = runs.find((x) => x.round === r.round && x.path === r.path && x.server === "peer") as Run;
    const against = r.server !== "peer";
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
      against ? times(r.reqPerSec / p.reqPerSec) : "",
      against ? times(cpuPerRequest(p) / cpuPerRequest(r)) : "",
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
      "req/s / peer's",
      "CPU peer's / this",
    ],
    rows,
  );
}

export interface Report {
  o: Options;
  runs: Run[];
  agreement: Agreement;
  peer: PeerInfo;
  loadStart: number[];
  loadEnd: number[];
  minutes: number;
}

function verdict(s: Summary, goal: number): string {
  const met = s.reqRatio >= goal;
  const ceiling =
    s.ceilingRatio < goal
      ? ` The ceiling, the least a correct server on edgeml's stack does (bench/peer/bare.ts), served ${times(s.ceilingRatio)} the peer's req/s (rounds: ${s.ceilingRatios.map(times).join(", ")}): no server built on ${s.path === "infer" ? "Node, Hono and onnxruntime-web" : "Node and Hono"} reaches ${goal}× on this machine, so the goal is one about the machine and the stack, not edgeml's request path; edgeml served ${pct(s.ofCeiling)} of the ceiling's req/s.`
      : ` The ceiling, the least a correct server on edgeml's stack does (bench/peer/bare.ts), served ${times(s.ceilingRatio)} the peer's req/s (rounds: ${s.ceilingRatios.map(times).join(", ")}), so the goal is within the stack's reach; edgeml served ${pct(s.ofCeiling)} of the ceiling's req/s.`;
  return `${times(s.reqRatio)} the peer's req/s (rounds: ${s.reqRatios.map(times).join(", ")}): the goal of ${goal}× is ${met ? "**met**" : "**not met**"}.${ceiling}`;
}

function reading(r: Report, summaries: Summary[]): string {
  const [infer, serve] = summaries as [Summary, Summary];
  const peerModelShare = r.peer.predict_us / infer.peer.cpuUs;
  const lines = [
    `- **Infer:** edgeml served ${verdict(infer, GOALS.infer)} Per request, the peer's server used ${us(infer.peer.cpuUs)} of CPU against edgeml's ${us(infer.edgeml.cpuUs)} (${times(infer.cpuRatio)}). Of the peer's, \`model.predict\` on one row alone takes ${us(r.peer.predict_us)} of CPU (${pct(peerModelShare)}; median of 300 calls timed alone in the peer at start): scikit-learn ${r.peer.versions["scikit-learn"]}'s HistGradientBoostingRegressor walks its 200 trees one predictor call at a time from Python (each entering an OpenMP region, here of one thread), a cost that hardly depends on the batch size. The rest is FastAPI, pydantic and uvicorn.`,
    `- **Cached forecast:** edgeml served ${verdict(serve, GOALS.serve)} Per request, ${us(serve.peer.cpuUs)} of server CPU for the peer against ${us(serve.edgeml.cpuUs)} for edgeml (${times(serve.cpuRatio)}). Here neither server runs a model: the peer pays for the framework alone (a pydantic v1 body, a dict lookup, FastAPI's encoding of the answer), edgeml for its whole request path (rate limiter, zod validation, version resolution, the prediction cache, usage counters, metrics).`,
  ];
  const starved = r.runs.filter((x) => busy(x) < 0.9 * r.o.workers);
  if (starved.length > 0) {
    lines.push(
      `- The server under load was on a CPU less than ${r.o.workers === 1 ? "90% of the time" : `90% of ${r.o.workers} cores' worth of the time`} in ${starved.length} of the ${r.runs.length} runs (column "server on CPU"): autocannon shares the ${os.availableParallelism()} cores with it, and other work on this machine takes its share (load averages above). Those req/s are floors; the CPU time per request is the comparison that holds on a busy machine, and the two ratios can differ for that reason.`,
    );
  }
  if ((r.loadStart[0] ?? 0) >= 1) {
    lines.push(
      `- The machine was not quiet (1-minute load average ${fixed(r.loadStart[0] ?? Number.NaN, 1)} at the start, ${fixed(r.loadEnd[0] ?? Number.NaN, 1)} at the end, on ${os.availableParallelism()} cores): tail latencies partly measure waiting for a CPU. Rerun on a quiet machine before quoting p99s.`,
    );
  }
  const lopsided = summaries.filter((x) => x.peer.busy < 0.75 * r.o.workers);
  if (r.o.workers > 1 && lopsided.length > 0) {
    lines.push(
      `- Under ${lopsided.map((x) => `the ${x.path === "infer" ? "infer" : "forecast"} load the peer's ${r.o.workers} workers were on a CPU ${fixed(x.peer.busy, 2)} cores' worth of the time`).join(", and under ")} (median; "server on CPU" by run): uvicorn's workers accept from one shared socket, and autocannon's ${r.o.connections} kept-alive connections were mostly accepted by one of them, so there the peer served much like one process (compare its req/s in the 1-process subsection). That is how \`uvicorn --workers\` behaves with few long-lived clients; a balancer in front of it would spread them, and edgeml's primary hands connections to its workers in turn. The 1-process comparison is the like-for-like one.`,
    );
  }
  if (r.o.workers > 1) {
    lines.push(
      `- With ${r.o.workers} processes each, the peer's forecast cache is one dict per worker: each worker computes its own first answer, under its own prediction_id, where edgeml's workers share one cache and one prediction_id per bar (through their primary process, whose CPU is counted in edgeml's).`,
    );
  }
  lines.push(
    `- Checks: on the export's 256 test rows, edgeml's answers differ from scikit-learn's by at most ${r.agreement.edgemlVsSklearn.toExponential(1)} and from the peer's by at most ${r.agreement.edgemlVsPeer.toExponential(1)} (tolerance ${TOLERANCE_TEXT}: float32 against float64 arithmetic on the same trees); the peer's equal scikit-learn's stored predictions (max difference ${r.peer.model.max_abs_diff_vs_export}). Both forecasts are the naive BTC-24h answer, the CSV close ${r.agreement.closePrice}. Every response of the timed runs was checked: ${int(r.runs.reduce((n, x) => n + x.requests, 0))} responses, 0 non-2xx, 0 errors, 0 wrong answers (infer: the row's prediction within ${TOLERANCE_TEXT}; forecast: \`cached: true\`, that close, that \`as_of\`).`,
  );
  return lines.join("\n");
}

const processes = (n: number) => `${n} process${n > 1 ? "es" : ""} each`;

/** The section's opening: what runs on each side and how it is measured; the same for every process count. */
function intro(r: Report): string {
  const v = r.peer.versions;
  return [
    SECTION,
    "",
    `Reproduce with \`npm run bench:peer\` (\`tsx bench/peer.bench.ts\`): as many processes of each as \`npm start\` runs here (one per core); \`-- --workers N\` runs N of each and rewrites that subsection only. It needs Python 3 with FastAPI, uvicorn and scikit-learn, on Debian \`${INSTALL}\`: not part of CI.`,
    "",
    `- **edgeml**: \`npm start\`'s server (\`src/runtime/node/server.ts\`) with WORKERS=N, the default configuration (rate limits counted per client, metrics, usage counters, the SQLite prediction log, tree models inline), embedded stores on a copy of \`models/\` in a temporary directory, market data from the CSVs; the public rate limit raised to ${RATE_LIMIT_PUBLIC} so that the single load client is counted, never refused. \`sk_hgb_f32.onnx\` from \`../shared/data/byo-models\` is registered through the admin API (golden rows: scikit-learn's predictions) and promoted.`,
    `- **peer** (\`bench/peer/\`): FastAPI ${v.fastapi}, pydantic ${v.pydantic}, uvicorn ${v.uvicorn} (${v.loop}, ${v.http}), scikit-learn ${v["scikit-learn"]}, numpy ${v.numpy}, Python ${v.python}, all Debian 12 packages; N uvicorn workers sharing one socket, OMP_NUM_THREADS=1. Handlers are \`async def\` and validate the body with pydantic models, as FastAPI users write them. No rate limiting, metrics or prediction log.`,
    `- **The model**: the export's own HistGradientBoostingRegressor, retrained by the peer at start and checked against the export every time: ${int(r.peer.model.rows)} rows, bars 170–10,169 of BTCUSDT_1h.csv and ETHUSDT_1h.csv interleaved hour by hour, the export's 30 features (\`bench/peer/features.py\`, which reproduces the export's 256 stored test rows bit for bit in float32) as float32, target the 24 h log return; \`max_iter=200, max_depth=5, learning_rate=0.05, random_state=0\`, the rest scikit-learn's defaults (early stopping on, 10% held out, never stopping before 200). Recovered from the export (its baseline, its trees), it predicts the export's stored scikit-learn outputs exactly. edgeml serves the ONNX export of that model; the peer calls \`model.predict\`.`,
    `- **The cached forecast**: \`POST /api/ml/serve {"symbol":"BTC","horizon":"24h","as_of":"${SERVE_AS_OF}"}\`. edgeml's BTC-24h serves its naive version (the selection policy's choice), so both answer the close of the daily bar before \`as_of\`: computed on the first request, then edgeml's prediction cache, the peer's dict. The peer's answer has edgeml's fields and about its size; it ages the same way (\`data_age_seconds\`, \`cached: true\`).`,
    "- **The ceiling** (`bench/peer/bare.ts`): the least a correct server on edgeml's stack does, as many processes as edgeml (node:cluster, one port). A bare Hono app on @hono/node-server: infer parses the body, builds the float32 tensor and runs the same export through onnxruntime-web's wasm build (one thread); the cached forecast parses the body and answers the stored bytes of edgeml's own answer. No validation, version resolution, deadline, limiter, metrics or logging. It runs the same loads in the same rounds, and its answers are checked like the others'. Its req/s over the peer's is the most a server on Node, Hono and onnxruntime-web can show against the peer on this machine under this load.",
    `- **Load**: autocannon in a process of its own (\`bench/peer/load.ts\`), the same settings and bodies for every server, after a warm-up per server and path; rounds run both paths on the three servers, rotating which goes first. Every response is checked. Server CPU per request: utime + stime of the server's whole process tree (every process and thread, from /proc, 10 ms resolution) over the run, divided by its requests: the comparison that holds when the 2 cores are shared with the load generator and with other work. Latency percentiles from autocannon's per-response times.`,
  ].join("\n");
}

function subsection(r: Report): string {
  const summaries = summarise(r.runs, r.o.rounds);
  const cpus = os.cpus();
  const loads = (l: number[]) => l.map((x) => fixed(x, 2)).join(" / ");
  return [
    `### ${processes(r.o.workers)}`,
    "",
    `\`${command(r.o)}\`, measured on ${new Date().toISOString().slice(0, 10)} (about ${Math.ceil(r.minutes)} minutes): WORKERS=${r.o.workers} and ${r.o.workers} uvicorn worker${r.o.workers > 1 ? "s" : ""}; ${r.o.connections} connections, ${r.o.seconds} s per run after ${r.o.warmupSeconds} s of warm-up, ${r.o.rounds} round${r.o.rounds > 1 ? "s" : ""}. Node ${process.version}, ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${fixed(os.totalmem() / 2 ** 30, 1)} GiB RAM. Load averages (1 / 5 / 15 min): ${loads(r.loadStart)} at the start, ${loads(r.loadEnd)} at the end (this benchmark's processes included; other work shared the machine). The peer trained in ${r.peer.model.train_seconds} s.`,
    "",
    summaryTable(summaries),
    "",
    "Every run:",
    "",
    roundsTable(r.runs),
    "",
    reading(r, summaries),
  ].join("\n");
}

/** The section as it stands with this run's subsection in place (others kept, ordered by process count). */
async function merged(r: Report): Promise<string> {
  let current = "";
  try {
    current = await readFile(r.o.doc, "utf8");
  } catch {
    // no page yet: writeDocSection creates it
  }
  const lines = current.split("\n");
  const start = lines.findIndex((line) => line.trim() === SECTION);
  const kept = new Map<number, string>();
  if (start !== -1) {
    const end = lines.findIndex((line, i) => i > start && /^## /.test(line));
    const section = lines.slice(start, end === -1 ? undefined : end);
    for (let i = 0; i < section.length; i++) {
      const heading = /^### (\d+) process(es)? each$/.exec(section[i] ?? "");
      if (!heading) continue;
      const next = section.findIndex((line, j) => j > i && /^### /.test(line));
      kept.set(
        Number(heading[1]),
        section
          .slice(i, next === -1 ? undefined : next)
          .join("\n")
          .trim(),
      );
    }
  }
  kept.set(r.o.workers, subsection(r));
  const ordered = [...kept.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
  return [intro(r), ...ordered].join("\n\n");
}

/** Prints this run's subsection and, unless `--no-write`, puts it in docs/benchmarks.md. */
export async function writeReport(r: Report): Promise<void> {
  console.log(`${intro(r)}\n\n${subsection(r)}`);
  if (r.o.write) await writeDocSection(SECTION, await merged(r), r.o.doc);
}
