/**
 * One runtime, measured in its own process so that the two onnxruntimes never share a heap, a JIT or a core.
 *
 *   tsx bench/runtime.ts cold web|node                  one cold start: import + runtime init (+ first model session)
 *   tsx bench/runtime.ts measure web|node|node-default  session creation and per-inference latency
 *
 * The last stdout line is the JSON result; bench/inference.bench.ts spawns this file and reads it.
 *
 * web: onnxruntime-web's wasm build brought up by the app's own engine (src/inference/engine.ts: one thread, no
 * worker proxy), sessions created with the engine's options; the engine's run path is measured as well.
 * node: onnxruntime-node (native) with intraOpNumThreads = interOpNumThreads = 1; node-default leaves ORT's threading.
 */
import type * as OrtWeb from "onnxruntime-web/wasm";
import { identityModel } from "../src/inference/identity-model.js";
import {
  type ColdResult,
  ITERATIONS,
  type Latency,
  type LoadedCase,
  loadCase,
  type MeasureResult,
  median,
  quantile,
  type RuntimeName,
  TREE_MODELS,
  type TreeModelKey,
} from "./support.js";

type Ort = typeof OrtWeb;
type Tensor = OrtWeb.Tensor;
type SessionOptions = OrtWeb.InferenceSession.SessionOptions;

/** What the measurements need from a session, whichever runtime made it. */
interface Runner {
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

const SINGLE_THREAD: SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
const WEB_SESSION: SessionOptions = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };

function nodeSessionOptions(runtime: RuntimeName): SessionOptions {
  return { graphOptimizationLevel: "all", ...(runtime === "node" ? SINGLE_THREAD : {}) };
}

async function importOrt(runtime: RuntimeName): Promise<Ort> {
  // onnxruntime-node exposes the same onnxruntime-common API as onnxruntime-web.
  return runtime === "web"
    ? await import("onnxruntime-web/wasm")
    : ((await import("onnxruntime-node")) as unknown as Ort);
}

const elapsedMs = (since: number) => performance.now() - since;

async function cold(runtime: RuntimeName): Promise<ColdResult> {
  const identity = identityModel(); // encoded before the clock starts: it is not runtime cost
  const gbr = await loadCase("sk_gbr_f32.json");
  let started = performance.now();
  const ort = await importOrt(runtime);
  const importMs = elapsedMs(started);
  let create: (bytes: Uint8Array) => Promise<Runner>;
  let initMs: number;
  let wasmInstantiateMs: number | null = null;
  if (runtime === "web") {
    const { createOrtEngine } = await import("../src/inference/engine.js");
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 30, timeoutMs: 30_000 });
    // Times onnxruntime's one WebAssembly.instantiate (compiling + instantiating the .wasm) inside the init.
    const original = WebAssembly.instantiate;
    const timed = async (...args: Parameters<typeof WebAssembly.instantiate>) => {
      const at = performance.now();
      try {
        return await (original as (...a: typeof args) => Promise<unknown>).apply(WebAssembly, args);
      } finally {
        wasmInstantiateMs = (wasmInstantiateMs ?? 0) + elapsedMs(at);
      }
    };
    WebAssembly.instantiate = timed as typeof WebAssembly.instantiate;
    started = performance.now();
    try {
      await engine.init(); // numThreads 1, proxy off, then a one-node session (identityModel) brings the wasm up
    } finally {
      WebAssembly.instantiate = original;
    }
    initMs = elapsedMs(started);
    create = (bytes) => ort.InferenceSession.create(bytes, WEB_SESSION);
  } else {
    const options = nodeSessionOptions(runtime);
    started = performance.now();
    const warmup = await ort.InferenceSession.create(identity, options);
    await warmup.release();
    initMs = elapsedMs(started);
    create = (bytes) => ort.InferenceSession.create(bytes, options);
  }
  started = performance.now();
  const session = await create(gbr.bytes);
  const firstSessionMs = elapsedMs(started);
  await session.release();
  return { runtime, importMs, initMs, wasmInstantiateMs, firstSessionMs };
}

async function warm(iterations: number, once: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < iterations; i++) await once();
}

/** Each call timed alone, after a collection (when the child runs with --expose-gc) and a short re-warm. */
async function time(iterations: { timed: number }, once: () => Promise<unknown>): Promise<Latency> {
  (globalThis as { gc?: () => void }).gc?.();
  await warm(Math.ceil(iterations.timed / 10), once);
  const samples = new Array<number>(iterations.timed);
  for (let i = 0; i < iterations.timed; i++) {
    const started = performance.now();
    await once();
    samples[i] = (performance.now() - started) * 1_000;
  }
  return { medianUs: median(samples), p99Us: quantile(samples, 0.99), iterations: iterations.timed };
}

