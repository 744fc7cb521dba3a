import { beforeAll, describe, expect, it } from "vitest";
import { FEATURE_NAMES } from "../../src/features/index.js";
import {
  binThresholds,
  type Dataset,
  type GbdtModel,
  type GbdtTree,
  predictGbdt,
  trainGbdt,
} from "../../src/training/gbdt.js";
import { realSplits } from "./data.js";

let daily: { train: Dataset; validation: Dataset; test: Dataset };
beforeAll(async () => {
  daily = await realSplits("BTC", "1d", 1);
});

const column = (name: string) => FEATURE_NAMES.indexOf(name);

/** Depth of every leaf, and the rows each leaf receives. */
function leaves(tree: GbdtTree, X: readonly Float64Array[]): { depth: number; rows: number }[] {
  const out = new Map<number, { depth: number; rows: number }>();
  const walk = (node: number, depth: number) => {
    if ((tree.feature[node] as number) < 0) out.set(node, { depth, rows: 0 });
    else {
      walk(tree.left[node] as number, depth + 1);
      walk(tree.right[node] as number, depth + 1);
    }
  };
  walk(0, 0);
  for (const x of X) {
    let node = 0;
    while ((tree.feature[node] as number) >= 0) {
      node =
        (x[tree.feature[node] as number] as number) <= (tree.threshold[node] as number)
          ? (tree.left[node] as number)
          : (tree.right[node] as number);
    }
    (out.get(node) as { rows: number }).rows++;
  }
  return [...out.values()];
}

function trainMse(model: GbdtModel, data: Dataset): number {
  let sum = 0;
  data.X.forEach((x, i) => {
    sum += (predictGbdt(model, x) - (data.y[i] as number)) ** 2;
  });
  return sum / data.X.length;
}

