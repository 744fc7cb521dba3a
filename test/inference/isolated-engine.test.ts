import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { Tensor } from "onnxruntime-web/wasm";
import { describe, expect, it, vi } from "vitest";
import { type AppConfigInput, AppConfigSchema } from "../../src/config.js";
import { createOrtEngine } from "../../src/inference/engine.js";
import { createIsolatingEngine, isolateInWorker } from "../../src/inference/node/isolated-engine.js";
import { runCostOf } from "../../src/inference/node/run-cost.js";
import { configFromEnv, engineFromConfig } from "../../src/runtime/env.js";
import { postJson, type TestApp, testApp, upload } from "../support/app.js";
import {
  constantExpandModel,
  elementwiseModel,
  expandModel,
  loopModel,
  reshapeToTwoModel,
  twoByTwoModel,
} from "../support/onnx-models.js";
import { BYO_MODELS, REPO_ROOT } from "../support/paths.js";

describe("where a model runs (runCostOf, at session load)", () => {
  it.each([
    ["an elementwise Add", elementwiseModel({ op: "Add", elem: "FP32", shape: ["batch", 3] })],
    ["two inputs, two outputs", twoByTwoModel()],
    ["a Reshape (the element count cannot change)", reshapeToTwoModel()],
    ["an Expand to a shape fixed in the model", constantExpandModel()],
  ])("inline: %s", (_, bytes) => {
    expect(runCostOf(bytes)).toMatchObject({ isolate: false });
  });

  it.each([
    ["a Loop (iterations set by an input)", loopModel(), "control flow (Loop)"],
    ["a Loop inside an If's branches", loopModel({ nested: true }), "control flow (If)"],
    [
      "an Expand to a shape given as input",
      expandModel(),
      "Expand 'y' sizes its output from the values of 'shape'",
    ],
  ])("isolated: %s", (_, bytes, reason) => {
    expect(runCostOf(bytes)).toEqual({ isolate: true, reason: expect.stringContaining(reason) });
  });

  it("inline: every shipped forecaster and every scikit-learn export (they pay no worker hop)", async () => {
    const files = [
      ...(await readdir(join(REPO_ROOT, "models"), { recursive: true }))
        .filter((f) => f.endsWith(".onnx"))
        .map((f) => join(REPO_ROOT, "models", f)),
      ...(await readdir(BYO_MODELS)).filter((f) => f.endsWith(".onnx")).map((f) => join(BYO_MODELS, f)),
    ];
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const file of files) {
      expect({ file, ...runCostOf(await readFile(file)) }).toMatchObject({ file, isolate: false });
    }
  });

  it("isolated: an operator from a domain whose costs are not known here", () => {
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.decode(elementwiseModel({ op: "Add", elem: "FP32", shape: [1] }));
    const node = model.graph?.node?.[0];
    if (node) node.domain = "com.microsoft";
    expect(runCostOf(onnx.ModelProto.encode(model).finish())).toMatchObject({
      isolate: true,
      reason: expect.stringContaining("com.microsoft.Add"),
    });
  });
});

describe("configuration the engine cannot work with is refused at start-up", () => {
  const issues = (env: Record<string, string>) =>
    AppConfigSchema.safeParse(configFromEnv(env)).error?.issues.map((i) => i.message) ?? [];

  it("a session cache smaller than the largest allowed model, naming both variables", () => {
    expect(issues({ SESSION_CACHE_MAX_BYTES: "1000000", MAX_MODEL_BYTES: "2000000" })).toEqual([
      expect.stringMatching(
        /^SESSION_CACHE_MAX_BYTES \(1000000\) must be at least MAX_MODEL_BYTES \(2000000\)/,
      ),
    ]);
    expect(issues({ SESSION_CACHE_MAX_BYTES: "2000000", MAX_MODEL_BYTES: "2000000" })).toEqual([]);
  });

  it("a worker memory ceiling under its recycle bound or under twice the largest model", () => {
    expect(issues({ WORKER_MAX_MEMORY_BYTES: "100000000", WORKER_RECYCLE_BYTES: "200000000" })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^WORKER_MAX_MEMORY_BYTES .* WORKER_RECYCLE_BYTES/)]),
    );
    expect(issues({ WORKER_MAX_MEMORY_BYTES: "100000000", WORKER_RECYCLE_BYTES: "1000" })).toEqual([
      expect.stringMatching(/^WORKER_MAX_MEMORY_BYTES \(100000000\) must be at least twice MAX_MODEL_BYTES/),
    ]);
  });
});

