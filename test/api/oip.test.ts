import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.js";
import { postJson, type TestApp, testApp, testEngine, upload } from "../support/app.js";
import { elementwiseModel, reshapeToTwoModel, twoByTwoModel } from "../support/onnx-models.js";

/** The Open Inference Protocol v2 REST surface, as KServe's OpenAPI file of the protocol describes it. */
describe("Open Inference Protocol v2", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
    const models: [string, Uint8Array][] = [
      ["add-fp32", elementwiseModel({ op: "Add", elem: "FP32", shape: ["batch", 2] })],
      ["add-fp64", elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 2] })],
      ["add-int32", elementwiseModel({ op: "Add", elem: "INT32", shape: ["batch", 2] })],
      ["add-int64", elementwiseModel({ op: "Add", elem: "INT64", shape: ["batch", 2] })],
      ["not-bool", elementwiseModel({ op: "Not", elem: "BOOL", shape: ["batch", 2] })],
      ["id-uint8", elementwiseModel({ op: "Identity", elem: "UINT8", shape: ["batch", 2] })],
      ["id-int8", elementwiseModel({ op: "Identity", elem: "INT8", shape: ["batch", 2] })],
      ["add-fp16", elementwiseModel({ op: "Add", elem: "FP16", shape: ["batch", 2] })],
      ["fixed", elementwiseModel({ op: "Add", elem: "FP32", shape: [2, 2] })],
      ["two", twoByTwoModel()],
      ["reshape", reshapeToTwoModel()],
    ];
    for (const [name, bytes] of models) expect((await upload(t, name, bytes)).status).toBe(201);
  });
  afterAll(() => t.cleanup());

  describe("health and server metadata", () => {
    it.each([
      [
        "/v2",
        { name: "edgeml", version: expect.any(String), extensions: ["statistics", "binary_tensor_data"] },
      ],
      ["/v2/health/live", { live: true }],
      ["/v2/health/ready", { ready: true }],
    ])("GET %s", async (path, body) => {
      const res = await t.request(path);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(body);
    });
  });

  describe("model metadata", () => {
    it("GET /v2/models/{name} has name, versions, platform, inputs and outputs", async () => {
      const res = await t.request("/v2/models/two");
      expect(await res.json()).toEqual({
        name: "two",
        versions: ["1"],
        platform: "onnxruntime_onnx",
        inputs: [
          { name: "a", datatype: "FP64", shape: [-1, 2] },
          { name: "b", datatype: "FP64", shape: [-1, 2] },
        ],
        outputs: [
          { name: "sum", datatype: "FP64", shape: [-1, 2] },
          { name: "prod", datatype: "FP64", shape: [-1, 2] },
        ],
      });
    });
    it("GET /v2/models/{name}/versions/{v} describes that version", async () => {
      const res = await t.request("/v2/models/fixed/versions/1");
      expect(await res.json()).toMatchObject({ name: "fixed", versions: ["1"], inputs: [{ shape: [2, 2] }] });
    });
    it.each(["/v2/models/two/ready", "/v2/models/two/versions/1/ready"])(
      "GET %s loads the model",
      async (path) => {
        const res = await t.request(path);
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ name: "two", version: "1", ready: true });
      },
    );
  });

  describe("infer: every datatype in and out", () => {
    const cases: [string, string, unknown[], unknown[]][] = [
      ["add-fp32", "FP32", [0.1, -2.5, 3, 1e30], [Math.fround(0.1) * 2, -5, 6, Math.fround(1e30) * 2]],
      ["add-fp64", "FP64", [0.1, -2.5, 3, 1e300], [0.2, -5, 6, 2e300]],
      ["add-int32", "INT32", [1, -2, 2147483600, 0], [2, -4, -96, 0]],
      ["add-int64", "INT64", [1, -2, 2 ** 40, 0], [2, -4, 2 ** 41, 0]],
      ["not-bool", "BOOL", [true, false, false, true], [false, true, true, false]],
      ["id-uint8", "UINT8", [0, 1, 254, 255], [0, 1, 254, 255]],
      ["id-int8", "INT8", [-128, -1, 0, 127], [-128, -1, 0, 127]],
      ["add-fp16", "FP16", [0.5, -1, 1024, 0.1], [1, -2, 2048, 0.199951171875]],
    ];
    it.each(cases)("%s (%s)", async (model, datatype, data, expected) => {
      const res = await postJson(t, `/v2/models/${model}/infer`, {
        inputs: [{ name: "x", datatype, shape: [2, 2], data }],
      });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toEqual({
        model_name: model,
        model_version: "1",
        outputs: [{ name: "y", datatype, shape: [2, 2], data: expected }],
      });
    });

    it.each([
      ["INT32 out of range", "add-int32", "INT32", [2 ** 31, 0, 0, 0], /out of range for INT32/],
      ["INT64 beyond 2^53", "add-int64", "INT64", [2 ** 60, 0, 0, 0], /must be an integer/],
      ["a fraction as INT32", "add-int32", "INT32", [1.5, 0, 0, 0], /element 0 must be an integer/],
      ["a number as BOOL", "not-bool", "BOOL", [1, 0, 0, 1], /element 0 must be true or false/],
      ["a negative UINT8", "id-uint8", "UINT8", [-1, 0, 0, 1], /out of range for UINT8/],
      ["null in FP64", "add-fp64", "FP64", [null, 0, 0, 1], /element 0 must be a finite number/],
      ["an object in FP32", "add-fp32", "FP32", [{}, 0, 0, 1], /element 0 must be a finite number/],
      [
        "a number beyond FP32's range",
        "add-fp32",
        "FP32",
        [0, 1e39, 0, 1],
        /element 1 = 1e\+39 is out of range for FP32/,
      ],
      [
        "a number beyond FP16's range",
        "add-fp16",
        "FP16",
        [0, 0, 70000, 1],
        /element 2 = 70000 is out of range for FP16/,
      ],
    ])("rejects %s with 400", async (_label, model, datatype, data, message) => {
      const res = await postJson(t, `/v2/models/${model}/infer`, {
        inputs: [{ name: "x", datatype, shape: [2, 2], data }],
      });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatch(message);
    });
  });

  describe("infer: request features", () => {
    const a = { name: "a", datatype: "FP64", shape: [2, 2], data: [1, 2, 3, 4] };
    const b = {
      name: "b",
      datatype: "FP64",
      shape: [2, 2],
      data: [
        [10, 20],
        [30, 40],
      ],
    };

    it("takes nested data, echoes the id and returns every output", async () => {
      const res = await postJson(t, "/v2/models/two/infer", { id: "req-42", inputs: [a, b] });
      expect(await res.json()).toEqual({
        model_name: "two",
        model_version: "1",
        id: "req-42",
        outputs: [
          { name: "sum", datatype: "FP64", shape: [2, 2], data: [11, 22, 33, 44] },
          { name: "prod", datatype: "FP64", shape: [2, 2], data: [10, 40, 90, 160] },
        ],
      });
    });
    it("returns only the requested outputs", async () => {
      const res = await postJson(t, "/v2/models/two/infer", { inputs: [b, a], outputs: [{ name: "prod" }] });
      const body = await res.json();
      expect(body.outputs.map((o: { name: string }) => o.name)).toEqual(["prod"]);
      expect(body).not.toHaveProperty("id");
    });
    it("serves a named version and says which in x-model-version", async () => {
      const res = await postJson(t, "/v2/models/two/versions/1/infer", { inputs: [a, b] });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-model-version")).toBe("1");
    });
    it("checks fixed dimensions", async () => {
      const res = await postJson(t, "/v2/models/fixed/infer", {
        inputs: [{ name: "x", datatype: "FP32", shape: [3, 2], data: [1, 2, 3, 4, 5, 6] }],
      });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toContain("expects [2, 2]");
    });
    it("a model that cannot compute a well-formed input answers 422 inference_failed, not 500", async () => {
      const ok = await postJson(t, "/v2/models/reshape/infer", {
        inputs: [{ name: "x", datatype: "FP32", shape: [2], data: [1, 2] }],
      });
      expect(ok.status).toBe(200);
      const res = await postJson(t, "/v2/models/reshape/infer", {
        inputs: [{ name: "x", datatype: "FP32", shape: [3], data: [1, 2, 3] }],
      });
      expect(res.status).toBe(422);
      expect(await res.json()).toMatchObject({
        code: "inference_failed",
        error: expect.stringContaining("onnxruntime could not run reshape@1 on this input"),
      });
      // The engine serves on afterwards.
      expect(
        (
          await postJson(t, "/v2/models/reshape/infer", {
            inputs: [{ name: "x", datatype: "FP32", shape: [2], data: [3, 4] }],
          })
        ).status,
      ).toBe(200);
    });

    it("rejects a missing input", async () => {
      const res = await postJson(t, "/v2/models/two/infer", { inputs: [a] });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toContain("missing input(s): b");
    });
    it("answers 413 past the infer body limit", async () => {
      const small = await testApp({ maxInferBytes: 256 });
      try {
        expect((await upload(small, "two", twoByTwoModel())).status).toBe(201);
        const big = { name: "a", datatype: "FP64", shape: [64, 2], data: Array(128).fill(1.2345) };
        const res = await postJson(small, "/v2/models/two/infer", { inputs: [big, { ...big, name: "b" }] });
        expect(res.status).toBe(413);
      } finally {
        await small.cleanup();
      }
    });
  });

  describe("API description", () => {
    it("GET /openapi.json is generated from the schemas and lists every route", async () => {
      const res = await t.request("/openapi.json");
      expect(res.status).toBe(200);
      const doc = await res.json();
      expect(doc.openapi).toBe("3.1.0");
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          "/v2",
          "/v2/health/live",
          "/v2/health/ready",
          "/v2/models/{name}",
          "/v2/models/{name}/versions/{version}",
          "/v2/models/{name}/ready",
          "/v2/models/{name}/infer",
          "/v2/models/{name}/versions/{version}/infer",
          "/api/ml/models",
          "/api/ml/models/{name}",
          "/api/ml/models/{name}/versions",
          "/api/ml/models/{name}/promote",
          "/api/ml/models/{name}/rollback",
        ]),
      );
      expect(doc.components.schemas.Tensor.properties.datatype.enum).toContain("BYTES");
    });
    it("GET /docs is an interactive page on that description", async () => {
      const res = await t.request("/docs");
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("/openapi.json");
    });
  });
});

describe("prediction timeout", () => {
  it("an inference still running at the deadline answers 504 prediction_timeout", async () => {
    const t = await testApp({ inferTimeoutMs: 30 });
    try {
      expect((await upload(t, "m", elementwiseModel({ op: "Add", elem: "FP64", shape: [1] }))).status).toBe(
        201,
      );
      // The same registry behind an engine whose runs never finish: a model slower than the deadline.
      const stuck = createApp({
        ...t.deps,
        engine: { ...testEngine(), run: () => new Promise<never>(() => {}) },
      });
      const res = await stuck.app.request("/v2/models/m/infer", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP64", shape: [1], data: [1] }] }),
      });
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({
        code: "prediction_timeout",
        error: expect.stringContaining("30 ms"),
      });
    } finally {
      await t.cleanup();
    }
  });
});
