/**
 * Brings onnxruntime-web up from a precompiled `WebAssembly.Module`, for runtimes that forbid compiling wasm from
 * bytes (Vercel Edge, Cloudflare workerd: "Wasm code generation disallowed by embedder").
 *
 * onnxruntime-web has no supported way to take a module. What it does have (1.30, `onnxruntime-web/wasm`): given
 * `env.wasm.wasmBinary`, its embedded Emscripten glue skips every fetch and calls
 * `WebAssembly.instantiate(new Uint8Array(wasmBinary), imports)` exactly once. We give it an empty buffer, and while
 * the runtime starts (and only then) answer that single call with `WebAssembly.instantiate(module, imports)`, which
 * instantiates without compiling. The original function is restored afterwards, whatever happens.
 *
 * This leans on ORT internals: test/runtime/wasm-loader.test.ts pins the behaviour (one 0-byte call, answered with
 * our module, nothing compiled), and the runtime suites run it under strict code generation. If an upgrade of
 * onnxruntime-web changes how the glue instantiates, init fails with the message below rather than silently
 * compiling from bytes.
 */

import { errorMessage } from "../errors.js";
import type { RuntimeInitializer } from "./engine.js";
import { identityModel } from "./identity-model.js";

/** What one precompiled start-up did, for tests and the cold-start benchmark. */
export interface PrecompiledWasmReport {
  /** Calls of WebAssembly.instantiate answered with the precompiled module (must be 1). */
  answered: number;
  /** Other calls of WebAssembly.instantiate during start-up, passed through (must be 0 on the edge). */
  passedThrough: number;
  /** Time to instantiate the precompiled module, ms. */
  instantiateMs: number;
}

type Instantiate = typeof WebAssembly.instantiate;

const isEmptyBuffer = (source: unknown): boolean =>
  (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) && source.byteLength === 0;

/**
 * A RuntimeInitializer for createOrtEngine that starts onnxruntime-web from `module` (the
 * `ort-wasm-simd-threaded.wasm` of the installed onnxruntime-web, imported with `?module` on Vercel or as a
 * CompiledWasm module on workerd). It must be the first thing to start onnxruntime-web in its realm: a runtime
 * already up never asks for its wasm again, and the initializer then fails rather than pretend.
 */
export function precompiledWasm(
  module: WebAssembly.Module,
  onReport?: (report: PrecompiledWasmReport) => void,
): RuntimeInitializer {
  return async (ort) => {
    const report: PrecompiledWasmReport = { answered: 0, passedThrough: 0, instantiateMs: 0 };
    // An empty binary: ORT then neither fetches nor locates its wasm, and hands these 0 bytes to instantiate.
    ort.env.wasm.wasmBinary = new Uint8Array(0);
    const original: Instantiate = WebAssembly.instantiate;
    const answer = async (imports: WebAssembly.Imports | undefined) => {
      const started = performance.now();
      const instance = await original(module, imports);
      report.instantiateMs = performance.now() - started;
      // The glue expects the bytes overload's result shape.
      return { instance, module };
    };
    const patched = ((source: unknown, imports?: WebAssembly.Imports) => {
      if (report.answered === 0 && isEmptyBuffer(source)) {
        report.answered += 1;
        return answer(imports);
      }
      report.passedThrough += 1;
      return (original as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>).call(
        WebAssembly,
        source,
        imports,
      );
    }) as Instantiate;
    WebAssembly.instantiate = patched;
    try {
      // ORT instantiates its wasm on the first session; a one-node model makes that happen now, under the patch.
      const session = await ort.InferenceSession.create(identityModel());
      await session.release();
    } catch (error) {
      const reason = errorMessage(error);
      throw new Error(
        `edgeml: onnxruntime-web did not start from the precompiled wasm module (${reason}); ` +
          "check that wasm/ort-wasm-simd-threaded.wasm comes from the installed onnxruntime-web (npm run build:edge)",
        { cause: error },
      );
    } finally {
      WebAssembly.instantiate = original;
    }
    onReport?.(report);
    if (report.answered !== 1) {
      throw new Error(
        "edgeml: onnxruntime-web started without asking for its wasm through WebAssembly.instantiate(<0 bytes>); " +
          "either it was already running in this realm, or its glue changed (see src/inference/precompiled-wasm.ts)",
      );
    }
  };
}