describe("the isolating engine's worker queue", () => {
  it("a request whose deadline passes while it waits behind a long run is dropped, not run; only the long run kills", async () => {
    const engine = engineFromConfig({ inferTimeoutMs: 30_000 }, undefined, isolateInWorker);
    const load = async () => loopModel();
    const feeds = (n: number) => ({
      n: new Tensor("int64", new BigInt64Array([BigInt(n)]), [1]),
      x: new Tensor("float32", new Float32Array([1]), [1]),
    });
    const warm = await engine.run({ key: "loop", load, feeds: feeds(1) });
    expect(Array.from(warm.y?.data as Float32Array)).toEqual([2]);
    // Timers fire in the order they expire: the waiting request's deadline always passes first.
    const long = engine.run({ key: "loop", load, feeds: feeds(1e15), timeoutMs: 3_000 });
    long.catch(() => {});
    await expect(engine.run({ key: "loop", load, feeds: feeds(2), timeoutMs: 50 })).rejects.toMatchObject({
      code: "prediction_timeout",
    });
    expect(engine.stats().workers).toMatchObject({ started: 1, killed: 0 });
    await expect(long).rejects.toMatchObject({ code: "prediction_timeout" });
    await vi.waitFor(() => expect(engine.stats().workers).toMatchObject({ started: 1, killed: 1 }));
    const after = await engine.run({ key: "loop", load, feeds: feeds(2) });
    expect(Array.from(after.y?.data as Float32Array)).toEqual([3]);
    expect(engine.stats().workers).toMatchObject({ started: 2, killed: 1 });
  });
});

describe("an inference worker that cannot start", () => {
  it("answers 503 model_unavailable with the reason, and inline models still serve", async () => {
    const inline = createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
    const engine = createIsolatingEngine({
      inline,
      worker: {
        maxSessions: 4,
        maxSessionBytes: 1 << 20,
        maxOutputBytes: 1 << 20,
        memoryLimitBytes: 1 << 28,
      },
      recycleBytes: 1 << 26,
      timeoutMs: 30_000,
      workerUrl: new URL("data:text/javascript,throw new Error('no loader here')"),
    });
    const x = new Tensor("float32", new Float32Array([1]), [1]);
    const n = new Tensor("int64", new BigInt64Array([1n]), [1]);
    await expect(
      engine.run({ key: "loop", load: async () => loopModel(), feeds: { n, x } }),
    ).rejects.toMatchObject({
      code: "model_unavailable",
      message: expect.stringContaining("no loader here"),
    });
    expect(engine.stats().workers).toMatchObject({ started: 1, crashed: 1 });
    const add = elementwiseModel({ op: "Add", elem: "FP32", shape: [1] });
    const out = await engine.run({ key: "add", load: async () => add, feeds: { x } });
    expect(Array.from(out.y?.data as Float32Array)).toEqual([2]);
  });
});

/**
 * The Node server's wiring (engineFromConfig with isolation) behind the real app. Deadlines here are per request
 * (INFER_TIMEOUT_MS); the long run asks for 10^15 iterations, which no machine finishes, so its 504 never depends
 * on how busy the machine is.
 */
