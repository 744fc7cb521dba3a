/**
 * The phases of an onnxruntime-web cold start, timed inside the runtime under test: the runtime's start (from a
 * precompiled module on the edge, from bytes on Node), a session of the model, its first and a warm inference.
 */
import * as ort from "onnxruntime-web/wasm";
import { identityModel } from "../../src/inference/identity-model.js";
import { type PrecompiledWasmReport, precompiledWasm } from "../../src/inference/precompiled-wasm.js";

export interface ProbeResult {
  /** onnxruntime-web up: env set, wasm instantiated, its warm-up session created and released. */
  ortInitMs: number;
  /** Of which WebAssembly.instantiate of the precompiled module (edge only). */
  instantiateMs: number | null;
  sessionMs: number;
  firstRunMs: number;
  warmRunMs: number;
  /** The first output value, so that a broken run cannot pass for a fast one. */
  output: number;
}

export async function probe(
  model: Uint8Array,
  features: number,
  wasm?: WebAssembly.Module,
): Promise<ProbeResult> {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  let report: PrecompiledWasmReport | undefined;
  const t0 = performance.now();
  if (wasm) {
    await precompiledWasm(wasm, (r) => {
      report = r;
    })(ort);
  } else {
    const warmup = await ort.InferenceSession.create(identityModel());
    await warmup.release();
  }
  const t1 = performance.now();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const t2 = performance.now();
  const input = new ort.Tensor(
    "float32",
    Float32Array.from({ length: features }, (_, i) => Math.sin(i) / 100),
    [1, features],
  );
  const feeds = { [session.inputNames[0] as string]: input };
  const first = await session.run(feeds);
  const t3 = performance.now();
  await session.run(feeds);
  const t4 = performance.now();
  return {
    ortInitMs: t1 - t0,
    instantiateMs: report?.instantiateMs ?? null,
    sessionMs: t2 - t1,
    firstRunMs: t3 - t2,
    warmRunMs: t4 - t3,
    output: Number(Object.values(first)[0]?.data[0]),
  };
}
