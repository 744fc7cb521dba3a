import { InferenceSession, Tensor } from "onnxruntime-web/wasm";
import { describe, expect, it, vi } from "vitest";
import { createOrtEngine, withDeadline } from "../../src/inference/engine.js";
import { wasmGuardState } from "../../src/inference/wasm-guards.js";
import { elementwiseModel, expandModel } from "../support/onnx-models.js";

const model = (width: number) => elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", width] });
const feeds = (width: number, value = 1) => ({
  x: new Tensor("float64", new Float64Array(width).fill(value), [1, width]),
});
// InferenceSession is typed as a factory; at run time it is the class whose instances the engine releases.
const sessionPrototype = (InferenceSession as unknown as { prototype: { release(): Promise<void> } })
  .prototype;
const never = () => new Promise<Uint8Array>(() => {});

describe("onnxruntime-web engine", () => {
  it("initialises once and reports how long it took", async () => {
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
    await Promise.all([engine.init(), engine.init()]);
    const { initMs } = engine.stats();
    expect(initMs).toBeGreaterThan(0);
    await engine.init();
    expect(engine.stats().initMs).toBe(initMs);
  });

  it("reads the signature with dynamic dimensions as -1", async () => {
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
    expect(await engine.signature("m@1", async () => model(3))).toEqual({
      inputs: [{ name: "x", datatype: "FP64", shape: [-1, 3] }],
      outputs: [{ name: "y", datatype: "FP64", shape: [-1, 3] }],
    });
  });

  it("creates a session once per key, however many runs race for it", async () => {
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
    let loads = 0;
    const load = async () => {
      loads += 1;
      return model(2);
    };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => engine.run({ key: "m@1", load, feeds: feeds(2, i) })),
    );
    expect(loads).toBe(1);
    expect(engine.stats()).toMatchObject({ sessionsCreated: 1, runs: 20, warmSessions: 1 });
    results.forEach((out, i) => {
      expect(Array.from(out.y?.data as Float64Array)).toEqual([2 * i, 2 * i]);
    });
  });

  it("keeps at most maxSessions warm, evicting the least recently used", async () => {
    const engine = createOrtEngine({ maxSessions: 2, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
    for (const key of ["a", "b", "c"]) await engine.run({ key, load: async () => model(1), feeds: feeds(1) });
    expect(engine.stats()).toMatchObject({ sessionsCreated: 3, warmSessions: 2 });
    await engine.run({ key: "c", load: async () => model(1), feeds: feeds(1) });
    expect(engine.stats().sessionsCreated).toBe(3);
    await engine.run({ key: "a", load: async () => model(1), feeds: feeds(1) });
    expect(engine.stats().sessionsCreated).toBe(4);
  });

  it("keeps warm sessions within the byte budget", async () => {
    const size = model(1).byteLength;
    const engine = createOrtEngine({
      maxSessions: 10,
      maxSessionBytes: Math.floor(size * 1.5),
      timeoutMs: 30_000,
    });
    for (const key of ["a", "b", "c"]) await engine.run({ key, load: async () => model(1), feeds: feeds(1) });
    expect(engine.stats().warmSessions).toBe(1);
  });

  it("a run that has not finished by its deadline rejects with prediction_timeout (504)", async () => {
    const engine = createOrtEngine({ maxSessions: 2, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
    await expect(
      engine.run({ key: "slow", load: never, feeds: feeds(1), timeoutMs: 20 }),
    ).rejects.toMatchObject({
      code: "prediction_timeout",
      status: 504,
    });
    // The engine still serves other work afterwards.
    const out = await engine.run({ key: "ok", load: async () => model(1), feeds: feeds(1, 4) });
    expect(Array.from(out.y?.data as Float64Array)).toEqual([8]);
  });

  it("bytes that are not a model fail with model_load_failed, and nothing stays warm", async () => {
    const engine = createOrtEngine({ maxSessions: 2, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
    await expect(engine.signature("bad", async () => new Uint8Array([1, 2, 3]))).rejects.toMatchObject({
      code: "model_load_failed",
    });
    expect(engine.stats().warmSessions).toBe(0);
  });
});

describe("withDeadline", () => {
  it("passes the result through when work finishes first", async () => {
    await expect(withDeadline(Promise.resolve(7), 1_000, "x")).resolves.toBe(7);
  });
  it("passes the work's own error through", async () => {
    await expect(withDeadline(Promise.reject(new Error("boom")), 1_000, "x")).rejects.toThrow("boom");
  });
  it("names the work and the deadline in its message", async () => {
    await expect(withDeadline(new Promise(() => {}), 5, "inference on m@1")).rejects.toThrow(
      "inference on m@1 did not finish within 5 ms",
    );
  });
});

describe("session cache refusals", () => {
  it("releases a session the warm cache cannot hold after its run, once per load", async () => {
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 8, timeoutMs: 30_000 });
    await engine.init();
    const release = vi.spyOn(sessionPrototype, "release");
    try {
      for (let i = 0; i < 3; i++) {
        const out = await engine.run({ key: "big", load: async () => model(1), feeds: feeds(1, i) });
        expect(Array.from(out.y?.data as Float64Array)).toEqual([2 * i]);
      }
      expect(engine.stats()).toMatchObject({ sessionsCreated: 3, warmSessions: 0, sessionsNotCached: 3 });
      expect(release).toHaveBeenCalledTimes(3);
    } finally {
      release.mockRestore();
    }
  });

  it("releases it after signature-only use too (a registration's check)", async () => {
    const engine = createOrtEngine({ maxSessions: 4, maxSessionBytes: 8, timeoutMs: 30_000 });
    await engine.init();
    const release = vi.spyOn(sessionPrototype, "release");
    try {
      await engine.signature("big", async () => model(1));
      expect(release).toHaveBeenCalledTimes(1);
    } finally {
      release.mockRestore();
    }
  });
});

describe("output size limit", () => {
  const expandTo = (rows: number, cols: number) => ({
    x: new Tensor("float32", new Float32Array([1]), [1]),
    shape: new Tensor("int64", new BigInt64Array([BigInt(rows), BigInt(cols)]), [2]),
  });
  const limited = () =>
    createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 20, timeoutMs: 30_000, maxOutputBytes: 1 << 20 });

  it("passes an output up to maxOutputBytes", async () => {
    const out = await limited().run({
      key: "expand",
      load: async () => expandModel(),
      feeds: expandTo(512, 512),
    });
    expect(out.y?.dims).toEqual([512, 512]);
  });

  it("refuses a larger one with output_too_large (413), naming its shape and size", async () => {
    const error = await limited()
      .run({ key: "expand", load: async () => expandModel(), feeds: expandTo(1000, 1000) })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "output_too_large", status: 413 });
    expect(String(error)).toContain("output 'y' of expand would be 4000000 bytes (float32 [1000, 1000])");
    expect(String(error)).toContain("MAX_OUTPUT_BYTES");
  });

  it("keeps the refused output in wasm: onnxruntime-web's glue still exposes what the guard hooks", async () => {
    // If an onnxruntime-web upgrade renames `_OrtGetTensorData` or stops creating its memory in JS, outputs are
    // still checked, but only after the copy: this test says so before production does.
    await limited().init();
    expect(wasmGuardState()).toMatchObject({ outputsCheckedBeforeCopy: true });
    expect(wasmGuardState().memoryBytes).toBeGreaterThan(0);
  });
});
