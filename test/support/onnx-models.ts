import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;

export const ELEM = {
  FP32: T.FLOAT,
  FP64: T.DOUBLE,
  INT32: T.INT32,
  INT64: T.INT64,
  BOOL: T.BOOL,
  UINT8: T.UINT8,
  INT8: T.INT8,
  FP16: T.FLOAT16,
  STRING: T.STRING,
} as const;

type Dim = number | string;
const shapeOf = (dims: Dim[]) => ({
  dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
});

/**
 * A one-node model `y = op(x, x)` (or `op(x)` for unary ops) built with onnx-proto: small, fully known models for
 * exercising every datatype and shape rule of the protocol without any fixture files.
 */
export function elementwiseModel(options: {
  op: "Add" | "Mul" | "Not" | "Identity" | "And";
  elem: keyof typeof ELEM;
  shape: Dim[];
  outElem?: keyof typeof ELEM;
  inputName?: string;
  outputName?: string;
}): Uint8Array {
  const unary = options.op === "Not" || options.op === "Identity";
  const x = options.inputName ?? "x";
  const y = options.outputName ?? "y";
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "edgeml-tests",
    producerVersion: "1",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: `${options.op}_${options.elem}`,
      node: [{ opType: options.op, input: unary ? [x] : [x, x], output: [y] }],
      input: [
        { name: x, type: { tensorType: { elemType: ELEM[options.elem], shape: shapeOf(options.shape) } } },
      ],
      output: [
        {
          name: y,
          type: {
            tensorType: { elemType: ELEM[options.outElem ?? options.elem], shape: shapeOf(options.shape) },
          },
        },
      ],
    },
  }).finish();
}

/** Two inputs, two outputs: `sum = a + b`, `prod = a * b` in float64, for output selection and multi-input feeds. */
export function twoByTwoModel(): Uint8Array {
  const io = (name: string) => ({
    name,
    type: { tensorType: { elemType: T.DOUBLE, shape: shapeOf(["batch", 2]) } },
  });
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "edgeml-tests",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "two_by_two",
      node: [
        { opType: "Add", input: ["a", "b"], output: ["sum"] },
        { opType: "Mul", input: ["a", "b"], output: ["prod"] },
      ],
      input: [io("a"), io("b")],
      output: [io("sum"), io("prod")],
    },
  }).finish();
}

/** `y = Reshape(x, [2])` with x of any length: valid for 2 elements, an onnxruntime error for any other count. */
export function reshapeToTwoModel(): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "edgeml-tests",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "reshape_to_two",
      node: [{ opType: "Reshape", input: ["x", "shape"], output: ["y"] }],
      initializer: [{ name: "shape", dataType: T.INT64, dims: [1], int64Data: [2] }],
      input: [{ name: "x", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf(["n"]) } } }],
      output: [{ name: "y", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([2]) } } }],
    },
  }).finish();
}
