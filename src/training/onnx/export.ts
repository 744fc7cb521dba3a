/**
 * ONNX export of the trained models, float64 end to end, built with onnx-proto (protobufjs classes of onnx.proto).
 *
 * Contract of every exported forecaster: input "features" double [batch, F], output "log_return" double [batch, 1],
 * IR version 10, default opset 21, ai.onnx.ml opset 5, producer "edgeml", and metadata_props naming the feature set,
 * its version and the feature names in column order (serving refuses a feature set it does not know).
 *
 * - GBDT → ai.onnx.ml TreeEnsemble (v5) with double splits and leaf weights, mode BRANCH_LEQ (our split is
 *   `x <= threshold`), no missing-value tracks (NaN <= t is false, so NaN goes to the false branch, as in our
 *   predict). The base score is folded into the first tree's leaves: ORT sums leaves from 0 in tree order, and
 *   0 + (base + leaf) is exactly our `base + leaf`. TreeEnsemble v5 runs in onnxruntime-web 1.30, so the
 *   TreeEnsembleRegressor v3 fallback (whose output is float32 anyway) is not needed.
 * - Ridge → MatMul + Add in double, standardisation already folded into the weights.
 * - Naive → a constant 0 of shape [batch, 1] (exportNaive): the baseline every forecaster is measured against.
 */

import type { onnx as OnnxTypes } from "onnx-proto";
import onnxProto from "onnx-proto";
import pkg from "../../../package.json" with { type: "json" };
import type { GbdtModel } from "../gbdt.js";
import type { RidgeModel } from "../ridge.js";

const { onnx } = onnxProto;

export const INPUT_NAME = "features";
export const OUTPUT_NAME = "log_return";
export const IR_VERSION = 10;
export const DEFAULT_OPSET = 21;
export const ML_OPSET = 5;

/** Node modes of TreeEnsemble v5 (the `nodes_modes` tensor). */
const BRANCH_LEQ = 0;
const AGGREGATE_SUM = 1;
const POST_TRANSFORM_NONE = 0;

export interface ExportMetadata {
  featureSet: { name: string; version: number };
  featureNames: readonly string[];
  symbol: string;
  interval: string;
  horizonBars: number;
  /** Free text for the graph's doc_string. */
  description: string;
}

