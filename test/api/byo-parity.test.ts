import { readdirSync } from "node:fs";
import * as ortNode from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { byoCase, postJson, type TestApp, testApp, upload } from "../support/app.js";
import { BYO_MODELS } from "../support/paths.js";

/**
 * Bring-your-own models: every scikit-learn export in ../shared/data/byo-models registers through the admin API
 * and, through the Open Inference Protocol, gives what scikit-learn's `predict()` gave.
 */
const files = readdirSync(BYO_MODELS)
  .filter((f) => f.endsWith(".json"))
  .sort();

/** Native onnxruntime (C++, one thread): the reference the wasm build must agree with. */
async function nativePredict(
  bytes: Uint8Array,
  input: { name: string; datatype: string; shape: number[]; data: number[] },
) {
  const session = await ortNode.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const tensor =
    input.datatype === "FP64"
      ? new ortNode.Tensor("float64", Float64Array.from(input.data), input.shape)
      : new ortNode.Tensor("float32", Float32Array.from(input.data), input.shape);
  const out = await session.run({ [input.name]: tensor });
  await session.release();
  return Array.from(Object.values(out)[0]?.data as Float64Array);
}

describe("bring-your-own scikit-learn exports", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
  });
  afterAll(() => t.cleanup());

  it("finds the fixtures", () => {
    expect(files.length).toBeGreaterThanOrEqual(7);
  });

  describe.each(files)("%s", (file) => {
    it("registers through the admin API and serves scikit-learn's predictions", async () => {
      const { spec, bytes } = await byoCase(file);
      const name = file.replace(/\.json$/, "");
      const rows = spec.input.shape[0] ?? 0;
      const width = spec.input.shape[1] ?? 0;
      // Register with two golden rows taken from scikit-learn, so registration itself checks parity too.
      const golden = {
        atol: 1e-6,
        cases: [
          {
            inputs: [{ ...spec.input, shape: [2, width], data: spec.input.data.slice(0, 2 * width) }],
            outputs: [
              {
                name: spec.output_name,
                datatype: spec.input.datatype,
                shape: [2, 1],
                data: spec.expected_sklearn_predict.slice(0, 2),
              },
            ],
          },
        ],
      };
      const registered = await upload(t, name, bytes, {
        golden,
        feature_names: spec.feature_names,
        tags: { source: "sklearn" },
      });
      expect(registered.status).toBe(201);
      const meta = await registered.json();
      expect(meta).toMatchObject({
        name,
        version: "1",
        platform: "onnxruntime_onnx",
        signature: { inputs: [{ name: spec.input.name, datatype: spec.input.datatype, shape: [-1, width] }] },
        producer: { name: "skl2onnx" },
      });

      const res = await postJson(t, `/v2/models/${name}/infer`, {
        id: `parity-${name}`,
        inputs: [spec.input],
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-model-version")).toBe("1");
      const body = await res.json();
      expect(body).toMatchObject({ model_name: name, model_version: "1", id: `parity-${name}` });
      const [output] = body.outputs;
      expect(output).toMatchObject({
        name: spec.output_name,
        datatype: spec.input.datatype,
        shape: [rows, 1],
      });
      const served: number[] = output.data;
      expect(served).toHaveLength(spec.expected_sklearn_predict.length);

      const sklearnError = Math.max(
        ...served.map((v, i) => Math.abs(v - (spec.expected_sklearn_predict[i] ?? Number.NaN))),
      );
      expect(sklearnError).toBeLessThanOrEqual(1e-6);

      if (spec.input.datatype === "FP64") {
        // The issue asks 1e-9 against scikit-learn for float64 exports. These fixtures hold scikit-learn's answers as
        // float32 values (every one below is exactly a float32: computed or stored in float32), 7e-9 to 1.3e-7 away
        // from any float64 evaluation: 1e-9 cannot be checked against them. So float64 exports are held to 1e-9
        // against native onnxruntime on the same bytes, and to scikit-learn wherever the fixture keeps full precision.
        const float32Stored = spec.expected_sklearn_predict.every((v) => Math.fround(v) === v);
        if (!float32Stored) expect(sklearnError).toBeLessThanOrEqual(1e-9);
        const native = await nativePredict(bytes, spec.input);
        const nativeError = Math.max(...served.map((v, i) => Math.abs(v - (native[i] ?? Number.NaN))));
        expect(nativeError).toBeLessThanOrEqual(1e-9);
      }
    });
  });
});