/** Fails loudly unless the session reproduces scikit-learn's own predictions on the rows it is timed on. */
function checkOutputs(c: LoadedCase, n: number, outputs: Record<string, Tensor>, runtime: string): void {
  const out = outputs[c.spec.output_name];
  if (!out) throw new Error(`${c.spec.model} on ${runtime}: no output '${c.spec.output_name}'`);
  const data = out.data as Float32Array;
  if (data.length !== n)
    throw new Error(`${c.spec.model} on ${runtime}: ${data.length} outputs for ${n} rows`);
  for (let i = 0; i < n; i++) {
    const want = c.spec.expected_sklearn_predict[i] as number;
    if (Math.abs((data[i] as number) - want) > 1e-6) {
      throw new Error(`${c.spec.model} on ${runtime}: row ${i} gives ${data[i]}, scikit-learn says ${want}`);
    }
  }
}

async function measure(runtime: RuntimeName): Promise<MeasureResult> {
  const ort = await importOrt(runtime);
  let create: (bytes: Uint8Array) => Promise<Runner>;
  let engine: import("../src/inference/engine.js").InferenceEngine | undefined;
  if (runtime === "web") {
    const { createOrtEngine } = await import("../src/inference/engine.js");
    engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 30, timeoutMs: 30_000 });
    await engine.init();
    // The engine's own session options; `ort` is the very module instance the engine initialised.
    create = (bytes) => ort.InferenceSession.create(bytes, WEB_SESSION);
  } else {
    const options = nodeSessionOptions(runtime);
    create = (bytes) => ort.InferenceSession.create(bytes, options);
  }

  const cases = await Promise.all(TREE_MODELS.map((m) => loadCase(m.file)));

  // 1. Session creation, each model in turn, every session released.
  const sessionCreateMs = {} as Record<TreeModelKey, number>;
  for (const [i, model] of TREE_MODELS.entries()) {
    const c = cases[i] as LoadedCase;
    const creations: number[] = [];
    const { warmup, timed } = ITERATIONS.sessionCreate;
    for (let k = 0; k < warmup + timed; k++) {
      const started = performance.now();
      const s = await create(c.bytes);
      if (k >= warmup) creations.push(elapsedMs(started));
      await s.release();
    }
    sessionCreateMs[model.key] = median(creations);
  }

  // 2. One session per model, checked against scikit-learn, then everything warmed up before anything is timed:
  // timing a model right after the session-creation churn (or before V8 has tiered up) inflates its tail.
  type Case = { key: TreeModelKey; run: (n: 1 | 64) => () => Promise<unknown>; release: () => Promise<void> };
  const prepared: Case[] = [];
  const enginePrepared: Case[] = [];
  for (const [i, model] of TREE_MODELS.entries()) {
    const c = cases[i] as LoadedCase;
    const feeds = {
      1: { [c.spec.input.name]: new ort.Tensor("float32", c.batch(1), [1, c.features]) },
      64: { [c.spec.input.name]: new ort.Tensor("float32", c.batch(64), [64, c.features]) },
    };
    const session = await create(c.bytes);
    checkOutputs(c, 1, await session.run(feeds[1]), runtime);
    checkOutputs(c, 64, await session.run(feeds[64]), runtime);
    prepared.push({
      key: model.key,
      run: (n) => () => session.run(feeds[n]),
      release: () => session.release(),
    });
    if (engine) {
      const e = engine;
      const key = `${model.key}@bench`;
      const load = async () => c.bytes;
      checkOutputs(c, 64, await e.run({ key, load, feeds: feeds[64] }), "web engine");
      enginePrepared.push({
        key: model.key,
        run: (n) => () => e.run({ key, load, feeds: feeds[n] }),
        release: async () => e.evict(key),
      });
    }
  }
  const all = [...prepared, ...enginePrepared];
  for (const p of all) {
    await warm(ITERATIONS.b1.warmup, p.run(1));
    await warm(ITERATIONS.b64.warmup, p.run(64));
  }

  // 3. Timed, one model and batch size at a time.
  const timeAll = async (list: Case[]) => {
    const out = {} as Record<TreeModelKey, { b1: Latency; b64: Latency }>;
    for (const p of list)
      out[p.key] = { b1: await time(ITERATIONS.b1, p.run(1)), b64: await time(ITERATIONS.b64, p.run(64)) };
    return out;
  };
  const runs = await timeAll(prepared);
  const engineRuns = await timeAll(enginePrepared);
  for (const p of all) await p.release();
  return {
    runtime,
    threads:
      runtime === "web"
        ? "wasm, numThreads 1, proxy off"
        : runtime === "node"
          ? "intraOp 1, interOp 1"
          : "ORT default threading",
    sessionCreateMs,
    sessionCreations: ITERATIONS.sessionCreate.timed,
    runs,
    ...(engine && { engineRuns }),
  };
}

const [mode, which] = process.argv.slice(2);
if ((mode !== "cold" && mode !== "measure") || !["web", "node", "node-default"].includes(which ?? "")) {
  console.error("usage: tsx bench/runtime.ts cold|measure web|node|node-default");
  process.exit(2);
}
const runtime = which as RuntimeName;
const result = mode === "cold" ? await cold(runtime) : await measure(runtime);
console.log(JSON.stringify(result));
// onnxruntime-node keeps native threads alive; the result is out, so end here.
process.exit(0);
