/**
 * `npm run bench`: onnxruntime-web (wasm, one thread, as the app runs it) against onnxruntime-node (native) on real
 * scikit-learn tree ensembles, then the app's OIP infer route against a bare Hono route over HTTP.
 *
 * Prints machine facts and markdown tables, and rewrites the "## Inference" section of docs/benchmarks.md (everything
 * else in that file is kept). Numbers depend on the machine; the ratios are what to compare between runs.
 *
 * Every runtime is measured in child processes (bench/runtime.ts): cold starts in a fresh process each, so once-per-
 * process costs are real, and the steady-state numbers in a few rounds whose medians are reported. The HTTP server
 * runs in its own process (bench/server.ts) so that autocannon, here, does not share its event loop.
 *
 * The worker hop (what running a model isolated in the Node server's worker thread adds to a request) is measured
 * in a child process of its own too (`tsx bench/inference.bench.ts hop-child`). `npm run bench -- --only hop` reruns
 * that part alone and rewrites only its subsection, keeping the rest of the section's numbers.
 */
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import type { Tensor as OrtTensor } from "onnxruntime-web/wasm";
import { BENCHMARKS_DOC, writeDocSection } from "./doc-section.js";
import type { ServerMessage } from "./server.js";
import { serverCpuMicros, startServer, stopServer, table } from "./server-client.js";
import {
  BENCH_RATE_LIMIT_PUBLIC,
  type ColdResult,
  ITERATIONS,
  type Latency,
  loadCase,
  type MeasureResult,
  median,
  quantile,
  type RuntimeName,
  runChild,
  TREE_MODELS,
} from "./support.js";

const COLD_STARTS = 5;
const MEASURE_ROUNDS = 3;
/** Load per route: `seconds` per round, `rounds` rounds interleaving the routes. */
const HTTP = { connections: 10, seconds: 4, warmupSeconds: 2, rounds: 5 } as const;
/** The as-of date of the cached forecast: the shipped CSVs' last daily close, so the answer is a replay, cacheable. */
const SERVE_AS_OF = "2026-03-28";
/** The issue's goals: server CPU per request of each route over the bare route's. */
const GOALS = { infer: 3, serve: 2.5 } as const;
const COMMAND = "npm run bench";
const SECTION = "## Inference";
const HOP_SECTION = "### The worker hop: an isolated model against the same model inline";
const HOP_ROUNDS = 3;
const HOP_ITERATIONS = { b1: { warmup: 500, timed: 3_000 }, b64: { warmup: 200, timed: 1_000 } } as const;

const log = (line: string) => console.error(`bench: ${line}`);

// ---------------------------------------------------------------------------------------------- formatting

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const ms = (value: number) => `${fixed(value, value < 10 ? 2 : 1)} ms`;
const us = (value: number) => `${fixed(value, value < 100 ? 1 : 0)} µs`;
const ratio = (a: number, b: number) => `${fixed(a / b, 2)}×`;
const int = (value: number) => Math.round(value).toLocaleString("en-US");

// ---------------------------------------------------------------------------------------------- runtimes

interface RuntimeNumbers {
  cold: Record<
    "web" | "node",
    { importMs: number; totalMs: number; wasmInstantiateMs: number; firstSessionMs: number }
  >;
  measured: Record<RuntimeName, MeasureResult>;
}

/** Median over rounds of every number in the rounds' results (medians of medians, medians of p99s). */
function combine(rounds: MeasureResult[]): MeasureResult {
  const first = rounds[0];
  if (!first) throw new Error("no measurement rounds");
  const latency = (pick: (r: MeasureResult) => Latency): Latency => ({
    medianUs: median(rounds.map((r) => pick(r).medianUs)),
    p99Us: median(rounds.map((r) => pick(r).p99Us)),
    iterations: pick(first).iterations,
  });
  const out: MeasureResult = {
    ...first,
    sessionCreateMs: { ...first.sessionCreateMs },
    runs: { ...first.runs },
  };
  if (first.engineRuns) out.engineRuns = { ...first.engineRuns };
  for (const { key } of TREE_MODELS) {
    out.sessionCreateMs[key] = median(rounds.map((r) => r.sessionCreateMs[key]));
    out.runs[key] = { b1: latency((r) => r.runs[key].b1), b64: latency((r) => r.runs[key].b64) };
    if (out.engineRuns) {
      out.engineRuns[key] = {
        b1: latency((r) => r.engineRuns?.[key].b1 as Latency),
        b64: latency((r) => r.engineRuns?.[key].b64 as Latency),
      };
    }
  }
  return out;
}

async function measureRuntimes(): Promise<RuntimeNumbers> {
  const colds: Record<"web" | "node", ColdResult[]> = { web: [], node: [] };
  for (let i = 0; i < COLD_STARTS; i++) {
    for (const runtime of ["web", "node"] as const) {
      log(`cold start ${i + 1}/${COLD_STARTS}: ${runtime}`);
      colds[runtime].push(await runChild<ColdResult>("runtime.ts", ["cold", runtime]));
    }
  }
  const cold = {} as RuntimeNumbers["cold"];
  for (const runtime of ["web", "node"] as const) {
    cold[runtime] = {
      importMs: median(colds[runtime].map((c) => c.importMs)),
      totalMs: median(colds[runtime].map((c) => c.importMs + c.initMs)),
      wasmInstantiateMs: median(colds[runtime].map((c) => c.wasmInstantiateMs ?? Number.NaN)),
      firstSessionMs: median(colds[runtime].map((c) => c.firstSessionMs)),
    };
  }

  const runtimes: RuntimeName[] = ["web", "node", "node-default"];
  const rounds = Object.fromEntries(runtimes.map((r) => [r, [] as MeasureResult[]])) as Record<
    RuntimeName,
    MeasureResult[]
  >;
  // Rounds interleave the runtimes, so a slow spell of the (shared) machine does not land on one runtime only.
  for (let i = 0; i < MEASURE_ROUNDS; i++) {
    for (const runtime of runtimes) {
      log(`steady state round ${i + 1}/${MEASURE_ROUNDS}: ${runtime}`);
      rounds[runtime].push(await runChild<MeasureResult>("runtime.ts", ["measure", runtime]));
    }
  }
  const measured = Object.fromEntries(runtimes.map((r) => [r, combine(rounds[r])])) as Record<
    RuntimeName,
    MeasureResult
  >;
  return { cold, measured };
}

