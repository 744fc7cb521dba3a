import onnxProto, { type onnx as OnnxTypes } from "onnx-proto";
import { beforeAll, describe, expect, it } from "vitest";
import { FEATURE_NAMES, FEATURE_SET } from "../../src/features/index.js";
import { type Dataset, type GbdtModel, predictGbdt, trainGbdt } from "../../src/training/gbdt.js";
import { type ExportMetadata, exportGbdt, exportRidge } from "../../src/training/onnx/export.js";
import { runForecaster } from "../../src/training/onnx/runtime.js";
import { predictRidge, type RidgeModel, trainRidge } from "../../src/training/ridge.js";
import { realSplits } from "./data.js";

const { onnx } = onnxProto;
const F = FEATURE_NAMES.length;
const meta: ExportMetadata = {
  featureSet: FEATURE_SET,
  featureNames: FEATURE_NAMES,
  symbol: "BTC",
  interval: "1d",
  horizonBars: 1,
  description: "test model",
};

let btc: { train: Dataset; validation: Dataset; test: Dataset };
let eth: { train: Dataset; validation: Dataset; test: Dataset };
beforeAll(async () => {
  [btc, eth] = await Promise.all([realSplits("BTC", "1d", 1), realSplits("ETH", "1d", 1)]);
});

/** The neighbouring double above (dir 1) or below (dir -1) a non-zero finite x. */
function nextAfter(x: number, dir: 1 | -1): number {
  const bits = new BigInt64Array(Float64Array.of(x).buffer);
  bits[0] = (bits[0] as bigint) + (x > 0 === dir > 0 ? 1n : -1n);
  return new Float64Array(bits.buffer)[0] as number;
}

/** Rows that probe the routing: each split threshold exactly and one ulp either side, NaN, ±Infinity, -0. */
function edgeRows(model: GbdtModel, base: Float64Array): Float64Array[] {
  const rows: Float64Array[] = [];
  for (const tree of model.trees.slice(0, 5)) {
    for (let node = 0; node < tree.feature.length; node++) {
      const f = tree.feature[node] as number;
      if (f < 0) continue;
      const t = tree.threshold[node] as number;
      for (const value of [t, nextAfter(t, 1), nextAfter(t, -1)])
        rows.push(Float64Array.from(base).fill(value, f, f + 1));
    }
  }
  for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e300]) {
    rows.push(new Float64Array(F).fill(value));
  }
  return rows;
}

async function expectParity(
  bytes: Uint8Array,
  rows: Float64Array[],
  predict: (x: Float64Array) => number,
): Promise<void> {
  const out = await runForecaster(bytes, rows, F);
  let mismatches = 0;
  rows.forEach((x, i) => {
    if (!Object.is(out[i], predict(x))) mismatches++;
  });
  expect({ rows: rows.length, mismatches }).toEqual({ rows: rows.length, mismatches: 0 });
}