export function exportGbdt(model: GbdtModel, meta: ExportMetadata): Uint8Array {
  const F = model.nFeatures;
  const roots: number[] = [];
  const featureIds: number[] = [];
  const splits: number[] = [];
  const trueIds: number[] = [];
  const trueLeafs: number[] = [];
  const falseIds: number[] = [];
  const falseLeafs: number[] = [];
  const leafWeights: number[] = [];

  // v5 lists interior nodes and leaves separately; a child reference is an index into one or the other.
  const addTree = (
    tree: {
      feature: Int32Array;
      threshold: Float64Array;
      left: Int32Array;
      right: Int32Array;
      value: Float64Array;
    },
    offset: number,
  ) => {
    const interior = new Map<number, number>();
    const leaves = new Map<number, number>();
    for (let node = 0; node < tree.feature.length; node++) {
      if ((tree.feature[node] as number) >= 0) interior.set(node, featureIds.length + interior.size);
    }
    for (let node = 0; node < tree.feature.length; node++) {
      if ((tree.feature[node] as number) < 0) {
        leaves.set(node, leafWeights.length);
        leafWeights.push(offset + (tree.value[node] as number));
      }
    }
    if (interior.size === 0) {
      // A single-leaf tree: ORT reads a root whose two branches are the same leaf as a leaf.
      roots.push(featureIds.length);
      featureIds.push(0);
      splits.push(0);
      const leaf = leaves.get(0) as number;
      trueIds.push(leaf);
      trueLeafs.push(1);
      falseIds.push(leaf);
      falseLeafs.push(1);
      return;
    }
    roots.push(interior.get(0) as number);
    for (const node of interior.keys()) {
      featureIds.push(tree.feature[node] as number);
      splits.push(tree.threshold[node] as number);
      const l = tree.left[node] as number;
      const r = tree.right[node] as number;
      trueLeafs.push(interior.has(l) ? 0 : 1);
      trueIds.push(interior.get(l) ?? (leaves.get(l) as number));
      falseLeafs.push(interior.has(r) ? 0 : 1);
      falseIds.push(interior.get(r) ?? (leaves.get(r) as number));
    }
  };

  if (model.trees.length === 0) {
    addTree(
      {
        feature: Int32Array.of(-1),
        threshold: Float64Array.of(0),
        left: Int32Array.of(-1),
        right: Int32Array.of(-1),
        value: Float64Array.of(0),
      },
      model.baseScore,
    );
  } else {
    model.trees.forEach((tree, i) => {
      addTree(tree, i === 0 ? model.baseScore : 0);
    });
  }

  const nodeCount = featureIds.length;
  const node = onnx.NodeProto.create({
    name: "trees",
    opType: "TreeEnsemble",
    domain: "ai.onnx.ml",
    input: [INPUT_NAME],
    output: [OUTPUT_NAME],
    attribute: [
      intAttr("n_targets", 1),
      intAttr("aggregate_function", AGGREGATE_SUM),
      intAttr("post_transform", POST_TRANSFORM_NONE),
      intsAttr("tree_roots", roots),
      intsAttr("nodes_featureids", featureIds),
      tensorAttr("nodes_splits", doubleTensor("nodes_splits", splits, [nodeCount])),
      tensorAttr(
        "nodes_modes",
        uint8Tensor("nodes_modes", new Array(nodeCount).fill(BRANCH_LEQ), [nodeCount]),
      ),
      intsAttr("nodes_truenodeids", trueIds),
      intsAttr("nodes_trueleafs", trueLeafs),
      intsAttr("nodes_falsenodeids", falseIds),
      intsAttr("nodes_falseleafs", falseLeafs),
      intsAttr("nodes_missing_value_tracks_true", new Array(nodeCount).fill(0)),
      intsAttr("leaf_targetids", new Array(leafWeights.length).fill(0)),
      tensorAttr("leaf_weights", doubleTensor("leaf_weights", leafWeights, [leafWeights.length])),
    ],
  });
  return buildModel([node], [], F, meta, "gbdt", { trees: String(Math.max(1, model.trees.length)) });
}

export function exportRidge(model: RidgeModel, meta: ExportMetadata): Uint8Array {
  const F = model.nFeatures;
  const nodes = [
    onnx.NodeProto.create({ name: "dot", opType: "MatMul", input: [INPUT_NAME, "weights"], output: ["dot"] }),
    onnx.NodeProto.create({
      name: "bias",
      opType: "Add",
      input: ["dot", "intercept"],
      output: [OUTPUT_NAME],
    }),
  ];
  const initializers = [
    doubleTensor("weights", Array.from(model.weights), [F, 1]),
    doubleTensor("intercept", [model.intercept], [1]),
  ];
  return buildModel(nodes, initializers, F, meta, "ridge", { alpha: String(model.alpha) });
}

/**
 * The naive baseline as a forecaster: "no change", a log return of exactly +0 for every row, whatever the features
 * (NaN and ±Inf included: a zero-weight MatMul would turn those into NaN). The first column, cast to BOOL, ANDed with
 * its own negation is false everywhere, and false cast to DOUBLE is +0: a [batch, 1] tensor of +0. Every operator's
 * output size follows its input's (no ConstantOfShape), so the serving engine's cost check runs it inline like the
 * trained forecasters (src/inference/node/run-cost.ts). Same input, output and metadata as every trained forecaster,
 * so it registers, verifies and serves like one.
 */
