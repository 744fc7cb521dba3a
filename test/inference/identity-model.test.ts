import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-web/wasm";
import { describe, expect, it } from "vitest";
import { identityModel } from "../../src/inference/identity-model.js";

const { onnx } = onnxProto;

const float1 = (name: string) => ({
  name,
  type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } },
});

describe("the start-up Identity model (written out, so serving never loads onnx-proto to start)", () => {
  it("is byte for byte what onnx-proto encodes for a one-node Identity graph", () => {
    const encoded = onnx.ModelProto.encode({
      irVersion: 8,
      producerName: "edgeml",
      opsetImport: [{ domain: "", version: 13 }],
      graph: {
        name: "warmup",
        node: [{ opType: "Identity", input: ["x"], output: ["y"] }],
        input: [float1("x")],
        output: [float1("y")],
      },
    }).finish();
    expect(identityModel()).toEqual(new Uint8Array(encoded));
  });

  it("runs in onnxruntime-web: y = x", async () => {
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(identityModel());
    const { y } = await session.run({ x: new ort.Tensor("float32", new Float32Array([2.5]), [1]) });
    expect(Array.from((y as ort.Tensor).data as Float32Array)).toEqual([2.5]);
    await session.release();
  });

  it("hands out a copy each time, so a runtime that takes ownership of one cannot empty the next", () => {
    const first = identityModel();
    first.fill(0);
    expect(identityModel()[0]).toBe(8);
  });
});