function runtimeTable({ cold, measured }: RuntimeNumbers): string {
  const web = measured.web;
  const node = measured.node;
  const threaded = measured["node-default"];
  const rows: string[][] = [
    [
      `runtime init, cold: import + first session of a 1-node model (fresh process, median of ${COLD_STARTS})`,
      ms(cold.web.totalMs),
      ms(cold.node.totalMs),
      ratio(cold.web.totalMs, cold.node.totalMs),
      "",
    ],
    [
      "… of which the module import",
      ms(cold.web.importMs),
      ms(cold.node.importMs),
      ratio(cold.web.importMs, cold.node.importMs),
      "",
    ],
    [
      "… of which WebAssembly.instantiate of the 14 MB .wasm (compile + instantiate)",
      ms(cold.web.wasmInstantiateMs),
      "n/a",
      "",
      "",
    ],
    [
      "first sk_gbr session in that fresh process",
      ms(cold.web.firstSessionMs),
      ms(cold.node.firstSessionMs),
      ratio(cold.web.firstSessionMs, cold.node.firstSessionMs),
      "",
    ],
  ];
  for (const model of TREE_MODELS) {
    const key = model.key;
    rows.push([
      `session create, ${model.label} (median of ${web.sessionCreations}, warm runtime)`,
      ms(web.sessionCreateMs[key]),
      ms(node.sessionCreateMs[key]),
      ratio(web.sessionCreateMs[key], node.sessionCreateMs[key]),
      ms(threaded.sessionCreateMs[key]),
    ]);
  }
  for (const model of TREE_MODELS) {
    const key = model.key;
    for (const batch of ["b1", "b64"] as const) {
      const n = batch === "b1" ? 1 : 64;
      const iterations = ITERATIONS[batch].timed.toLocaleString("en-US");
      for (const stat of ["medianUs", "p99Us"] as const) {
        const w = web.runs[key][batch][stat];
        const nd = node.runs[key][batch][stat];
        rows.push([
          `${key} batch ${n}, ${stat === "medianUs" ? "median" : "p99"} per inference (${iterations} runs)`,
          us(w),
          us(nd),
          ratio(w, nd),
          us(threaded.runs[key][batch][stat]),
        ]);
      }
    }
  }
  return table(
    [
      "measurement",
      "onnxruntime-web (wasm, 1 thread)",
      "onnxruntime-node (native, 1 thread)",
      "web / node",
      "onnxruntime-node (default threads)",
    ],
    rows,
  );
}

function engineTable({ measured }: RuntimeNumbers): string {
  const web = measured.web;
  const rows: string[][] = [];
  for (const model of TREE_MODELS) {
    for (const batch of ["b1", "b64"] as const) {
      const direct = web.runs[model.key][batch].medianUs;
      const viaEngine = web.engineRuns?.[model.key][batch].medianUs ?? Number.NaN;
      rows.push([
        `${model.key} batch ${batch === "b1" ? 1 : 64}, median`,
        us(direct),
        us(viaEngine),
        us(viaEngine - direct),
      ]);
    }
  }
  return table(
    ["onnxruntime-web", "session.run", "the app's engine.run", "engine overhead (difference of medians)"],
    rows,
  );
}

/** Fixed per-call cost and per-row cost from the batch 1 and batch 64 medians (a straight line through both). */
function split(m: MeasureResult, key: (typeof TREE_MODELS)[number]["key"]) {
  const b1 = m.runs[key].b1.medianUs;
  const b64 = m.runs[key].b64.medianUs;
  const perRow = (b64 - b1) / 63;
  return { perRow, fixed: b1 - perRow };
}

// ---------------------------------------------------------------------------------------------- HTTP

type HttpKey = "bare" | "infer" | "named" | "serve";

interface HttpResult {
  key: HttpKey;
  route: string;
  reqPerSec: number;
  /** Server process CPU time per request, and the share of the run's wall time the server was on a CPU. */
  cpuUsPerRequest: number;
  cpuBusy: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
}

/** Asks the server to start or stop (writing `file`) its CPU profile, and waits until it has. */
function serverProfile(
  child: ChildProcess,
  message: { profile: "start" } | { profile: "stop"; file: string },
) {
  return new Promise<void>((done) => {
    const answer = (reply: ServerMessage) => {
      if (reply.type !== "profiled") return;
      child.off("message", answer);
      done();
    };
    child.on("message", answer);
    child.send(message);
  });
}

interface Round {
  requests: number;
  seconds: number;
  cpuUs: number;
  wallUs: number;
  times: number[];
  non2xx: number;
  errors: number;
}

async function load(child: ChildProcess, url: string, body: string, seconds: number): Promise<Round> {
  // autocannon's own latency histogram has 1 ms resolution; its per-response times (hrtime, in ms) have more.
  const times: number[] = [];
  let non2xx = 0;
  const cpuBefore = await serverCpuMicros(child);
  const wallBefore = performance.now();
  const result = await new Promise<autocannon.Result>((done, fail) => {
    const instance = autocannon(
      {
        url,
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        connections: HTTP.connections,
        duration: seconds,
      },
      (error, r) => (error ? fail(error) : done(r)),
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      times.push(responseTime);
      if (statusCode < 200 || statusCode > 299) non2xx += 1;
    });
  });
  const wallUs = (performance.now() - wallBefore) * 1_000;
  const cpuUs = (await serverCpuMicros(child)) - cpuBefore;
  return {
    requests: result.requests.total,
    seconds: result.duration,
    cpuUs,
    wallUs,
    times,
    non2xx: Math.max(non2xx, result.non2xx),
    errors: result.errors + result.timeouts,
  };
}