describe("the isolating engine behind the app", () => {
  const config: AppConfigInput = {
    inferTimeoutMs: 8_000,
    maxOutputBytes: 1 << 20,
    maxModelBytes: 1 << 20,
    workerMaxMemoryBytes: 256 << 20,
    workerRecycleBytes: 32 << 20,
  };
  const infer = (t: TestApp, model: string, inputs: unknown[]) =>
    postJson(t, `/v2/models/${model}/infer`, { inputs });
  const loopInputs = (n: number) => [
    { name: "n", shape: [1], datatype: "INT64", data: [n] },
    { name: "x", shape: [1], datatype: "FP32", data: [1] },
  ];
  const expandInputs = (rows: number, cols: number) => [
    { name: "x", shape: [1], datatype: "FP32", data: [1] },
    { name: "shape", shape: [2], datatype: "INT64", data: [rows, cols] },
  ];

  async function setup() {
    const engine = engineFromConfig(config, undefined, isolateInWorker);
    const t = await testApp(config, engine);
    for (const [name, bytes] of [
      ["loop", loopModel()],
      ["expand", expandModel()],
      ["add", elementwiseModel({ op: "Add", elem: "FP32", shape: ["batch", 2] })],
    ] as const) {
      expect((await upload(t, name, bytes)).status).toBe(201);
    }
    return { engine, t };
  }

  it("a run past its deadline answers 504, other requests are served meanwhile, and its worker is replaced", async () => {
    const { engine, t } = await setup();
    try {
      // A first Loop request starts the worker (and loads the model there).
      const warm = await infer(t, "loop", loopInputs(5));
      expect(await warm.json()).toMatchObject({ outputs: [{ name: "y", data: [6] }] });
      expect(engine.stats().workers).toEqual({ started: 1, killed: 0, recycled: 0, crashed: 0 });

      let longSettled = false;
      const long = infer(t, "loop", loopInputs(1e15)).finally(() => {
        longSettled = true;
      });
      // While the worker is busy, liveness and an inline model answer from the serving thread.
      const live = await t.request("/v2/health/live");
      expect(live.status).toBe(200);
      const add = await infer(t, "add", [{ name: "x", shape: [1, 2], datatype: "FP32", data: [1, 2] }]);
      expect(await add.json()).toMatchObject({ outputs: [{ name: "y", data: [2, 4] }] });
      expect(longSettled).toBe(false);

      const timedOut = await long;
      expect(timedOut.status).toBe(504);
      expect(await timedOut.json()).toMatchObject({ code: "prediction_timeout" });
      // The response may leave a moment before the engine's own timer (set from the same deadline) kills the worker.
      await vi.waitFor(() => expect(engine.stats().workers).toMatchObject({ started: 1, killed: 1 }), {
        timeout: 30_000,
      });

      // The next request on that model runs in a fresh worker (which is sent the model's bytes again).
      const again = await infer(t, "loop", loopInputs(3));
      expect(await again.json()).toMatchObject({ outputs: [{ name: "y", data: [4] }] });
      expect(engine.stats().workers).toMatchObject({ started: 2, killed: 1 });
    } finally {
      await t.cleanup();
    }
  });

  it("a 170-byte request for a [30000, 30000] Expand is refused with 413 without growing the process", async () => {
    const { engine, t } = await setup();
    try {
      const body = JSON.stringify({ inputs: expandInputs(30_000, 30_000) });
      expect(body.length).toBeLessThan(200);
      const rssBefore = process.memoryUsage().rss;
      const res = await infer(t, "expand", expandInputs(30_000, 30_000));
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({
        code: "output_too_large",
        error: expect.stringContaining("WORKER_MAX_MEMORY_BYTES"),
      });
      // 3.6 GB were asked for; the worker's wasm ceiling (256 MiB here) refused the allocation itself.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(512 * 1024 * 1024);
      // The model still serves what fits.
      const small = await infer(t, "expand", expandInputs(2, 3));
      expect(await small.json()).toMatchObject({ outputs: [{ name: "y", shape: [2, 3] }] });
      expect(engine.stats().workers).toMatchObject({ started: 1, crashed: 0 });
    } finally {
      await t.cleanup();
    }
  });

  it("an output over MAX_OUTPUT_BYTES is 413 with its size, and a worker grown past its recycle bound is replaced", async () => {
    const { engine, t } = await setup();
    try {
      // 3000 × 3000 float32 is 36 MB: under the worker's ceiling, over the 1 MiB output limit and the 32 MiB
      // recycle bound.
      const res = await infer(t, "expand", expandInputs(3_000, 3_000));
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({
        code: "output_too_large",
        error: expect.stringContaining("would be 36000000 bytes (float32 [3000, 3000])"),
      });
      expect(engine.stats().workers).toMatchObject({ started: 1, recycled: 1 });
      const small = await infer(t, "expand", expandInputs(2, 2));
      expect(await small.json()).toMatchObject({
        outputs: [{ name: "y", shape: [2, 2], data: [1, 1, 1, 1] }],
      });
      expect(engine.stats().workers).toMatchObject({ started: 2, recycled: 1 });
    } finally {
      await t.cleanup();
    }
  });
});
