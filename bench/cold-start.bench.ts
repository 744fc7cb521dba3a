/**
 * `npm run bench:cold-start` (`tsx bench/cold-start.bench.ts [samples]`, default 5): the cold start of onnxruntime-web
 * in each runtime the app serves from: Node (as `npm start`), Vercel Edge (edge-runtime, strict code generation),
 * Vercel Node.js (the function's bundle in a fresh Node 24 process) and Cloudflare Workers (workerd through
 * miniflare). The Vercel and Cloudflare rows are local proxies of the platforms, not measurements on them.
 *
 * Every sample is a fresh runtime: a new Node process, a new process holding a new edge-runtime sandbox, a new
 * workerd process. Two measurements per sample:
 * - the probe (bench/cold-start/probe.ts) times the phases inside the runtime: onnxruntime-web's start, a session of
 *   sk_gbr (the scikit-learn GradientBoostingRegressor export, 200 trees), its first and a warm inference;
 * - the app: the real bundle (or the Node app), from loaded to the first `POST /v2/models/sk_gbr/infer` answered.
 * Medians are printed as a table and written to the "## Cold start" section of docs/benchmarks.md (the rest of the
 * file is kept).
 */

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { bundleEdge, bundleVercelNode, edgeRuntimeScript, OUTPUTS } from "../scripts/edge/bundle.js";
import { readRegistryDir } from "../scripts/edge/embed.js";
import { startMiniflare } from "../scripts/edge/runtimes.js";
import { writeNodeFunction } from "../scripts/vercel/node-launcher.js";
import { createApp } from "../src/app.js";
import { createOrtEngine } from "../src/inference/engine.js";
import { silentLogger } from "../src/logger.js";
import { createCsvMarketData } from "../src/market/node/csv.js";
import { createFsArtifactStore } from "../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../src/storage/node/json-file-pointers.js";
import type { ProbeResult } from "./cold-start/probe.js";
import { writeDocSection } from "./doc-section.js";
import { loadCase, MARKET_DATA, median, REPO_ROOT, runChild } from "./support.js";

const SAMPLES = Number(process.argv[2] ?? 5);
const MODEL = "sk_gbr";
const COMMAND = "npm run bench:cold-start";
const SECTION = "## Cold start";

interface Sample {
  /** Loading the code: module import (Node), wasm compile + script evaluation (edge-runtime), worker load (workerd). */
  loadMs: number;
  compileMs: number | null;
  /** The runtime's phases; none for Vercel Node.js, whose engine is Node's (the Node 24 row). */
  probe: ProbeResult | null;
  /** From loaded to the first infer response of the app. */
  firstInferMs: number;
  /** The app's own report of its cold start (x-edgeml-init-ms): the edge handler's, which Vercel Node.js shares. */
  appInitMs: number | null;
}

const log = (message: string) => console.error(message);

/** A registry with sk_gbr registered through the app (metadata, sha256, signature), as the bundles embed it. */
async function registryWithModel(dir: string) {
  const models = join(dir, "models");
  const { registry } = createApp({
    artifacts: createFsArtifactStore(models),
    pointers: createJsonFilePointerStore(join(models, "pointers.json")),
    engine: createOrtEngine({ maxSessions: 2, maxSessionBytes: 1 << 30, timeoutMs: 30_000 }),
    market: createCsvMarketData({ dir: MARKET_DATA }),
    logger: silentLogger,
  });
  const { bytes, spec } = await loadCase("sk_gbr_f32.json");
  await registry.register(MODEL, bytes, { description: "cold-start benchmark: sk_gbr_f32" });
  return { dir: models, features: spec.input.shape[1] };
}

function inferBody(features: number): string {
  return JSON.stringify({
    inputs: [{ name: "X", datatype: "FP32", shape: [1, features], data: Array(features).fill(0.01) }],
  });
}

async function nodeSample(registryDir: string): Promise<Sample> {
  const probe = await runChild<ProbeResult & { loadMs: number }>("cold-start/node-child.ts", [
    "probe",
    registryDir,
    MODEL,
  ]);
  const app = await runChild<{ loadMs: number; firstInferMs: number }>("cold-start/node-child.ts", [
    "app",
    registryDir,
    MODEL,
  ]);
  return { loadMs: probe.loadMs, compileMs: null, probe, firstInferMs: app.firstInferMs, appInitMs: null };
}

async function edgeRuntimeSample(probeFile: string, appFile: string, body: string): Promise<Sample> {
  type Child = {
    compileMs: number;
    evaluateMs: number;
    firstResponseMs: number;
    initHeaderMs: number | null;
    body: unknown;
  };
  const probe = await runChild<Child>("cold-start/edge-runtime-child.ts", [probeFile, "/probe"]);
  const app = await runChild<Child>("cold-start/edge-runtime-child.ts", [
    appFile,
    `/v2/models/${MODEL}/infer`,
    body,
  ]);
  return {
    loadMs: probe.compileMs + probe.evaluateMs,
    compileMs: probe.compileMs,
    probe: probe.body as ProbeResult,
    firstInferMs: app.firstResponseMs,
    appInitMs: app.initHeaderMs,
  };
}

