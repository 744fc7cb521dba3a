/**
 * The naive baseline as a registered version: an ONNX model that predicts no change (log return 0 for every row),
 * with the input, output, feature set and forecast spec of the model's trained versions, so that it registers,
 * verifies and serves like any of them. It is what serves when no version beats it with significance.
 */
import type { RegistrationInput } from "../registry/metadata.js";
import { NAIVE_FAMILY } from "./policy.js";

/** What the naive version's ONNX export needs: the trained versions' contract (src/training/onnx/export.ts). */
export interface NaiveExportInput {
  featureSet: { name: string; version: number };
  featureNames: readonly string[];
  symbol: string;
  interval: string;
  horizonBars: number;
  description: string;
}

/** Exports the naive baseline's ONNX bytes: `exportNaive` of src/training, reached through the trainer port. */
export type NaiveExporter = (input: NaiveExportInput) => Uint8Array;

interface Fold {
  from: string;
  to: string;
  rows: number;
  naive_mape?: number;
}

/**
 * The naive version's walk-forward report, on the folds of a sibling trained in the same run: on every fold its
 * skill is 0 and its MAPE the naive MAPE, by definition. Its loss differential against naive is 0 on every row, so
 * the Diebold–Mariano test has nothing to reject: p = 1, and it never "beats naive".
 */
function naiveWalkForward(sibling: Record<string, unknown> | undefined): Record<string, unknown> {
  const folds = Array.isArray(sibling?.folds) ? (sibling.folds as Fold[]) : [];
  const rows = folds.reduce((sum, f) => sum + f.rows, 0);
  const naiveMape = typeof sibling?.naive_mape === "number" ? sibling.naive_mape : undefined;
  return {
    fold_rule: sibling?.fold_rule,
    period: sibling?.period,
    embargo_rows: sibling?.embargo_rows,
    folds: folds.map((f) => ({
      from: f.from,
      to: f.to,
      rows: f.rows,
      skill: 0,
      mape: f.naive_mape,
      naive_mape: f.naive_mape,
    })),
    rows,
    mean_skill: 0,
    std_skill: 0,
    pooled_skill: 0,
    mape: naiveMape,
    naive_mape: naiveMape,
    loss: sibling?.loss,
    dm_statistic: 0,
    dm_p_value: 1,
    dm_alternative: "model_beats_naive",
    note: "the naive forecast itself: its loss differential against naive is 0 on every row, so the test has nothing to reject (p = 1)",
  };
}

/**
 * The registration of the naive version, from a sibling's (a version trained in the same run): the same feature
 * set, forecast spec and golden inputs, with outputs of 0; skill 0 (exactly naive) in the metrics and the
 * walk-forward report.
 */
export function naiveRegistrationOf(sibling: RegistrationInput): RegistrationInput {
  const spec = sibling.forecast;
  const cases = sibling.golden?.cases ?? [];
  const report = sibling.report ?? {};
  const walkForward = naiveWalkForward(report.walk_forward as Record<string, unknown> | undefined);
  const naiveMape = sibling.metrics?.naive_mape;
  return {
    description: `${spec?.symbol ?? "?"} ${spec?.horizon ?? "?"} naive baseline: predicts no change (log return 0), the forecast every other version must beat`,
    tags: { ...sibling.tags, family: NAIVE_FAMILY },
    metrics: {
      skill: 0,
      wf_skill: 0,
      dm_p_value: 1,
      ...(naiveMape === undefined ? {} : { mape: naiveMape, naive_mape: naiveMape }),
      ...(sibling.metrics?.test_rows === undefined ? {} : { test_rows: sibling.metrics.test_rows }),
    },
    feature_set: sibling.feature_set,
    feature_names: sibling.feature_names,
    forecast: spec,
    golden: {
      atol: 0,
      cases: cases.map((c) => ({
        inputs: c.inputs,
        outputs: c.outputs.map((o) => {
          const rows = o.shape[0] ?? 0;
          return { name: o.name, datatype: o.datatype, shape: [rows, 1], data: new Array(rows).fill(0) };
        }),
      })),
    },
    data_cutoff: sibling.data_cutoff,
    report: {
      family: NAIVE_FAMILY,
      rule: "log return 0 for every row: the forecast price is the last close",
      symbol: spec?.symbol,
      interval: spec?.interval,
      horizonBars: spec?.horizon_bars,
      walk_forward: walkForward,
    },
  };
}

/** The export input of the naive version, from the same sibling registration. */
export function naiveExportInputOf(sibling: RegistrationInput): NaiveExportInput {
  const spec = sibling.forecast;
  if (!spec || !sibling.feature_set || !sibling.feature_names) {
    throw new Error("naive baseline: the sibling registration has no forecast spec or feature set");
  }
  return {
    featureSet: sibling.feature_set,
    featureNames: sibling.feature_names,
    symbol: spec.symbol,
    interval: spec.interval,
    horizonBars: spec.horizon_bars,
    // No dates: the same model has the same bytes whenever it is built.
    description: `${spec.symbol} ${spec.horizon} naive baseline: log return 0 (no change) for every row`,
  };
}
