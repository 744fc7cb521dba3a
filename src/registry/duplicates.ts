import equal from "fast-deep-equal";
import type { VersionMetadata } from "./metadata.js";

/**
 * What makes two versions of a model the same version: the fields whose values decide every number a forecast or
 * an inference answers. That is the artifact's bytes (by sha256), the golden rows it must reproduce, the forecast
 * spec serving reads to fetch bars and turn the output into a price, the feature set with its names, and the
 * prediction-interval calibration whose quantiles set every served interval: the same bytes calibrated on other
 * rows answer other intervals, so they are another version.
 *
 * Deliberately not compared: metrics, the evaluation report (its training time differs on every run), tags,
 * description, data_cutoff and created_at. They describe a run, not the model: the same bytes evaluated twice are
 * one model, and a second version of it would only hand the selection another lottery ticket.
 */
export const CALIBRATION_FIELDS = [
  "sha256",
  "golden",
  "forecast",
  "feature_set",
  "feature_names",
  "calibration",
] as const;

export type Calibration = Pick<VersionMetadata, (typeof CALIBRATION_FIELDS)[number]>;

/**
 * Whether two versions have the same bytes and calibration: every field of CALIBRATION_FIELDS deep-equal (key order
 * ignored: fast-deep-equal, rather than comparing JSON text that depends on the order a client wrote). A field absent
 * from both is equal; absent from one only is not.
 */
export function sameCalibration(a: Calibration, b: Calibration): boolean {
  return CALIBRATION_FIELDS.every((field) => equal(a[field] ?? null, b[field] ?? null));
}

/** The oldest version among `existing` that a candidate equals, if any: the one a duplicate registration names. */
export function duplicateOf(
  candidate: Calibration,
  existing: readonly VersionMetadata[],
): VersionMetadata | undefined {
  return [...existing]
    .sort((a, b) => Number(a.version) - Number(b.version))
    .find((meta) => meta.sha256 === candidate.sha256 && sameCalibration(candidate, meta));
}