/**
 * The Vercel Node.js function: its entry imported in a fresh Node process (no loader), then its POST handler called
 * as Vercel's launcher calls a Web handler (vercel-node-child.mjs).
 */
function vercelNodeSample(fnDir: string, body: string): Promise<Sample> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, "bench/cold-start/vercel-node-child.mjs"), fnDir, `/v2/models/${MODEL}/infer`, body],
      // Only what the function is given: no store's variable of this process switches on a production adapter.
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
    });
    child.on("error", fail);
    child.on("close", (code) => {
      if (code !== 0) return fail(new Error(`vercel-node-child exited with ${code}: ${out}`));
      const result = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as {
        loadMs: number;
        firstResponseMs: number;
        initHeaderMs: number;
      };
      done({
        loadMs: result.loadMs,
        compileMs: null,
        probe: null,
        firstInferMs: result.firstResponseMs,
        appInitMs: result.initHeaderMs,
      });
    });
  });
}

async function miniflareSample(probeBundle: string, appBundle: string, body: string): Promise<Sample> {
  const t0 = performance.now();
  const probeWorker = await startMiniflare({ bundle: probeBundle });
  const loadMs = performance.now() - t0;
  let probe: ProbeResult;
  try {
    const response = await probeWorker.fetch("/probe");
    if (response.status !== 200)
      throw new Error(`probe answered ${response.status}: ${await response.text()}`);
    probe = (await response.json()) as ProbeResult;
  } finally {
    await probeWorker.close();
  }
  const appWorker = await startMiniflare({ bundle: appBundle });
  try {
    const t1 = performance.now();
    const response = await appWorker.fetch(`/v2/models/${MODEL}/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const firstInferMs = performance.now() - t1;
    if (response.status !== 200)
      throw new Error(`infer answered ${response.status}: ${await response.text()}`);
    return {
      loadMs,
      compileMs: null,
      probe,
      firstInferMs,
      appInitMs: Number(response.headers.get("x-edgeml-init-ms")),
    };
  } finally {
    await appWorker.close();
  }
}

const ms = (value: number | null | undefined) =>
  value === null || value === undefined || Number.isNaN(value)
    ? "–"
    : value < 10
      ? value.toFixed(2)
      : value.toFixed(1);
const med = (samples: Sample[], pick: (s: Sample) => number | null) => {
  const values = samples.map(pick).filter((v): v is number => v !== null && Number.isFinite(v));
  return values.length > 0 ? median(values) : null;
};

function table(results: { runtime: string; samples: Sample[] }[]): string {
  const lines = [
    "| runtime | load code (of which wasm compile) | onnxruntime-web init (of which instantiate) | session create | first inference | warm inference | app: first infer response after load (app's own init report) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const { runtime, samples: s } of results) {
    const compile = med(s, (x) => x.compileMs);
    const instantiate = med(s, (x) => x.probe?.instantiateMs ?? null);
    const appInit = med(s, (x) => x.appInitMs);
    lines.push(
      `| ${runtime} | ${ms(med(s, (x) => x.loadMs))}${compile !== null ? ` (${ms(compile)})` : ""} | ${ms(med(s, (x) => x.probe?.ortInitMs ?? null))}${instantiate !== null ? ` (${ms(instantiate)})` : ""} | ${ms(med(s, (x) => x.probe?.sessionMs ?? null))} | ${ms(med(s, (x) => x.probe?.firstRunMs ?? null))} | ${ms(med(s, (x) => x.probe?.warmRunMs ?? null))} | ${ms(med(s, (x) => x.firstInferMs))}${appInit !== null ? ` (${ms(appInit)})` : ""} |`,
    );
  }
  return lines.join("\n");
}

function section(
  results: { runtime: string; samples: Sample[] }[],
  seconds: number,
  loads: [number, number],
): string {
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  return [
    SECTION,
    "",
    `Reproduce with \`${COMMAND}\` (\`tsx bench/cold-start.bench.ts [samples]\`, about ${Math.ceil(seconds / 10) * 10} s). It rewrites this section; measured on ${new Date().toISOString().slice(0, 10)}, ${cpu}, ${cpus().length} cores, Node ${process.versions.node}; 1-minute load average ${loads[0].toFixed(1)} when it started, ${loads[1].toFixed(1)} when it ended (read the rows against each other: the runtimes are sampled in turn); median of ${SAMPLES} samples, each in a fresh runtime (a new process, a new edge-runtime sandbox in a new process, a new workerd process). All times in ms. The Vercel and Cloudflare rows are **local proxies** of those platforms (their runtimes or launchers run here), not measurements on them: a platform adds its own scheduling, network and instance start.`,
    "",
    table(results),
    "",
    "- **load code**: Node: importing onnxruntime-web and the probe; Vercel Edge: compiling the 14 MB wasm (what Vercel does when it deploys a `?module` import) and evaluating the bundle in a strict sandbox; Vercel Node.js: importing the function's entry (api/[[...route]].js, its bundle dist/vercel/node.js with the models, onnxruntime-web's JS) in a fresh Node 24 process, without the process start; workerd: starting a workerd process with the worker and its CompiledWasm module (process start included, which a Cloudflare isolate does not pay).",
    "- **Vercel Node.js** (`EDGEML_VERCEL_RUNTIME=nodejs`): its phases are not measured apart (–): on its first request it compiles the wasm from onnxruntime-web's file in node_modules, then starts onnxruntime-web from that module as the edge does; its app column is the function's POST handler called with a Request as Vercel's Node launcher calls it (compile included), in parentheses the `x-edgeml-init-ms` it reports.",
    "- **onnxruntime-web init**: from nothing to a runtime that has created (and released) a one-node session. On Node it includes compiling the wasm from bytes; on the edge it instantiates the precompiled module (src/inference/precompiled-wasm.ts), in parentheses.",
    "- **session create / first / warm inference**: sk_gbr (scikit-learn GradientBoostingRegressor, 200 trees, depth 3, float32, 30 features), batch 1.",
    "- **app**: the app's first `POST /v2/models/sk_gbr/infer` after the code is loaded: app build, onnxruntime-web init, loading and verifying the version (sha256), session, inference, JSON. In parentheses the `x-edgeml-init-ms` the edge handler reports on that response (app build + onnxruntime-web init).",
    "- V8 compiles wasm lazily: `WebAssembly.compile` validates the 14 MB and returns; each function is compiled on its first call, which falls inside onnxruntime-web's init. That init is the cold start everywhere; session create and the first inference add a few ms.",
    "- workerd's clock moves in whole milliseconds and stands still during some synchronous work (a Spectre mitigation), so its in-runtime phase times are coarse; its app column is timed from outside the worker.",
  ].join("\n");
}

const started = performance.now();
const loadAtStart = loadavg()[0] ?? 0;
const work = await mkdtemp(join(tmpdir(), "edgeml-cold-start-"));
let vercelNode: { dir: string } | undefined;
try {
  const { dir, features } = await registryWithModel(work);
  const registry = await readRegistryDir(dir);
  const body = inferBody(features);
  const probeEntry = join(REPO_ROOT, "bench/cold-start/edge-probe.ts");
  const bundles = {
    vercelProbe: await bundleEdge("vercel", { registry, entry: probeEntry }),
    vercelApp: await bundleEdge("vercel", { registry }),
    workerdProbe: await bundleEdge("workerd", { registry, entry: probeEntry }),
    workerdApp: await bundleEdge("workerd", { registry }),
  };
  const probeFile = join(work, "vercel-probe.json");
  const appFile = join(work, "vercel-app.json");
  await writeFile(
    probeFile,
    JSON.stringify(await edgeRuntimeScript(bundles.vercelProbe, OUTPUTS.vercel.file)),
  );
  await writeFile(appFile, JSON.stringify(await edgeRuntimeScript(bundles.vercelApp, OUTPUTS.vercel.file)));
  vercelNode = await writeNodeFunction(await bundleVercelNode({ registry }));

  const results: { runtime: string; samples: Sample[] }[] = [
    { runtime: "Node 24 (`npm start`)", samples: [] },
    { runtime: "Vercel Edge (local proxy: edge-runtime, strict)", samples: [] },
    { runtime: "Vercel Node.js (local proxy: the function in Node 24)", samples: [] },
    { runtime: "Cloudflare Workers (local proxy: workerd, miniflare)", samples: [] },
  ];
  for (let i = 0; i < SAMPLES; i++) {
    log(`sample ${i + 1}/${SAMPLES}`);
    // Interleaved, so that a slow moment of the machine does not fall on one runtime only.
    results[0]?.samples.push(await nodeSample(dir));
    results[1]?.samples.push(await edgeRuntimeSample(probeFile, appFile, body));
    results[2]?.samples.push(await vercelNodeSample(vercelNode.dir, body));
    results[3]?.samples.push(await miniflareSample(bundles.workerdProbe, bundles.workerdApp, body));
  }
  const outputs = new Set(
    results.flatMap((r) => r.samples.flatMap((s) => (s.probe ? [s.probe.output] : []))),
  );
  if (outputs.size !== 1)
    throw new Error(`the runtimes disagree on sk_gbr's output: ${[...outputs].join(", ")}`);

  const text = section(results, (performance.now() - started) / 1000, [loadAtStart, loadavg()[0] ?? 0]);
  console.log(text);
  await writeDocSection(SECTION, text);
  log(
    `wrote the "${SECTION}" section of docs/benchmarks.md in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
  if (vercelNode) await rm(vercelNode.dir, { recursive: true, force: true });
}