/** A route's result over its rounds: medians of the per-round rates, percentiles of every response pooled. */
function combineRounds(key: HttpKey, route: string, rounds: Round[]): HttpResult & { errors: number } {
  const times = rounds.flatMap((r) => r.times);
  return {
    key,
    route,
    reqPerSec: median(rounds.map((r) => r.requests / r.seconds)),
    cpuUsPerRequest: median(rounds.map((r) => r.cpuUs / r.requests)),
    cpuBusy: median(rounds.map((r) => r.cpuUs / r.wallUs)),
    p50Ms: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}

async function measureHttp(): Promise<{ results: HttpResult[]; inferRuns: number }> {
  const gbr = await loadCase("sk_gbr_f32.json");
  const { child, port, adminToken } = await startServer();
  const base = `http://127.0.0.1:${port}`;
  try {
    // Register the real export through the admin API, with golden rows taken from scikit-learn's own predictions.
    const goldenRows = 8;
    const metadata = {
      description: "bench: scikit-learn GradientBoostingRegressor (200 trees, depth 3), skl2onnx float32",
      golden: {
        atol: 1e-6,
        cases: [
          {
            inputs: [
              {
                name: gbr.spec.input.name,
                shape: [goldenRows, gbr.features],
                datatype: "FP32",
                data: Array.from(gbr.batch(goldenRows)),
              },
            ],
            outputs: [
              {
                name: gbr.spec.output_name,
                shape: [goldenRows, 1],
                datatype: "FP32",
                data: gbr.spec.expected_sklearn_predict.slice(0, goldenRows),
              },
            ],
          },
        ],
      },
    };
    const admin = { authorization: `Bearer ${adminToken}` };
    const registered = await fetch(`${base}/api/ml/models/sk_gbr/versions`, {
      method: "POST",
      headers: {
        ...admin,
        "content-type": "application/octet-stream",
        "x-model-metadata": JSON.stringify(metadata),
      },
      body: gbr.bytes as Uint8Array<ArrayBuffer>,
    });
    if (registered.status !== 201)
      throw new Error(`registration failed: ${registered.status} ${await registered.text()}`);
    const { version } = (await registered.json()) as { version: string };
    const promoted = await fetch(`${base}/api/ml/models/sk_gbr/promote`, {
      method: "POST",
      headers: { ...admin, "content-type": "application/json" },
      body: JSON.stringify({ version, reason: "bench" }),
    });
    if (promoted.status !== 200)
      throw new Error(`promotion failed: ${promoted.status} ${await promoted.text()}`);

    const inferBody = JSON.stringify({
      inputs: [
        {
          name: gbr.spec.input.name,
          shape: [1, gbr.features],
          datatype: "FP32",
          data: Array.from(gbr.batch(1)),
        },
      ],
    });
    const check = await fetch(`${base}/v2/models/sk_gbr/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: inferBody,
    });
    const answer = (await check.json()) as { outputs?: { data: number[] }[] };
    const got = answer.outputs?.[0]?.data[0];
    const want = gbr.spec.expected_sklearn_predict[0] as number;
    if (check.status !== 200 || typeof got !== "number" || Math.abs(got - want) > 1e-6) {
      throw new Error(`infer sanity check failed: ${check.status} ${JSON.stringify(answer)} (want ${want})`);
    }

    if (!check.headers.get("ratelimit-limit"))
      throw new Error("the infer answer carries no RateLimit-Limit header: the rate limiter did not run");

    // A replay forecast (as_of inside the CSVs): the first request computes and caches it, every later one is a hit.
    const serveBody = JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: SERVE_AS_OF });
    for (const expected of ["MISS", "HIT"]) {
      const served = await fetch(`${base}/api/ml/serve`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: serveBody,
      });
      const cache = served.headers.get("x-cache");
      if (served.status !== 200 || cache !== expected)
        throw new Error(
          `serve sanity check: ${served.status} x-cache ${cache}, want ${expected}: ${await served.text()}`,
        );
    }

    const targets: { key: HttpKey; route: string; url: string; body: string }[] = [
      { key: "bare", route: "POST /bare (Hono route, c.json)", url: `${base}/bare`, body: "{}" },
      {
        key: "infer",
        route: "POST /v2/models/sk_gbr/infer (batch 1)",
        url: `${base}/v2/models/sk_gbr/infer`,
        body: inferBody,
      },
      {
        key: "named",
        route: `POST /v2/models/sk_gbr/versions/${version}/infer (batch 1, version named)`,
        url: `${base}/v2/models/sk_gbr/versions/${version}/infer`,
        body: inferBody,
      },
      {
        key: "serve",
        route: `POST /api/ml/serve (BTC 24h, as_of ${SERVE_AS_OF}, cached)`,
        url: `${base}/api/ml/serve`,
        body: serveBody,
      },
    ];
    // --routes infer,serve: only those (with --only http, to profile one route's path alone).
    const chosen = targets.filter((t) => !ROUTES || ROUTES.includes(t.key));
    for (const t of chosen) {
      log(`HTTP warm-up ${HTTP.warmupSeconds} s: ${t.route}`);
      await load(child, t.url, t.body, HTTP.warmupSeconds);
    }
    // Rounds interleave the routes, so a busy spell of the shared machine does not land on one route only.
    const rounds = new Map<HttpKey, Round[]>(targets.map((t) => [t.key, []]));
    // --profile DIR: one CPU profile of the server per route, over that route's timed rounds only.
    const profiles = PROFILE_DIR ? await mkdtemp(join(PROFILE_DIR, "edgeml-")) : undefined;
    const each = Math.max(1, Math.round(httpSeconds / HTTP.rounds));
    for (let round = 1; round <= HTTP.rounds; round++) {
      for (const t of chosen) {
        log(`HTTP round ${round}/${HTTP.rounds}, ${each} s, ${HTTP.connections} connections: ${t.route}`);
        if (profiles) await serverProfile(child, { profile: "start" });
        rounds.get(t.key)?.push(await load(child, t.url, t.body, each));
        if (profiles) {
          const file = join(profiles, `${t.key}-round${round}.cpuprofile`);
          await serverProfile(child, { profile: "stop", file });
          log(`profile: ${file}`);
        }
      }
    }
    const results: HttpResult[] = [];
    for (const t of chosen) {
      const r = combineRounds(t.key, t.route, rounds.get(t.key) ?? []);
      if (r.non2xx !== 0 || r.errors !== 0) {
        throw new Error(
          `${t.route}: ${r.non2xx} non-2xx responses and ${r.errors} errors/timeouts; must be 0`,
        );
      }
      results.push(r);
    }
    const stats = await stopServer(child);
    if (stats.unexpectedErrors !== 0)
      throw new Error(`the server logged ${stats.unexpectedErrors} unexpected errors`);
    if (stats.rateLimited !== 0) throw new Error(`the rate limiter refused ${stats.rateLimited} requests`);
    if (stats.forecastMisses !== 1)
      throw new Error(
        `the cached forecast missed the cache ${stats.forecastMisses} times; want once (the first)`,
      );
    return { results, inferRuns: stats.runs };
  } finally {
    if (child.exitCode === null && child.connected) child.kill();
  }
}

/** The result of `key`, which every HTTP run has. */
function pick(results: readonly HttpResult[], key: HttpKey): HttpResult {
  const found = results.find((r) => r.key === key);
  if (!found) throw new Error(`missing the ${key} HTTP result`);
  return found;
}

function httpTable(results: HttpResult[]): string {
  const bare = pick(results, "bare");
  const rows = results.map((r) => [
    r.route,
    int(r.reqPerSec),
    ms(r.p50Ms),
    ms(r.p99Ms),
    us(r.cpuUsPerRequest),
    `${fixed(r.cpuBusy * 100, 0)}%`,
    int(r.requests),
    String(r.non2xx),
  ]);
  for (const [key, label] of [
    ["infer", `infer / bare (goal: CPU ≤ ${GOALS.infer}×)`],
    ["serve", `cached serve / bare (goal: CPU ≤ ${GOALS.serve}×)`],
  ] as const) {
    const r = pick(results, key);
    rows.push([
      label,
      ratio(r.reqPerSec, bare.reqPerSec),
      ratio(r.p50Ms, bare.p50Ms),
      ratio(r.p99Ms, bare.p99Ms),
      ratio(r.cpuUsPerRequest, bare.cpuUsPerRequest),
      "",
      "",
      "",
    ]);
  }
  return table(
    [
      "route",
      "req/s",
      "p50 latency",
      "p99 latency",
      "server CPU per request",
      "server CPU busy",
      "requests",
      "non-2xx",
    ],
    rows,
  );
}

// ---------------------------------------------------------------------------------------------- worker hop

interface HopResult {
  inline: { b1: Latency; b64: Latency };
  isolated: { b1: Latency; b64: Latency };
}

/**
 * In a child process: sk_gbr through the inline engine and through the isolating engine with every model sent to
 * its worker (the classification forced), same bytes, same feeds; each call timed alone, the two interleaved.
 */
async function hopChild(): Promise<HopResult> {
  const ort = await import("onnxruntime-web/wasm");
  const { createOrtEngine } = await import("../src/inference/engine.js");
  const { createIsolatingEngine } = await import("../src/inference/node/isolated-engine.js");
  const gbr = await loadCase("sk_gbr_f32.json");
  const options = { maxSessions: 4, maxSessionBytes: 1 << 30, timeoutMs: 30_000, maxOutputBytes: 16 << 20 };
  const inline = createOrtEngine(options);
  const isolated = createIsolatingEngine({
    inline: createOrtEngine(options),
    worker: { ...options, memoryLimitBytes: 1 << 30 },
    recycleBytes: 1 << 29,
    timeoutMs: 30_000,
    classify: () => ({ isolate: true, reason: "bench: every model isolated" }),
  });
  await inline.init();
  await isolated.init();
  const feeds = (n: 1 | 64) => ({
    [gbr.spec.input.name]: new ort.Tensor("float32", gbr.batch(n), [n, gbr.features]),
  });
  const load = async () => gbr.bytes;
  const check = (out: Record<string, OrtTensor>, n: number, which: string) => {
    const data = out[gbr.spec.output_name]?.data as Float32Array | undefined;
    for (let i = 0; i < n; i++) {
      const want = gbr.spec.expected_sklearn_predict[i] as number;
      if (!data || Math.abs((data[i] as number) - want) > 1e-6) {
        throw new Error(`${which}: row ${i} gives ${data?.[i]}, scikit-learn says ${want}`);
      }
    }
  };
  const engines = { inline, isolated } as const;
  for (const [which, engine] of Object.entries(engines)) {
    check(await engine.run({ key: "sk_gbr@bench", load, feeds: feeds(64) }), 64, which);
  }
  const samples = {
    inline: { b1: [] as number[], b64: [] as number[] },
    isolated: { b1: [] as number[], b64: [] as number[] },
  };
  for (let round = 0; round < HOP_ROUNDS; round++) {
    for (const which of ["inline", "isolated"] as const) {
      const engine = engines[which];
      for (const batch of ["b1", "b64"] as const) {
        const n = batch === "b1" ? 1 : 64;
        const input = feeds(n);
        const { warmup, timed } = HOP_ITERATIONS[batch];
        for (let i = 0; i < warmup; i++) await engine.run({ key: "sk_gbr@bench", load, feeds: input });
        for (let i = 0; i < timed; i++) {
          const started = performance.now();
          await engine.run({ key: "sk_gbr@bench", load, feeds: input });
          samples[which][batch].push((performance.now() - started) * 1_000);
        }
      }
    }
  }
  if (isolated.stats().workers?.started !== 1)
    throw new Error("the isolated runs did not all use one worker");
  const latency = (xs: number[]): Latency => ({
    medianUs: median(xs),
    p99Us: quantile(xs, 0.99),
    iterations: xs.length,
  });
  return {
    inline: { b1: latency(samples.inline.b1), b64: latency(samples.inline.b64) },
    isolated: { b1: latency(samples.isolated.b1), b64: latency(samples.isolated.b64) },
  };
}

function hopSection(hop: HopResult): string {
  const rows: string[][] = [];
  for (const batch of ["b1", "b64"] as const) {
    const n = batch === "b1" ? 1 : 64;
    const a = hop.inline[batch];
    const b = hop.isolated[batch];
    rows.push([
      `sk_gbr batch ${n}, median per request`,
      us(a.medianUs),
      us(b.medianUs),
      ratio(b.medianUs, a.medianUs),
      us(b.medianUs - a.medianUs),
    ]);
    rows.push([
      `sk_gbr batch ${n}, p99`,
      us(a.p99Us),
      us(b.p99Us),
      ratio(b.p99Us, a.p99Us),
      us(b.p99Us - a.p99Us),
    ]);
  }
  const b1 = hop.isolated.b1.medianUs - hop.inline.b1.medianUs;
  return [
    HOP_SECTION,
    "",
    `Reproduce this part alone with \`${COMMAND} -- --only hop\` (measured on ${new Date().toISOString().slice(0, 10)}, ${HOP_ROUNDS} interleaved rounds of ${HOP_ITERATIONS.b1.timed.toLocaleString("en-US")} batch-1 and ${HOP_ITERATIONS.b64.timed.toLocaleString("en-US")} batch-64 calls per engine, each timed alone, in one child process; 1-minute load average ${fixed(os.loadavg()[0] ?? Number.NaN, 1)} on ${os.availableParallelism()} cores). The same sk_gbr bytes and feeds go through \`engine.run\` of the inline engine and of the isolating engine with every model sent to its worker thread; both check scikit-learn's predictions first.`,
    "",
    table(
      ["engine.run", "inline", "isolated (worker thread)", "isolated / inline", "the hop (difference)"],
      rows,
    ),
    "",
    `- The hop costs about ${us(b1)} per request at batch 1: a structured clone of the feeds to the worker, a message each way, the outputs transferred back (not copied), and the timer of the deadline that may terminate the worker. Only models whose cost their input does not bound (control flow, outputs sized by input values) pay it; every other model runs inline.`,
  ].join("\n");
}

/** Replaces the hop subsection inside the current Inference section (or appends it there) and writes the section. */
async function writeHopOnly(hop: HopResult): Promise<void> {
  const text = await readFile(BENCHMARKS_DOC, "utf8");
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.trim() === SECTION);
  if (start === -1)
    throw new Error(`docs/benchmarks.md has no "${SECTION}" section: run the whole bench first`);
  const end = lines.findIndex((line, i) => i > start && /^## /.test(line));
  const current = lines.slice(start, end === -1 ? undefined : end);
  const from = current.findIndex((line) => line.trim() === HOP_SECTION);
  const replacement = hopSection(hop).split("\n");
  let merged: string[];
  if (from === -1) {
    const reading = current.findIndex((line) => line.trim() === "### Reading");
    const at = reading === -1 ? current.length : reading;
    merged = [...current.slice(0, at), ...replacement, "", ...current.slice(at)];
  } else {
    const to = current.findIndex((line, i) => i > from && /^###? /.test(line));
    merged = [...current.slice(0, from), ...replacement, "", ...(to === -1 ? [] : current.slice(to))];
  }
  await writeDocSection(SECTION, merged.join("\n"));
}

// ---------------------------------------------------------------------------------------------- report

const loadAtStart = os.loadavg()[0] ?? Number.NaN;

function machine(): string[] {
  const cpus = os.cpus();
  const load = `1-minute load average ${fixed(loadAtStart, 1)} when the bench started, ${fixed(os.loadavg()[0] ?? Number.NaN, 1)} when it ended (this bench's own processes included; the machine is shared: compare ratios, not absolute numbers)`;
  return [
    `- Node ${process.version} on ${os.platform()} ${os.arch()}; CPU: ${cpus[0]?.model ?? "unknown"}, ${cpus.length} cores (available parallelism ${os.availableParallelism()}); ${fixed(os.totalmem() / 2 ** 30, 1)} GiB RAM`,
    "- onnxruntime-web 1.30.0 (`onnxruntime-web/wasm`, ort-wasm-simd-threaded.wasm, numThreads 1, proxy off) and onnxruntime-node 1.30.0 (native CPU provider)",
    `- ${load}`,
  ];
}

/** What naming the version in the path changes: it skips the pointer lookup, but the rate limiter then resolves the serving version to tell whether the request counts as a cold load. */
function namedLine(infer: HttpResult, named: HttpResult): string {
  const saved = infer.cpuUsPerRequest - named.cpuUsPerRequest;
  const what = `Naming the version in the path (${us(named.cpuUsPerRequest)} a request, ${int(named.reqPerSec)} req/s)`;
  return saved >= 0
    ? `${what} skips the pointer lookup: ${us(saved)} (${fixed((saved / infer.cpuUsPerRequest) * 100, 1)}%) of an infer request.`
    : `${what} costs ${us(-saved)} more than leaving it out: the pointer lookup it skips is cheap, while the rate limiter resolves the serving version for it (a request naming a version that is not serving also spends from the cold-load budget).`;
}

/** Whether each goal is met, and by how much it is missed if not. */
/**
 * Where the server's CPU went, from V8 CPU profiles of the bench server under each route's load (`npm run bench --
 * --only http --profile DIR`, then `npx tsx bench/profile.ts DIR/*.cpuprofile`): measured by hand before and after
 * the fast paths and kept here, since a profile run is slower than the timed runs and is not part of them.
 */
const PROFILE_NOTES: string[] = [
  "- Where the CPU went, from V8 CPU profiles of the bench server under each route's load (self time by file, the profiler's own share taken out; `npm run bench -- --only http --routes infer,serve --profile DIR`, summarised by `npx tsx bench/profile.ts DIR/edgeml-*/infer-*.cpuprofile`; 2026-12-01, 1-minute load average 9-19 from the other work on this machine, so shares, not times). **Before the fast paths**, an OIP infer request: writing the response to the socket 12.0% (`writeUtf8String`, the same for any route), onnxruntime 12.5%, reading the 600-byte body through a web `Request` and stream that @hono/node-server builds when `c.req.raw.body` is touched (Hono's `bodyLimit` touches it) 7.9%, zod validation of the OIP body and path 4.9%, the metrics records and usage counters 6.2% (a promise, a closure and freshly built, sorted and URI-encoded series keys per record, three records a request, and a copy of every error body parsed for its code), the pointer store's `structuredClone` per resolution 1.6%; a cached serve: the socket write 14%, the body's web `Request` 10%, zod 2.8%.",
  "- **After** (round 1): the body is read with `c.req.text()` (node-server's direct path) once Content-Length has been checked against the limit; a plain JSON infer body is checked by a hand-written validator that accepts only what zod accepts (src/routes/fast-infer.ts; anything else goes through zod, which answers every refusal), path parameters zod accepted are remembered; metrics records with known labels are merged synchronously into the next write, writes are batched over 10 ms instead of one per request, series and histogram keys are built once per label set, error codes are noted where the error body is made. In the infer profile the body's web `Request` and zod are gone (0.0%); what is left (profiled before the 10 ms write batching) is the socket write 11.5%, onnxruntime 15.9% (engine.run's promise layers, run queue and deadline around `session.run` included), node's HTTP and node-server 26%, the app's own code 18% spread thin (body limit and JSON scan, rate limiter, resolution with its per-request deadline timer, tensor building, response), metrics and usage 6.4%, Hono's routing and compose 5.6%. The cached serve: socket write 18.5%, node HTTP 25%, the forecaster 3-4% self, zod 6.6% (the serve route now also validates the `x-client-id` header, which makes Hono build every request header into an object), metrics and usage 4.3%.",
  "- **Round 2** (profiled at the start: the infer and serve profiles still showed the pointer store's `structuredClone` 0.9% / 1.3%, the per-request `AbortSignal.timeout` and its listener about 1%, and on the serve route zod 3.2% plus Hono's header validator 1.0%). Done: one shared deadline clock (src/inference/deadline-clock.ts: one timer armed for the earliest deadline, a waiter per request in a set) replaces the 30 s `AbortSignal.timeout` per request and the isolating engine's second `setTimeout`, with the same 504 at the same instant; the pointer stores hand out one deep-frozen copy per stored object instead of a `structuredClone` per resolution (a caller's write throws); the serve route has a fast path like infer's (src/routes/fast-serve.ts: the common `{symbol, horizon?, as_of?, interval_level?}` body and a valid or absent `x-client-id`, a strict subset of the zod schema checked by a table and seeded mutations; anything else goes through zod, which answers every refusal); the serving evidence is built once per version's metadata. In the infer profile after it (6 s, `--routes infer`, load average about 2), `structuredClone` and `abort_controller` are gone; the deadline clock's waiters cost 1.7% self (three per infer request: resolution, the registry's run and the engine's run).",
  "- **Round 3**: the profile of an infer request (2026-12-01, a quiet machine) showed tsx's `__name` wrappers at 4.4% self (esbuild's `keepNames`, which tsx forces on: an `Object.defineProperty` on every closure the request path creates). `npm start` now loads its TypeScript through scripts/node-ts.mjs (the same esbuild transform per file, without keepNames), and so do the benchmarks' servers; `__name` is gone from the profile. Also measured then: on this 2-core VM (Firecracker, page-table isolation on) the socket write is the largest item of every route (30% of the infer profile, 55% of the bare route's), and its cost per request grows when the machine is busy (a wake-up of the sleeping client per write), which inflates every route's CPU per request alike; the ratios against the bare route hold better than the times, and the goals are read on a quiet machine.",
  "- What is left: the socket write (10% of the infer profile, as for any route), onnxruntime's JS and wasm (15%), node's HTTP, node-server and Hono (12%), and the app's own code spread thin: the body limit's read, depth scan and `JSON.parse` (4.8%, the largest single item of ours), tensor building (2.4%), metrics and usage (4.5%), the deadline waiters (1.7%), the rate limiter (1.3%), resolution (1.3%). Not done in round 2: the client identity is still computed twice on a serve request without `x-client-id` (the rate limiter's, then the canary's through `c.var.clientIdentity`: a few microseconds), the horizons listing scan and the cached entry's `JSON.parse` per cached forecast, and the three deadline waiters could be one. Under tsx (how this bench runs the server) esbuild's `__name` helper runs for every named closure made per request (about 1.5% of the profile); a built server does not pay it.",
];

function goalLines(bare: HttpResult, infer: HttpResult, serve: HttpResult): string[] {
  const verdict = (r: HttpResult, goal: number) => {
    const x = r.cpuUsPerRequest / bare.cpuUsPerRequest;
    return x <= goal
      ? `**${fixed(x, 2)}× the bare route: the goal (≤ ${goal}×) is met**`
      : `**${fixed(x, 2)}× the bare route: the goal (≤ ${goal}×) is missed by ${us(r.cpuUsPerRequest - goal * bare.cpuUsPerRequest)} a request (${fixed((x / goal - 1) * 100, 0)}% over)**`;
  };
  return [
    `- Goals, in server CPU per request against the bare route (${us(bare.cpuUsPerRequest)}): OIP infer (batch 1, sk_gbr) costs ${us(infer.cpuUsPerRequest)}, ${verdict(infer, GOALS.infer)}; a cached \`POST /api/ml/serve\` costs ${us(serve.cpuUsPerRequest)}, ${verdict(serve, GOALS.serve)}. Both with the default configuration: rate limits counted per client, metrics, usage counters and the prediction log on, tree models inline.`,
  ];
}

function reading(r: RuntimeNumbers, http: HttpResult[], inferRuns: number): string {
  const web = r.measured.web;
  const node = r.measured.node;
  const threaded = r.measured["node-default"];
  const bare = pick(http, "bare");
  const infer = pick(http, "infer");
  const named = pick(http, "named");
  const serve = pick(http, "serve");
  const each = (f: (key: (typeof TREE_MODELS)[number]["key"]) => string) =>
    TREE_MODELS.map((m) => f(m.key)).join(" / ");
  const b1 = each((k) => ratio(web.runs[k].b1.medianUs, node.runs[k].b1.medianUs));
  const b64 = each((k) => ratio(web.runs[k].b64.medianUs, node.runs[k].b64.medianUs));
  const parts = TREE_MODELS.map((m) => {
    const w = split(web, m.key);
    const n = split(node, m.key);
    return `${m.key} ${us(w.perRow)} vs ${us(n.perRow)} per row (${ratio(w.perRow, n.perRow)}) and ${us(w.fixed)} vs ${us(n.fixed)} per call (${ratio(w.fixed, n.fixed)})`;
  });
  const cold = r.cold.web;
  const rest = cold.totalMs - cold.importMs - cold.wasmInstantiateMs;
  const engineB1 = web.engineRuns?.sk_gbr.b1.medianUs ?? Number.NaN;
  const spikes: string[] = [];
  for (const m of [web, node, threaded]) {
    for (const { key } of TREE_MODELS) {
      for (const batch of ["b1", "b64"] as const) {
        const p99 = m.runs[key][batch].p99Us;
        if (p99 > 1_000) spikes.push(`${m.runtime} ${key} batch ${batch === "b1" ? 1 : 64}: ${us(p99)}`);
      }
    }
  }
  const nativeB1 = node.runs.sk_gbr.b1.medianUs;
  const share = (part: number) => `${fixed((part / infer.cpuUsPerRequest) * 100, 1)}%`;
  const lines = [
    `- **Per inference, onnxruntime-web takes ${b1} the time of native onnxruntime-node on one thread at batch 1 (sk_gbr / sk_rf), ${b64} at batch 64.** The ratio is the wasm build's price for the same work on one core: 1.3× means 30% longer inside ORT per call. It is not the price of a request (below).`,
    `- Where it comes from, splitting each median into a per-row and a fixed per-call part (a line through batch 1 and batch 64; web vs node): ${parts.join("; ")}. The per-row part is the tree walk itself, compiled to WebAssembly and run by V8 instead of native code. The per-call part (${fixed((split(web, "sk_gbr").fixed / web.runs.sk_gbr.b1.medianUs) * 100, 0)}% of a batch-1 sk_gbr call on the web, ${fixed((split(node, "sk_gbr").fixed / node.runs.sk_gbr.b1.medianUs) * 100, 0)}% natively) is the trip into ORT: in the web build, copying the input into the wasm heap and the output back out through the JS glue.`,
    `- **Once per process, the wasm build costs ${ms(cold.totalMs)} against ${ms(r.cold.node.totalMs)} native (${ratio(cold.totalMs, r.cold.node.totalMs)}):** ${ms(cold.importMs)} to import the JS, ${ms(cold.wasmInstantiateMs)} in WebAssembly.instantiate (compiling and instantiating the 14 MB .wasm), and the remaining ${ms(rest)} reading the file and running onnxruntime's own start-up inside the fresh instance before the first session exists. Every new process, isolate or serverless instance pays it once; no request after that does. A session from the same bytes in a warm runtime costs ${each((k) => ratio(web.sessionCreateMs[k], node.sessionCreateMs[k]))} native, and the engine keeps sessions warm, so that is paid once per version and process too.`,
    `- p99s of a few microseconds are moved by single GC pauses and by whatever else runs on this shared ${os.cpus().length}-core machine: compare medians first and read p99 as "how spiky". The single-thread native column is the like-for-like comparison (the wasm build runs one thread); ORT's default threading, here ${os.availableParallelism()} cores, gives batch 64 ${each((k) => ratio(threaded.runs[k].b64.medianUs, node.runs[k].b64.medianUs))} and batch 1 ${each((k) => ratio(threaded.runs[k].b1.medianUs, node.runs[k].b1.medianUs))} of the single-thread median, with p99s at batch 64 of ${each((k) => us(threaded.runs[k].b64.p99Us))}.${spikes.length > 0 ? ` Tails in milliseconds (${spikes.join(", ")}) are a process losing its core to other work in the middle of a run, not the runtime's own cost.` : ""}`,
    `- **Over HTTP, the infer route costs the server ${ratio(infer.cpuUsPerRequest, bare.cpuUsPerRequest)} the CPU of a bare Hono route per request** (${us(infer.cpuUsPerRequest)} vs ${us(bare.cpuUsPerRequest)}) and serves ${ratio(infer.reqPerSec, bare.reqPerSec)} its requests per second (${int(infer.reqPerSec)} vs ${int(bare.reqPerSec)}). Of the ${us(infer.cpuUsPerRequest)}, the inference itself (engine.run) is about ${us(engineB1)} (${share(engineB1)}), and running it natively would save about ${us(engineB1 - nativeB1)} (${share(engineB1 - nativeB1)}). The rest is the protocol around the model: HTTP, reading and checking the JSON body, the rate limit, resolving the version, building the tensor, metrics and the response. ${namedLine(infer, named)}`,
  ];
  lines.push(...goalLines(bare, infer, serve));
  lines.push(...PROFILE_NOTES);
  const idle = http.filter((h) => h.cpuBusy < 0.9);
  if (idle.length > 0) {
    lines.push(
      `- The server was on a CPU only ${idle.map((h) => `${fixed(h.cpuBusy * 100, 0)}%`).join(" / ")} of the time during ${idle.length === http.length ? "every run" : `${idle.length} of the ${http.length} runs`}: autocannon shares the ${os.availableParallelism()} cores with it (and so did anything else running, see the load average above), so those req/s are floors, and the CPU time per request is the fairer comparison.`,
    );
  }
  const over = http.filter((h) => h.cpuBusy > 1);
  if (over.length > 0) {
    lines.push(
      `- Above 100% (${over.map((h) => `${fixed(h.cpuBusy * 100, 0)}%`).join(" / ")}), the server process used more than its main thread: libuv's pool (the file reads) and V8's GC threads run beside it.`,
    );
  }
  if (loadAtStart >= 1) {
    lines.push(
      `- The machine was not idle when this run started (1-minute load average ${fixed(loadAtStart, 1)} on ${os.availableParallelism()} cores): the HTTP p99s (${http.map((h) => ms(h.p99Ms)).join(" / ")}) partly measure waiting for a CPU. Rerun on a quiet machine before quoting any tail latency.`,
    );
  }
  lines.push(
    `- Checks: every timed session reproduced scikit-learn's own predictions (to 1e-6) on the rows it was timed on; the model was registered through the admin API with golden rows; the HTTP runs had 0 non-2xx responses and 0 errors, and the server's engine counted ${int(inferRuns)} runs.`,
  );
  return lines.join("\n");
}

function section(r: RuntimeNumbers, hop: HopResult, http: HttpResult[], inferRuns: number): string {
  return [
    SECTION,
    "",
    `Reproduce with \`${COMMAND}\` (\`tsx bench/inference.bench.ts\`, about a minute). It rewrites this section; the numbers below are as measured on ${new Date().toISOString().slice(0, 10)}:`,
    "",
    ...machine(),
    `- Models: the real scikit-learn exports in \`../shared/data/byo-models/\` (sk_gbr_f32: GradientBoostingRegressor, 200 trees of depth 3; sk_rf_f32: RandomForestRegressor, 50 trees of depth 8; both skl2onnx TreeEnsembleRegressor, 30 float32 features), fed the first 1 or 64 rows of their test set.`,
    `- Method: every runtime runs in its own child process. Cold start: a fresh process per measurement, ${COLD_STARTS} per runtime, median. Steady state: warm-up, then each inference timed alone (${ITERATIONS.b1.warmup.toLocaleString("en-US")} + ${ITERATIONS.b1.timed.toLocaleString("en-US")} runs at batch 1, ${ITERATIONS.b64.warmup} + ${ITERATIONS.b64.timed.toLocaleString("en-US")} at batch 64), in ${MEASURE_ROUNDS} rounds interleaving the runtimes; the table shows the median over rounds. The web numbers use the app's engine to bring the runtime up and its session options; onnxruntime-node sessions use intraOpNumThreads = interOpNumThreads = 1 (last column: ORT's default threading).`,
    "",
    "### onnxruntime-web against native onnxruntime-node",
    "",
    runtimeTable(r),
    "",
    "The app's engine around `session.run` (run queue and deadline timer):",
    "",
    engineTable(r),
    "",
    hopSection(hop),
    "",
    "### HTTP: the OIP infer route against a bare route",
    "",
    `One @hono/node-server instance on 127.0.0.1 (its own process) serving the app as \`npm start\` wires it (\`nodeDeps\`: default configuration, embedded adapters on a copy of \`models/\` in a temporary directory, market data from the CSVs), plus \`app.post("/bare", (c) => c.json({ ok: true }))\`. Defaults on: rate limits per client (by socket address, in memory; the public budget raised to ${BENCH_RATE_LIMIT_PUBLIC} so the load is counted but never refused), metrics, usage counters, the prediction log (SQLite), tree models inline. sk_gbr is registered through the admin API and promoted. The cached serve asks the shipped BTC-24h model for \`as_of\` ${SERVE_AS_OF} (inside the CSVs): the check before the runs computes it once, every request after is a prediction-cache hit (the server's usage counters confirm one miss). Load: autocannon, ${HTTP.connections} connections, after a ${HTTP.warmupSeconds} s warm-up per route, ${HTTP.rounds} rounds of ${Math.round(httpSeconds / HTTP.rounds)} s per route interleaving the routes; req/s, CPU and busy are medians over rounds, latency percentiles pool autocannon's per-response times; batch 1 (the first test row).`,
    "",
    httpTable(http),
    "",
    "### Reading",
    "",
    reading(r, http, inferRuns),
    "",
  ].join("\n");
}

const started = performance.now();
const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
/** `--seconds N`: seconds of load per HTTP route (over its rounds); short runs while iterating. */
const httpSeconds = Number(option("--seconds") ?? HTTP.seconds * HTTP.rounds);
/** `--profile DIR`: the bench server writes a V8 CPU profile into DIR (see bench/profile.ts). */
const PROFILE_DIR = option("--profile");
if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
/** `--routes bare,infer,named,serve`: the HTTP routes to load (default all; the docs need all). */
const ROUTES = option("--routes")?.split(",");
if (args[0] === "hop-child") {
  console.log(JSON.stringify(await hopChild()));
  // The isolating engine's worker is unref'd, but the result is out: end here.
  process.exit(0);
}
const only = option("--only");
if (only !== undefined && only !== "hop" && only !== "http")
  throw new Error(`--only takes "hop" or "http", not "${only}"`);
console.log(`# edgeml inference benchmark\n\nCommand: \`${COMMAND}${only ? ` -- --only ${only}` : ""}\`\n`);
const measureHop = () => {
  log("worker hop: inline vs isolated engine, in a child process");
  return runChild<HopResult>("inference.bench.ts", ["hop-child"]);
};
if (only === "hop") {
  const hop = await measureHop();
  console.log(`\n${hopSection(hop)}`);
  await writeHopOnly(hop);
  log(
    `rewrote "${HOP_SECTION}" in docs/benchmarks.md in ${fixed((performance.now() - started) / 1000, 0)} s`,
  );
} else if (only === "http") {
  // Iterating on the request path: the HTTP table alone, printed, the docs left as they are.
  const http = await measureHttp();
  if (ROUTES) for (const r of http.results) console.log(`${r.route}: ${us(r.cpuUsPerRequest)} CPU a request`);
  else {
    console.log(`\n${httpTable(http.results)}`);
    const bare = pick(http.results, "bare");
    console.log(`\n${goalLines(bare, pick(http.results, "infer"), pick(http.results, "serve")).join("\n")}`);
  }
  log(
    `load average ${os
      .loadavg()
      .map((l) => fixed(l, 2))
      .join(" ")}`,
  );
} else {
  const runtimes = await measureRuntimes();
  const hop = await measureHop();
  const http = await measureHttp();
  const body = section(runtimes, hop, http.results, http.inferRuns);
  console.log(`\n${body}`);
  await writeDocSection(SECTION, body);
  log(
    `wrote the "${SECTION}" section of docs/benchmarks.md in ${fixed((performance.now() - started) / 1000, 0)} s`,
  );
}
