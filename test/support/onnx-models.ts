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

/**
 * `y = Expand(x, shape)` with the target shape an input: a 16-byte shape tensor can ask for gigabytes, so the
 * output's size is set by input values, not sizes (a model that must run isolated, with its output bounded).
 */
export function expandModel(): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "edgeml-tests",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "expand",
      node: [{ opType: "Expand", input: ["x", "shape"], output: ["y"] }],
      input: [
        { name: "x", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([1]) } } },
        { name: "shape", type: { tensorType: { elemType: T.INT64, shape: shapeOf([2]) } } },
      ],
      output: [{ name: "y", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf(["rows", "cols"]) } } }],
    },
  }).finish();
}

/** The same Expand with its target shape a constant of the model: its output size is fixed, so it runs inline. */
export function constantExpandModel(): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "edgeml-tests",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "constant_expand",
      node: [{ opType: "Expand", input: ["x", "shape"], output: ["y"] }],
      initializer: [{ name: "shape", dataType: T.INT64, dims: [2], int64Data: [2, 3] }],
      input: [{ name: "x", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([1]) } } }],
      output: [{ name: "y", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([2, 3]) } } }],
    },
  }).finish();
}

/**
 * `y = x + n` computed by a Loop of `n` iterations adding 1 (n is an INT64 input of shape [1]): its cost is set by
 * a value, so one 8-byte number can hold a CPU for as long as it likes. Wrapped in an If when `nested`, to check
 * that control flow is found in subgraphs too.
 */
export function loopModel(options: { nested?: boolean } = {}): Uint8Array {
  const scalar = (name: string, elemType: number) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: [] } } },
  });
  const loop = {
    opType: "Loop",
    input: ["n", "", "x"],
    output: ["y"],
    attribute: [
      {
        name: "body",
        type: onnx.AttributeProto.AttributeType.GRAPH,
        g: {
          name: "add_one",
          node: [
            { opType: "Identity", input: ["cond_in"], output: ["cond_out"] },
            { opType: "Add", input: ["v_in", "one"], output: ["v_out"] },
          ],
          initializer: [{ name: "one", dataType: T.FLOAT, dims: [1], floatData: [1] }],
          input: [
            scalar("i", T.INT64),
            scalar("cond_in", T.BOOL),
            { name: "v_in", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([1]) } } },
          ],
          output: [
            scalar("cond_out", T.BOOL),
            { name: "v_out", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([1]) } } },
          ],
        },
      },
    ],
  };
  const node = options.nested
    ? {
        opType: "If",
        input: ["always"],
        output: ["y"],
        attribute: ["then_branch", "else_branch"].map((name) => ({
          name,
          type: onnx.AttributeProto.AttributeType.GRAPH,
          g: {
            name,
            node: [loop],
            output: [{ name: "y", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([1]) } } }],
          },
        })),
      }
    : loop;
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "edgeml-tests",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: options.nested ? "nested_loop" : "loop",
      node: options.nested
        ? [
            {
              opType: "Constant",
              output: ["always"],
              attribute: [
                {
                  name: "value",
                  type: onnx.AttributeProto.AttributeType.TENSOR,
                  t: { dataType: T.BOOL, dims: [], int32Data: [1] },
                },
              ],
            },
            node,
          ]
        : [node],
      input: [
        { name: "n", type: { tensorType: { elemType: T.INT64, shape: shapeOf([1]) } } },
        { name: "x", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([1]) } } },
      ],
      output: [{ name: "y", type: { tensorType: { elemType: T.FLOAT, shape: shapeOf([1]) } } }],
    },
  }).finish();
}

/**
 * The same model with `docString` set: other bytes (another sha256), the same graph and outputs. The registry treats
 * equal bytes and calibration as one version, so a test that needs several versions of one model registers variants.
 */
export function variantOf(bytes: Uint8Array, docString: string): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  model.docString = docString;
  return onnx.ModelProto.encode(model).finish();
}
