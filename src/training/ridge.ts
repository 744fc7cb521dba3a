/**
 * Ridge regression, the baseline family: standardise the features, solve (XᵀX + αI) w = Xᵀy in closed form
 * (Cholesky, ml-matrix), choose α on the validation set. The model keeps the weights with the standardisation
 * folded in (w / σ, intercept − Σ μ·w / σ), so predicting is one dot product plus a bias: the exact arithmetic of the
 * exported ONNX MatMul + Add.
 */
import { CholeskyDecomposition, Matrix } from "ml-matrix";
import { TrainingError } from "./errors.js";
import type { Dataset } from "./gbdt.js";

export interface RidgeParams {
  /** Penalties tried, on standardised features; the one with the lowest validation MSE wins. */
  alphas: number[];
}

/** From barely regularised to strongly shrunk: with a faint signal the best α is often large. */
export const RIDGE_DEFAULTS: Readonly<RidgeParams> = Object.freeze({
  alphas: [0.1, 1, 10, 100, 1000, 10_000, 100_000],
});

export interface RidgeModel {
  family: "ridge";
  nFeatures: number;
  /** Weights on the raw features (standardisation folded in). */
  weights: Float64Array;
  intercept: number;
  /** Weights on the standardised features: their magnitudes are comparable, hence the importance. */
  standardizedWeights: Float64Array;
  alpha: number;
  params: RidgeParams;
  /** Validation MSE per α tried, in the order of params.alphas. */
  validationLoss: number[];
}

/** Standard deviations below this (relative to the mean's size) count as a constant feature, which gets weight 0. */
const CONSTANT_FEATURE = 1e-12;

export function trainRidge(
  train: Dataset,
  params: Partial<RidgeParams> = {},
  validation?: Dataset,
): RidgeModel {
  const p: RidgeParams = { alphas: [...(params.alphas ?? RIDGE_DEFAULTS.alphas)] };
  if (p.alphas.length === 0 || p.alphas.some((a) => !(a >= 0 && Number.isFinite(a)))) {
    throw new TrainingError(
      "invalid_parameters",
      "ridge alphas must be a non-empty list of finite numbers >= 0",
    );
  }
  if (p.alphas.length > 1 && !validation) {
    throw new TrainingError(
      "invalid_parameters",
      "choosing among several ridge alphas needs a validation set",
    );
  }
  const n = train.X.length;
  const F = n > 0 ? (train.X[0] as Float64Array).length : 0;
  if (n < 2 || train.y.length !== n || F === 0) {
    throw new TrainingError(
      "invalid_parameters",
      `ridge needs at least 2 training rows with features (${n} rows, ${train.y.length} targets)`,
    );
  }

  const mean = new Float64Array(F);
  const scale = new Float64Array(F);
  for (const row of train.X) for (let f = 0; f < F; f++) mean[f] = (mean[f] as number) + (row[f] as number);
  for (let f = 0; f < F; f++) mean[f] = (mean[f] as number) / n;
  for (const row of train.X) {
    for (let f = 0; f < F; f++) {
      const d = (row[f] as number) - (mean[f] as number);
      scale[f] = (scale[f] as number) + d * d;
    }
  }
  const active: number[] = [];
  for (let f = 0; f < F; f++) {
    scale[f] = Math.sqrt((scale[f] as number) / n);
    if ((scale[f] as number) > CONSTANT_FEATURE * Math.max(1, Math.abs(mean[f] as number))) active.push(f);
  }
  let yMean = 0;
  for (let i = 0; i < n; i++) yMean += train.y[i] as number;
  yMean /= n;

  const Z = new Matrix(n, active.length);
  for (let i = 0; i < n; i++) {
    const row = train.X[i] as Float64Array;
    for (let j = 0; j < active.length; j++) {
      const f = active[j] as number;
      Z.set(i, j, ((row[f] as number) - (mean[f] as number)) / (scale[f] as number));
    }
  }
  const yc = Matrix.columnVector(Array.from(train.y, (v) => v - yMean));
  const gram = Z.transpose().mmul(Z);
  const zty = Z.transpose().mmul(yc);

  let best: RidgeModel | undefined;
  const validationLoss: number[] = [];
  for (const alpha of p.alphas) {
    const A = gram.clone();
    for (let j = 0; j < active.length; j++) A.set(j, j, A.get(j, j) + alpha);
    const cholesky = new CholeskyDecomposition(A);
    if (!cholesky.isPositiveDefinite()) {
      throw new TrainingError(
        "invalid_parameters",
        `ridge system is singular at alpha ${alpha}; use a larger alpha`,
      );
    }
    const w = cholesky.solve(zty);
    const standardizedWeights = new Float64Array(F);
    const weights = new Float64Array(F);
    let intercept = yMean;
    for (let j = 0; j < active.length; j++) {
      const f = active[j] as number;
      standardizedWeights[f] = w.get(j, 0);
      weights[f] = w.get(j, 0) / (scale[f] as number);
      intercept -= (mean[f] as number) * (weights[f] as number);
    }
    const model: RidgeModel = {
      family: "ridge",
      nFeatures: F,
      weights,
      intercept,
      standardizedWeights,
      alpha,
      params: p,
      validationLoss,
    };
    const loss = validation ? mseOf(model, validation) : 0;
    validationLoss.push(loss);
    if (!best || loss < (validationLoss[p.alphas.indexOf(best.alpha)] as number)) best = model;
  }
  return best as RidgeModel;
}

/**
 * x·w + b with a sequential float64 sum from 0 in feature order, then the intercept: what onnxruntime's double
 * MatMul followed by Add computes, bit for bit (checked by the parity test on every training run).
 */
export function predictRidge(model: RidgeModel, x: ArrayLike<number>): number {
  let sum = 0;
  for (let f = 0; f < model.nFeatures; f++) sum += (x[f] as number) * (model.weights[f] as number);
  return sum + model.intercept;
}

function mseOf(model: RidgeModel, data: Dataset): number {
  let sum = 0;
  for (let i = 0; i < data.X.length; i++) {
    const e = predictRidge(model, data.X[i] as Float64Array) - (data.y[i] as number);
    sum += e * e;
  }
  return sum / data.X.length;
}