export function exportNaive(meta: ExportMetadata): Uint8Array {
  const BOOL = onnx.TensorProto.DataType.BOOL;
  const DOUBLE = onnx.TensorProto.DataType.DOUBLE;
  const nodes = [
    onnx.NodeProto.create({
      name: "first_column",
      opType: "Slice",
      input: [INPUT_NAME, "zero", "one", "one"],
      output: ["first"],
    }),
    onnx.NodeProto.create({
      name: "as_bool",
      opType: "Cast",
      input: ["first"],
      output: ["truth"],
      attribute: [intAttr("to", BOOL)],
    }),
    onnx.NodeProto.create({ name: "negated", opType: "Not", input: ["truth"], output: ["untruth"] }),
    onnx.NodeProto.create({
      name: "never",
      opType: "And",
      input: ["truth", "untruth"],
      output: ["false"],
    }),
    onnx.NodeProto.create({
      name: "no_change",
      opType: "Cast",
      input: ["false"],
      output: [OUTPUT_NAME],
      attribute: [intAttr("to", DOUBLE)],
    }),
  ];
  return buildModel(
    nodes,
    [int64Tensor("zero", [0], [1]), int64Tensor("one", [1], [1])],
    meta.featureNames.length,
    meta,
    "naive",
    {},
  );
}

function buildModel(
  nodes: OnnxTypes.INodeProto[],
  initializers: OnnxTypes.ITensorProto[],
  F: number,
  meta: ExportMetadata,
  family: string,
  extra: Record<string, string>,
): Uint8Array {
  if (meta.featureNames.length !== F) {
    throw new Error(`export: ${meta.featureNames.length} feature names for a model of ${F} features`);
  }
  const props: Record<string, string> = {
    feature_set: meta.featureSet.name,
    feature_set_version: String(meta.featureSet.version),
    feature_names: JSON.stringify(meta.featureNames),
    target: "log_return",
    family,
    symbol: meta.symbol,
    interval: meta.interval,
    horizon_bars: String(meta.horizonBars),
    ...extra,
  };
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [
      { domain: "", version: DEFAULT_OPSET },
      { domain: "ai.onnx.ml", version: ML_OPSET },
    ],
    producerName: "edgeml",
    producerVersion: pkg.version,
    docString: meta.description,
    metadataProps: Object.entries(props).map(([key, value]) => ({ key, value })),
    graph: {
      name: `${meta.symbol}_${meta.interval}_${meta.horizonBars}_${family}`,
      docString: meta.description,
      node: nodes,
      initializer: initializers,
      input: [doubleValueInfo(INPUT_NAME, F)],
      output: [doubleValueInfo(OUTPUT_NAME, 1)],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function doubleValueInfo(name: string, columns: number): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.DOUBLE,
        shape: { dim: [{ dimParam: "batch" }, { dimValue: columns }] },
      },
    },
  };
}

/** Doubles as little-endian raw_data, the byte order ONNX prescribes whatever the host's. */
function doubleTensor(name: string, values: readonly number[], dims: number[]): OnnxTypes.ITensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => {
    view.setFloat64(i * 8, v, true);
  });
  return { name, dataType: onnx.TensorProto.DataType.DOUBLE, dims, rawData: raw };
}

function int64Tensor(name: string, values: readonly number[], dims: number[]): OnnxTypes.ITensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => {
    view.setBigInt64(i * 8, BigInt(v), true);
  });
  return { name, dataType: onnx.TensorProto.DataType.INT64, dims, rawData: raw };
}

function uint8Tensor(name: string, values: readonly number[], dims: number[]): OnnxTypes.ITensorProto {
  return { name, dataType: onnx.TensorProto.DataType.UINT8, dims, rawData: Uint8Array.from(values) };
}

function intAttr(name: string, i: number): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

function intsAttr(name: string, ints: number[]): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}

function tensorAttr(name: string, t: OnnxTypes.ITensorProto): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.TENSOR, t };
}
