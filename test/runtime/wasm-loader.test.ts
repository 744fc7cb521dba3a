import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-web/wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installedOrtWasm } from "../../scripts/edge/embed.js";
import { createOrtEngine } from "../../src/inference/engine.js";
import { type PrecompiledWasmReport, precompiledWasm } from "../../src/inference/precompiled-wasm.js";
import { BYO_MODELS } from "../support/paths.js";

/**
 * Guards the precompiled-wasm trick (src/inference/precompiled-wasm.ts), which leans on onnxruntime-web internals: with an empty
 * `wasmBinary`, its glue asks for the wasm through exactly one `WebAssembly.instantiate(<0 bytes>, imports)`.
 * This file's process has not started onnxruntime-web before (vitest runs each file in a fresh fork), so it sees the
 * runtime come up exactly as an edge isolate does. If an upgrade changes the glue, this fails first.
 */
describe("src/inference/precompiled-wasm.ts: onnxruntime-web from a precompiled WebAssembly.Module", () => {
  const calls = { compile: 0, compileStreaming: 0, instantiateStreaming: 0, instantiate: [] as unknown[] };
  const saved = {
    compile: WebAssembly.compile,
    compileStreaming: WebAssembly.compileStreaming,
    instantiate: WebAssembly.instantiate,
    instantiateStreaming: WebAssembly.instantiateStreaming,
  };
  let module: WebAssembly.Module;
  let report: PrecompiledWasmReport | undefined;
  let spiedInstantiate: typeof WebAssembly.instantiate;
  const engine = () =>
    createOrtEngine({
      maxSessions: 4,
      maxSessionBytes: 1 << 30,
      timeoutMs: 30_000,
      initialize: precompiledWasm(module, (r) => {
        report = r;
      }),
    });
  let first: ReturnType<typeof engine>;

  beforeAll(async () => {
    // Compiled before the spies go in, as the platform compiles it at deploy time.
    module = await WebAssembly.compile(await readFile(installedOrtWasm()));
    WebAssembly.compile = ((...args: Parameters<typeof WebAssembly.compile>) => {
      calls.compile += 1;
      return saved.compile(...args);
    }) as typeof WebAssembly.compile;
    WebAssembly.compileStreaming = ((...args: Parameters<typeof WebAssembly.compileStreaming>) => {
      calls.compileStreaming += 1;
      return saved.compileStreaming(...args);
    }) as typeof WebAssembly.compileStreaming;
    WebAssembly.instantiateStreaming = ((...args: Parameters<typeof WebAssembly.instantiateStreaming>) => {
      calls.instantiateStreaming += 1;
      return saved.instantiateStreaming(...args);
    }) as typeof WebAssembly.instantiateStreaming;
    spiedInstantiate = ((source: unknown, imports?: WebAssembly.Imports) => {
      calls.instantiate.push(source);
      return (saved.instantiate as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>)(
        source,
        imports,
      );
    }) as typeof WebAssembly.instantiate;
    WebAssembly.instantiate = spiedInstantiate;
    first = engine();
    await first.init();
  });
  afterAll(() => {
    Object.assign(WebAssembly, saved);
  });

  it("answers the glue's single WebAssembly.instantiate(<0 bytes>) with the module, and compiles nothing", () => {
    expect(report).toMatchObject({ answered: 1, passedThrough: 0 });
    // What reached the real instantiate: our module, once; never bytes.
    expect(calls.instantiate).toEqual([module]);
    expect(calls).toMatchObject({ compile: 0, compileStreaming: 0, instantiateStreaming: 0 });
    expect(ort.env.wasm.wasmBinary).toEqual(new Uint8Array(0));
  });

  it("restores WebAssembly.instantiate once the runtime is up", () => {
    expect(WebAssembly.instantiate).toBe(spiedInstantiate);
  });

  it("serves a model: scikit-learn's predictions from the precompiled runtime", async () => {
    const spec = JSON.parse(await readFile(join(BYO_MODELS, "sk_gbr_f32.json"), "utf8"));
    const bytes = new Uint8Array(await readFile(join(BYO_MODELS, spec.model)));
    const width = spec.input.shape[1];
    const out = await first.run({
      key: "sk_gbr_f32@1",
      load: async () => bytes,
      feeds: {
        [spec.input.name]: new ort.Tensor("float32", Float32Array.from(spec.input.data.slice(0, 4 * width)), [
          4,
          width,
        ]),
      },
    });
    const predicted = Array.from(Object.values(out)[0]?.data as Float32Array);
    predicted.forEach((value, i) => {
      expect(value).toBeCloseTo(spec.expected_sklearn_predict[i], 5);
    });
    expect(calls.compile).toBe(0);
  });

  it("refuses to pretend when the runtime is already up in this realm (it would never ask for its wasm)", async () => {
    await expect(engine().init()).rejects.toThrow(/started without asking for its wasm.*already running/);
  });
});