describe("ONNX export", () => {
  describe("GBDT → ai.onnx.ml TreeEnsemble (float64)", () => {
    it.each(["BTC", "ETH"])(
      "%s daily: onnxruntime-web equals the in-memory predict bit for bit on every test row",
      async (symbol) => {
        const data = symbol === "BTC" ? btc : eth;
        const model = trainGbdt(data.train, {
          nTrees: 40,
          maxDepth: 6,
          maxLeaves: 31,
          minSamplesLeaf: 20,
          earlyStoppingRounds: 0,
        });
        await expectParity(exportGbdt(model, meta), data.test.X as Float64Array[], (x) =>
          predictGbdt(model, x),
        );
      },
    );

    it("routes like predict at the thresholds themselves, one ulp either side, and for NaN / ±Infinity / -0", async () => {
      const model = trainGbdt(btc.train, { nTrees: 10, earlyStoppingRounds: 0 });
      const rows = edgeRows(model, btc.test.X[0] as Float64Array);
      expect(rows.length).toBeGreaterThan(100);
      await expectParity(exportGbdt(model, meta), rows, (x) => predictGbdt(model, x));
    });

    it("exports a tree without a split (a single leaf) and a model without trees", async () => {
      const stumps = trainGbdt(btc.train, { nTrees: 3, minSamplesLeaf: btc.train.X.length, subsample: 1 });
      expect(stumps.trees.every((t) => t.feature[0] === -1)).toBe(true);
      const rows = btc.test.X.slice(0, 20) as Float64Array[];
      await expectParity(exportGbdt(stumps, meta), rows, (x) => predictGbdt(stumps, x));
      const empty: GbdtModel = { ...stumps, trees: [] };
      const out = await runForecaster(exportGbdt(empty, meta), rows, F);
      expect(Array.from(out)).toEqual(rows.map(() => empty.baseScore));
    });
  });

  describe("ridge → MatMul + Add (float64)", () => {
    it.each(["BTC", "ETH"])(
      "%s daily: onnxruntime-web equals the in-memory predict bit for bit on every test row",
      async (symbol) => {
        const data = symbol === "BTC" ? btc : eth;
        const model = trainRidge(data.train, {}, data.validation);
        await expectParity(exportRidge(model, meta), data.test.X as Float64Array[], (x) =>
          predictRidge(model, x),
        );
      },
    );

    it("matches on rows far from the training data too", async () => {
      const model: RidgeModel = trainRidge(btc.train, { alphas: [1] });
      const rows = [1e-300, -1e6, 3.5, 1e150].map((v) =>
        Float64Array.from({ length: F }, (_, f) => v * (f % 2 ? -1 : 1) * (1 + f / 7)),
      );
      await expectParity(exportRidge(model, meta), rows, (x) => predictRidge(model, x));
    });
  });

  it.each(["gbdt", "ridge"] as const)(
    "%s: a batch of one row (as serving runs it) gives the bits of the full batch",
    async (family) => {
      const rows = btc.test.X.slice(0, 60) as Float64Array[];
      const bytes =
        family === "gbdt"
          ? exportGbdt(trainGbdt(btc.train, { nTrees: 30, earlyStoppingRounds: 0 }), meta)
          : exportRidge(trainRidge(btc.train, { alphas: [10] }), meta);
      const batch = await runForecaster(bytes, rows, F);
      const single = await Promise.all(rows.map(async (x) => (await runForecaster(bytes, [x], F))[0]));
      expect(single.every((v, i) => Object.is(v, batch[i]))).toBe(true);
    },
  );

  describe("the model file", () => {
    const decode = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes);

    it.each(["gbdt", "ridge"] as const)(
      "%s: IR 10, opsets 21 + ai.onnx.ml 5, producer edgeml, float64 features [batch, F] → log_return [batch, 1]",
      (family) => {
        const bytes =
          family === "gbdt"
            ? exportGbdt(trainGbdt(btc.train, { nTrees: 2 }), meta)
            : exportRidge(trainRidge(btc.train, { alphas: [1] }), meta);
        const model = decode(bytes);
        expect(Number(model.irVersion)).toBe(10);
        expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([
          ["", 21],
          ["ai.onnx.ml", 5],
        ]);
        expect(model.producerName).toBe("edgeml");
        expect(model.producerVersion).toMatch(/^\d+\.\d+\.\d+/);
        expect(model.docString).toBe("test model");
        const graph = model.graph as InstanceType<typeof onnx.GraphProto>;
        const tensor = (v: OnnxTypes.IValueInfoProto) => ({
          name: v.name,
          elemType: v.type?.tensorType?.elemType,
          dims: v.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(d.dimValue)),
        });
        expect(graph.input.map(tensor)).toEqual([
          { name: "features", elemType: onnx.TensorProto.DataType.DOUBLE, dims: ["batch", F] },
        ]);
        expect(graph.output.map(tensor)).toEqual([
          { name: "log_return", elemType: onnx.TensorProto.DataType.DOUBLE, dims: ["batch", 1] },
        ]);
        const props = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
        expect(props).toMatchObject({
          feature_set: "crypto-ohlcv",
          feature_set_version: "1",
          target: "log_return",
          family,
          symbol: "BTC",
          interval: "1d",
          horizon_bars: "1",
        });
        expect(JSON.parse(props.feature_names as string)).toEqual(FEATURE_NAMES);
      },
    );

    it("uses TreeEnsemble with BRANCH_LEQ on double splits and no missing-value tracks", () => {
      const model = decode(exportGbdt(trainGbdt(btc.train, { nTrees: 3 }), meta));
      const node = model.graph?.node?.[0];
      expect([node?.domain, node?.opType]).toEqual(["ai.onnx.ml", "TreeEnsemble"]);
      const attr = (name: string) => node?.attribute?.find((a) => a.name === name);
      expect(attr("nodes_splits")?.t?.dataType).toBe(onnx.TensorProto.DataType.DOUBLE);
      expect(attr("leaf_weights")?.t?.dataType).toBe(onnx.TensorProto.DataType.DOUBLE);
      expect([...(attr("nodes_modes")?.t?.rawData ?? [])].every((m) => m === 0)).toBe(true);
      expect(attr("nodes_missing_value_tracks_true")?.ints?.every((v) => Number(v) === 0)).toBe(true);
    });

    it("is the same bytes for the same model", () => {
      const model = trainGbdt(btc.train, { nTrees: 5 });
      expect(Buffer.from(exportGbdt(model, meta)).equals(Buffer.from(exportGbdt(model, meta)))).toBe(true);
    });
  });
});
