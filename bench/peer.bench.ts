/**
 * `npm run bench:peer`: edgeml side by side with a FastAPI + scikit-learn service (bench/peer/) serving the same
 * model family on the same data, on this machine, and the "## Side by side" section of docs/benchmarks.md.
 *
 *   npm run bench:peer [-- --workers N] [--rounds R] [--seconds S] [--connections C] [--warmup-seconds W]
 *                      [--python PATH] [--doc FILE | --no-write]
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
 * Parts: bench/peer/servers.ts starts and stops both, bench/peer/load.ts is one load run, bench/peer/report.ts
 * writes the section (one subsection per process count), bench/peer/spec.ts holds what they share.
 *
 * The peer needs Debian's python3-fastapi, python3-uvicorn and python3-sklearn (not part of CI); without them the
 * script says how to install them and exits 1.
 */
import { readFile, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { BENCHMARKS_DOC } from "./doc-section.js";
import type { Expect } from "./peer/checks.js";
import type { LoadResult, LoadSpec } from "./peer/load.js";
import { writeReport } from "./peer/report.js";
import {
  type Edgeml,
  findPython,
  type Peer,
  type Running,
  sleep,
  startBare,
  startEdgeml,
  startPeer,
  stop,
} from "./peer/servers.js";
import {
  type Agreement,
  DEFAULTS,
  type ExportCase,
  INSTALL,
  Options,
  ROUTES,
  type Route,
  type Run,
  SERVE_AS_OF,
  type Server,
  TOLERANCE,
} from "./peer/spec.js";
import { BYO_MODELS, MARKET_DATA, runChild } from "./support.js";

const log = (line: string) => console.error(`bench:peer: ${line}`);

/** The command line, checked: `--workers 0` or `--seconds x` stops here with the reason. */
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
      doc: { type: "string", default: BENCHMARKS_DOC },
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
// ---------------------------------------------------------------------------------------------- requests

/** A POST whose answer must be 2xx, its body left to read. */
async function fetchOk(url: string, body: string): Promise<Response> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`);
  return response;
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

/** The daily close the naive BTC-24h forecast as of SERVE_AS_OF must give: the CSV's bar of the day before. */
async function csvClose(): Promise<number> {
  const day = new Date(Date.parse(SERVE_AS_OF) - 86_400_000).toISOString().slice(0, 10);
  const text = await readFile(join(MARKET_DATA, "BTC-USD_1d.csv"), "utf8");
  const line = text.split("\n").find((l) => l.startsWith(`${day},`));
  if (!line) throw new Error(`BTC-USD_1d.csv has no bar on ${day}`);
  return Number(line.split(",")[4]);
}

/** Same rows to both servers: every prediction against scikit-learn's and each other's; the forecasts equal. */
async function checkAgreement(
  edgeml: Edgeml,
  peer: Peer,
  c: ExportCase,
  workers: number,
): Promise<Agreement> {
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
    // Every answer is the naive close; a hit comes once it is computed: edgeml's first request computes it for every
    // worker (one cache, in the primary), the peer's workers each fill their own dict at start (bench/peer/app.py).
    let hit = false;
    for (let i = 0; i < 8 * workers && !hit; i++) {
      const { response, json } = await post(`${s.base}/api/ml/serve`, serveBody);
      if (json.predicted_price !== agreement.closePrice || json.as_of !== new Date(SERVE_AS_OF).toISOString())
        throw new Error(
          `${s.base}: not the naive forecast (close ${agreement.closePrice}): ${JSON.stringify(json)}`,
        );
      hit = json.cached === true && response.headers.get("x-cache") === "HIT";
    }
    if (!hit) throw new Error(`${s.base}: ${8 * workers} forecasts of one bar and not one cache hit`);
  }
  return agreement;
}

// ---------------------------------------------------------------------------------------------- load

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
    for (const server of ["edgeml", "peer", "bare"] as const) {
      for (const path of ROUTES) {
        log(`warm-up: ${server} ${path}, ${o.warmupSeconds} s`);
        await runChild<LoadResult>("peer/load.ts", [
          JSON.stringify(loadSpec(o, servers[server], path, c, close, o.warmupSeconds)),
        ]);
      }
    }
  }
  const runs: Run[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    // Rotate who goes first, so a slow spell of the shared machine does not always land on the same server.
    const servers3: Server[] = ["edgeml", "peer", "bare"];
    const order = [...servers3.slice((round - 1) % 3), ...servers3.slice(0, (round - 1) % 3)];
    for (const path of ROUTES) {
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
const running: Running[] = launched.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
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
  const agreement = await checkAgreement(edgeml, peer, c, o.workers);
  // The ceiling's cached forecast is edgeml's own answer, stored: the same bytes, so the same socket writes.
  const serveBody = JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: SERVE_AS_OF });
  const stored = await (await fetchOk(`${edgeml.base}/api/ml/serve`, serveBody)).text();
  log(`starting the ceiling: a bare Hono app in ${o.workers} process(es)`);
  const bare = await startBare(o.workers, join(BYO_MODELS, "sk_hgb_f32.onnx"), {
    [`BTC|${SERVE_AS_OF}`]: stored,
  });
  running.push(bare);
  const runs = await measure(o, { edgeml, peer, bare }, c, agreement.closePrice);
  await writeReport({
    o,
    runs,
    agreement,
    peer: peer.info,
    loadStart,
    loadEnd: os.loadavg(),
    minutes: (performance.now() - started) / 60_000,
  });
  if (o.write) log(`wrote the ${o.workers}-process part of "Side by side" in ${o.doc}`);
} finally {
  await stopAll();
  if (edgemlStart.status === "fulfilled") await rm(edgemlStart.value.dir, { recursive: true, force: true });
}
