import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

/** Where a model may run: inline (in the serving thread) or isolated (in a worker that can be killed). */
export interface RunCost {
  isolate: boolean;
  /** Why, for logs and docs: the first operator that makes the cost unbounded, or what bounds it. */
  reason: string;
}

/** Operators whose work is a loop the graph's data decides: their cost has no bound the request's size sets. */
const CONTROL_FLOW = new Set(["Loop", "Scan", "If", "SequenceMap"]);

/**
 * Operators whose output size is set by the *values* of some inputs (by position), not by input sizes: a 16-byte
 * shape tensor can ask an Expand for gigabytes. With those inputs constant (an initializer or a Constant node) the
 * size is fixed by the model itself, which is fine.
 */
const VALUE_SHAPED: Record<string, readonly number[]> = {
  Expand: [1],
  Tile: [1],
  ConstantOfShape: [0],
  Range: [0, 1, 2],
  Resize: [1, 2, 3],
  Upsample: [1],
  Pad: [1, 2],
  OneHot: [1],
  CenterCropPad: [1],
  Col2Im: [1, 2],
  RandomNormalLike: [],
  Multinomial: [],
};

/** Domains whose operators are all covered by the two lists above (onnxruntime-web's default and ML domains). */
const KNOWN_DOMAINS = new Set(["", "ai.onnx", "ai.onnx.ml"]);

type Graph = onnxProto.onnx.IGraphProto;
type Node = onnxProto.onnx.INodeProto;

function subgraphsOf(node: Node): Graph[] {
  return (node.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);
}

function graphCost(graph: Graph): RunCost | null {
  const nodes = graph.node ?? [];
  const constants = new Set<string>((graph.initializer ?? []).map((t) => t.name ?? ""));
  for (const node of nodes) {
    if (node.opType === "Constant") for (const output of node.output ?? []) constants.add(output);
  }
  for (const node of nodes) {
    const op = node.opType ?? "";
    const inputs = node.input ?? [];
    if (CONTROL_FLOW.has(op) || subgraphsOf(node).length > 0) {
      return { isolate: true, reason: `control flow (${op}): its iterations are set by data` };
    }
    if (!KNOWN_DOMAINS.has(node.domain ?? "")) {
      return { isolate: true, reason: `operator ${node.domain}.${op}, whose cost is not known here` };
    }
    const dynamic = (VALUE_SHAPED[op] ?? []).find((i) => {
      const input = inputs[i];
      return input !== undefined && input !== "" && !constants.has(input);
    });
    if (dynamic !== undefined) {
      return {
        isolate: true,
        reason: `${op} '${node.name || node.output?.[0]}' sizes its output from the values of '${inputs[dynamic]}'`,
      };
    }
  }
  return null;
}

/**
 * Classifies a model at session load. A graph without control flow whose every output size follows from its
 * inputs' sizes (no operator sizes a tensor from input values) costs what its input costs, and the request body
 * limit bounds that: it may run inline. Every other model runs isolated, where a deadline can stop it and its
 * memory can be reclaimed. Subgraphs are control flow by definition, so they need no separate walk.
 */
export function runCostOf(bytes: Uint8Array): RunCost {
  let graph: Graph | null | undefined;
  try {
    graph = onnx.ModelProto.decode(bytes).graph;
  } catch {
    // onnxruntime will refuse it with its own message; nothing runs either way.
    return { isolate: true, reason: "the model could not be parsed" };
  }
  if (!graph) return { isolate: true, reason: "the model has no graph" };
  return graphCost(graph) ?? { isolate: false, reason: "no control flow; output sizes follow input sizes" };
}
