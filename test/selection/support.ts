import { FEATURE_NAMES, FEATURE_SET } from "../../src/features/index.js";
import type { RegistrationInput, VersionMetadata } from "../../src/registry/metadata.js";
import { exportNaive, exportRidge } from "../../src/training/onnx/export.js";

/** Six quarterly folds on fixed calendar boundaries, as the walk-forward writes them. */
export const QUARTERS = [
  ["2024-07-01T00:00:00.000Z", "2024-10-01T00:00:00.000Z"],
  ["2024-10-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"],
  ["2025-01-01T00:00:00.000Z", "2025-04-01T00:00:00.000Z"],
  ["2025-04-01T00:00:00.000Z", "2025-07-01T00:00:00.000Z"],
  ["2025-07-01T00:00:00.000Z", "2025-10-01T00:00:00.000Z"],
  ["2025-10-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"],
] as const;

/** The naive MAPE of every fold: the same rows for every version. */
export const NAIVE_MAPE = 2;

export interface VersionSpec {
  family?: "gbdt" | "ridge" | "naive";
  /** One-sided DM p-value against naive; undefined: no walk-forward report at all. */
  p?: number;
  /** Per-fold MAPE (naive is NAIVE_MAPE on each); default a little better than naive on every fold. */
  mapes?: readonly number[];
  /** Fold spans; default QUARTERS. */
  folds?: readonly (readonly [string, string])[];
  wfSkill?: number;
  /** Test-split skill (what BEST_METRIC ranks). */
  skill?: number;
}

/** The walk-forward report of a version in the shape src/training/walk-forward.ts writes. */
export function walkForward(spec: VersionSpec) {
  const spans = spec.folds ?? QUARTERS;
  const mapes = spec.mapes ?? spans.map(() => NAIVE_MAPE * 0.99);
  const folds = spans.map(([from, to], i) => {
    const mape = mapes[i] ?? NAIVE_MAPE;
    return { from, to, rows: 90, skill: 1 - mape / NAIVE_MAPE, mape, naive_mape: NAIVE_MAPE };
  });
  const skills = folds.map((f) => f.skill);
  return {
    folds,
    dm_p_value: spec.p,
    dm_statistic: -1,
    mean_skill: spec.wfSkill ?? skills.reduce((a, b) => a + b, 0) / skills.length,
    std_skill: 0,
    loss: "absolute_percentage_error",
    embargo_rows: 1,
    fold_rule: "expanding window, quarterly folds",
  };
}

/** Registration metadata of a BTC-24h version as trainSymbol writes it, from a spec. */
export function registration(spec: VersionSpec): RegistrationInput {
  const family = spec.family ?? "gbdt";
  const wf = spec.p === undefined && family !== "naive" ? undefined : walkForward(spec);
  return {
    tags: { family, symbol: "BTC", interval: "1d", trainer: "edgeml" },
    metrics: {
      skill: spec.skill ?? 0,
      ...(wf ? { wf_skill: wf.mean_skill, dm_p_value: wf.dm_p_value ?? 1 } : {}),
    },
    feature_set: { ...FEATURE_SET },
    feature_names: [...FEATURE_NAMES],
    forecast: { symbol: "BTC", interval: "1d", horizon: "24h", horizon_bars: 1, target: "log_return" },
    ...(wf ? { report: { family, walk_forward: wf } } : {}),
  };
}

/** Metadata as the registry would hold it (for the pure policy and resolution). */
export function meta(version: string, spec: VersionSpec): VersionMetadata {
  return { name: "BTC-24h", version, ...registration(spec) } as unknown as VersionMetadata;
}

const exportMeta = (description: string) => ({
  featureSet: FEATURE_SET,
  featureNames: FEATURE_NAMES,
  symbol: "BTC",
  interval: "1d",
  horizonBars: 1,
  description,
});

/**
 * Real ONNX bytes of a 30-feature forecaster: a ridge with zero weights and intercept `tilt` (each version its own
 * bytes), or the naive baseline.
 */
export function forecasterBytes(family: VersionSpec["family"], tilt: number): Uint8Array {
  if (family === "naive") return exportNaive(exportMeta("naive"));
  return exportRidge(
    {
      family: "ridge",
      nFeatures: FEATURE_NAMES.length,
      weights: new Float64Array(FEATURE_NAMES.length),
      intercept: tilt,
      standardizedWeights: new Float64Array(FEATURE_NAMES.length),
      alpha: 1,
    } as Parameters<typeof exportRidge>[0],
    exportMeta(`tilt ${tilt}`),
  );
}
