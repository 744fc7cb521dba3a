import { beforeAll, describe, expect, it } from "vitest";
import { FEATURE_NAMES } from "../../src/features/index.js";
import type { Dataset } from "../../src/training/gbdt.js";
import { predictRidge, trainRidge } from "../../src/training/ridge.js";
import { realSplits } from "./data.js";

let daily: { train: Dataset; validation: Dataset; test: Dataset };
beforeAll(async () => {
  daily = await realSplits("ETH", "1d", 1);
});

const column = (name: string) => FEATURE_NAMES.indexOf(name);

describe("ridge regression", () => {
  it("reproduces a target that is linear in the real features (alpha near 0)", () => {
    // Weights themselves are not identifiable: logret_2 = logret_1 + logret_1_lag1 exactly, and so on.
    const truth = FEATURE_NAMES.map((_, f) => (f % 3 === 0 ? 0 : 0.001 * (f + 1)));
    const target = (x: Float64Array) => 0.003 + x.reduce((sum, v, f) => sum + v * (truth[f] as number), 0);
    const model = trainRidge(
      { X: daily.train.X, y: Float64Array.from(daily.train.X, target) },
      { alphas: [1e-9] },
    );
    for (const x of daily.test.X) expect(predictRidge(model, x)).toBeCloseTo(target(x), 8);
  });

  it("gives a constant feature (hour of day on daily bars) weight 0", () => {
    const model = trainRidge(daily.train, { alphas: [10] });
    expect(model.weights[column("hour_sin")]).toBe(0);
    expect(model.weights[column("hour_cos")]).toBe(0);
    expect(model.standardizedWeights[column("hour_cos")]).toBe(0);
  });

  it("picks the alpha with the lowest validation MSE", () => {
    const alphas = [0.01, 1, 100, 10_000];
    const model = trainRidge(daily.train, { alphas }, daily.validation);
    expect(model.validationLoss).toHaveLength(4);
    expect(model.alpha).toBe(alphas[model.validationLoss.indexOf(Math.min(...model.validationLoss))]);
  });

  it("shrinks the weights as alpha grows", () => {
    const norm = (alpha: number) =>
      trainRidge(daily.train, { alphas: [alpha] }).standardizedWeights.reduce((a, w) => a + w * w, 0);
    expect(norm(1)).toBeGreaterThan(norm(100));
    expect(norm(100)).toBeGreaterThan(norm(100_000));
  });

  it("predicts x·w + b as a sequential sum from 0, then the intercept", () => {
    const model = trainRidge(daily.train, { alphas: [10] });
    const x = daily.test.X[3] as Float64Array;
    let sum = 0;
    for (let f = 0; f < x.length; f++) sum += (x[f] as number) * (model.weights[f] as number);
    expect(Object.is(predictRidge(model, x), sum + model.intercept)).toBe(true);
  });

  it.each([
    [{ alphas: [] }, /non-empty/],
    [{ alphas: [-1] }, />= 0/],
    [{ alphas: [1, 10] }, /needs a validation set/],
  ])("rejects %j as invalid_parameters", (params, message) => {
    expect(() => trainRidge(daily.train, params)).toThrow(
      expect.objectContaining({ kind: "invalid_parameters", message: expect.stringMatching(message) }),
    );
  });
});