describe("histogram GBDT", () => {
  describe("binThresholds(X, F, maxBins)", () => {
    it("puts a bin edge midway between the distinct values of a column that has few (dow_sin: 7 weekdays)", () => {
      const edges = binThresholds(daily.train.X, FEATURE_NAMES.length, 255)[
        column("dow_sin")
      ] as Float64Array;
      const days = [...new Set(daily.train.X.map((x) => x[column("dow_sin")] as number))].sort(
        (a, b) => a - b,
      );
      expect(days).toHaveLength(7);
      expect(Array.from(edges)).toEqual(days.slice(1).map((d, i) => ((days[i] as number) + d) * 0.5));
    });

    it("gives a constant column no edge (hour of day on daily bars)", () => {
      expect(binThresholds(daily.train.X, FEATURE_NAMES.length, 255)[column("hour_sin")]).toHaveLength(0);
    });

    it.each([255, 64, 2])(
      "gives a continuous column at most maxBins - 1 = %i - 1 strictly ascending quantile edges",
      (maxBins) => {
        const edges = binThresholds(daily.train.X, FEATURE_NAMES.length, maxBins)[
          column("logret_1")
        ] as Float64Array;
        expect(edges.length).toBe(maxBins - 1);
        for (let i = 1; i < edges.length; i++) expect(edges[i]).toBeGreaterThan(edges[i - 1] as number);
        // Quantile edges: each bin holds about 1/maxBins of the rows.
        const below = daily.train.X.filter(
          (x) => (x[column("logret_1")] as number) <= (edges[Math.floor(edges.length / 2)] as number),
        ).length;
        expect(below / daily.train.X.length).toBeCloseTo(0.5, 1);
      },
    );
  });

  describe("trainGbdt(train, params, validation)", () => {
    it("learns a target that depends on one feature, and credits that feature with the gain", () => {
      // The target is a step in a real feature (not a price), placed on a bin edge: the trees must find it exactly.
      const vol = column("vol_20");
      const step = (
        binThresholds(daily.train.X, FEATURE_NAMES.length, 255)[vol] as Float64Array
      )[127] as number;
      const y = Float64Array.from(daily.train.X, (x) => ((x[vol] as number) > step ? 0.02 : -0.01));
      const model = trainGbdt(
        { X: daily.train.X, y },
        { nTrees: 100, learningRate: 0.3, subsample: 1, earlyStoppingRounds: 0 },
      );
      expect(trainMse(model, { X: daily.train.X, y })).toBeLessThan(1e-8);
      const total = model.featureGain.reduce((a, b) => a + b, 0);
      expect((model.featureGain[vol] as number) / total).toBeGreaterThan(0.99);
    });

    it.each([
      { maxDepth: 2, maxLeaves: 31, minSamplesLeaf: 20 },
      { maxDepth: 6, maxLeaves: 8, minSamplesLeaf: 20 },
      { maxDepth: 4, maxLeaves: 15, minSamplesLeaf: 300 },
    ])("keeps every tree within %j", (limits) => {
      const model = trainGbdt(daily.train, { ...limits, nTrees: 15, subsample: 1, earlyStoppingRounds: 0 });
      expect(model.trees).toHaveLength(15);
      for (const tree of model.trees) {
        const shape = leaves(tree, daily.train.X);
        expect(shape.length).toBeLessThanOrEqual(limits.maxLeaves);
        for (const leaf of shape) {
          expect(leaf.depth).toBeLessThanOrEqual(limits.maxDepth);
          expect(leaf.rows).toBeGreaterThanOrEqual(limits.minSamplesLeaf);
        }
      }
    });

    it("stops early on validation loss and keeps the best round", () => {
      const model = trainGbdt(daily.train, { nTrees: 200, earlyStoppingRounds: 10 }, daily.validation);
      const best = model.validationLoss.indexOf(Math.min(...model.validationLoss));
      expect(model.trees).toHaveLength(best);
      expect(model.validationLoss.length).toBeLessThanOrEqual(best + 11);
      expect(model.validationLoss.length).toBeLessThan(201);
    });

    it("with earlyStoppingRounds 0 keeps every round and still records the validation loss", () => {
      const model = trainGbdt(daily.train, { nTrees: 25, earlyStoppingRounds: 0 }, daily.validation);
      expect(model.trees).toHaveLength(25);
      expect(model.validationLoss).toHaveLength(26);
    });

    it("starts from the mean target, so with no tree it predicts the mean", () => {
      const model = trainGbdt(daily.train, { nTrees: 1 });
      const mean = daily.train.y.reduce((a, b) => a + b, 0) / daily.train.y.length;
      expect(model.baseScore).toBeCloseTo(mean, 15);
      expect(predictGbdt({ ...model, trees: [] }, daily.test.X[0] as Float64Array)).toBe(model.baseScore);
    });

    it("is deterministic: the same seed gives the same trees; another seed other rows, other trees", () => {
      const params = { nTrees: 20, subsample: 0.7, earlyStoppingRounds: 0 };
      const a = trainGbdt(daily.train, { ...params, seed: 7 });
      const b = trainGbdt(daily.train, { ...params, seed: 7 });
      const c = trainGbdt(daily.train, { ...params, seed: 8 });
      expect(b.trees).toEqual(a.trees);
      expect(b.baseScore).toBe(a.baseScore);
      expect(c.trees).not.toEqual(a.trees);
    });

    it.each([
      [{ nTrees: 0 }, /nTrees/],
      [{ learningRate: 0 }, /learningRate/],
      [{ maxBins: 256 }, /maxBins/],
      [{ subsample: 1.5 }, /subsample/],
      [{ maxLeaves: 1 }, /maxLeaves/],
      [{ seed: 0.5 }, /seed/],
    ])("rejects %j as invalid_parameters", (params, message) => {
      expect(() => trainGbdt(daily.train, params)).toThrow(
        expect.objectContaining({ kind: "invalid_parameters", message: expect.stringMatching(message) }),
      );
    });

    it("rejects non-finite features naming the row", () => {
      const X = daily.train.X.map((x) => Float64Array.from(x));
      (X[5] as Float64Array)[2] = Number.NaN;
      expect(() => trainGbdt({ X, y: daily.train.y })).toThrow(/training row 5 feature 2 is not finite/);
    });
  });
});
