/**
 * What a rollout decision counts: outcomes, and pairs of them. Pure, so a test recomputes every number from a log
 * listing.
 *
 * An outcome is a distinct (version, target bar) resolved against the market. Copies of one cached forecast (a new
 * prediction id each time the cache expires, the same version and as-of bar) are one outcome: counting each copy
 * would weigh a bar by how often it was asked for, and make a busy hour look like evidence.
 */
import type { PredictionRecord, PredictionSource } from "../storage/prediction-log.js";

/** One resolved forecast, as a decision reads it. */
export interface Outcome {
  version: string;
  prediction_id: string;
  as_of: string;
  target_time: string;
  served_at: string;
  /** |error_pct|: the absolute percentage error of the forecast, in percent. */
  ape: number;
  /** |naive_error_pct|: the no-change forecast's, on the same bar. */
  naive_ape: number;
}

/** Which records count: their sources, and bounds on when they were made (`served_at`, ms, inclusive). */
export interface Scope {
  sources: readonly PredictionSource[];
  from: number;
  to: number;
}

/**
 * How two versions' outcomes are paired. `shadow_of`: a shadow forecast with the champion answer it was computed
 * beside (the same request's features), so both are the same forecast occasion. `bar`: the bars both versions have
 * an outcome for (a canary, where different clients got different versions over the same period; and any replayed
 * source, where versions are replayed over the same bars).
 */
export type Pairing = "shadow_of" | "bar";

export interface Pair {
  target_time: string;
  champion: Outcome;
  challenger: Outcome;
}

/**
 * A record served at or after `from`: a backfilled forecast is served at its as-of, so the same bounds select a
 * replayed range.
 */
export const inScope = (record: PredictionRecord, scope: Scope): boolean => {
  const served = Date.parse(record.served_at);
  return scope.sources.includes(record.source) && served >= scope.from && served <= scope.to;
};

function outcomeOf(record: PredictionRecord): Outcome | undefined {
  if (record.error_pct === undefined || record.naive_error_pct === undefined) return undefined;
  return {
    version: record.version,
    prediction_id: record.prediction_id,
    as_of: record.as_of,
    target_time: record.target_time,
    served_at: record.served_at,
    ape: Math.abs(record.error_pct),
    naive_ape: Math.abs(record.naive_error_pct),
  };
}

/** The first copy served (then the smaller prediction id): the same choice whatever order the log lists them in. */
const earlier = (a: Outcome, b: Outcome) =>
  a.served_at < b.served_at || (a.served_at === b.served_at && a.prediction_id < b.prediction_id);

/** One outcome per (version, target bar) of the resolved records, oldest target first. */
export function distinctOutcomes(records: readonly PredictionRecord[]): Outcome[] {
  const byBar = new Map<string, Outcome>();
  for (const record of records) {
    const outcome = outcomeOf(record);
    if (!outcome) continue;
    const key = `${outcome.version} ${Date.parse(outcome.target_time)}`;
    const kept = byBar.get(key);
    if (!kept || earlier(outcome, kept)) byBar.set(key, outcome);
  }
  return [...byBar.values()].sort(byTarget);
}

const byTarget = (a: { target_time: string }, b: { target_time: string }) =>
  Date.parse(a.target_time) - Date.parse(b.target_time);

/** Pairs on the bars both versions have an outcome for, oldest first. */
export function pairByBar(champion: readonly Outcome[], challenger: readonly Outcome[]): Pair[] {
  const theirs = new Map(champion.map((o) => [Date.parse(o.target_time), o]));
  return challenger.flatMap((mine) => {
    const other = theirs.get(Date.parse(mine.target_time));
    return other ? [{ target_time: mine.target_time, champion: other, challenger: mine }] : [];
  });
}

/**
 * Pairs each resolved shadow forecast of the challenger with the resolved champion answer it was computed beside
 * (`shadow_of` = the answer's prediction id); several pairs on one bar (cached copies of the answer, each mirrored)
 * are one pair, the first served.
 */
export function pairByShadow(
  championRecords: readonly PredictionRecord[],
  shadowRecords: readonly PredictionRecord[],
): Pair[] {
  const answers = new Map<string, Outcome>();
  for (const record of championRecords) {
    const outcome = outcomeOf(record);
    if (outcome) answers.set(record.prediction_id, outcome);
  }
  const byBar = new Map<number, Pair>();
  for (const record of shadowRecords) {
    const mine = outcomeOf(record);
    const other = record.shadow_of === undefined ? undefined : answers.get(record.shadow_of);
    if (!mine || !other) continue;
    const bar = Date.parse(mine.target_time);
    const kept = byBar.get(bar);
    if (!kept || earlier(other, kept.champion)) {
      byBar.set(bar, { target_time: mine.target_time, champion: other, challenger: mine });
    }
  }
  return [...byBar.values()].sort(byTarget);
}

/** The records of the two versions in scope, their distinct outcomes, and their pairs. */
export function pairsOf(
  records: readonly PredictionRecord[],
  versions: { champion: string; challenger: string },
  scope: Scope,
  pairing: Pairing,
): { champion: Outcome[]; challenger: Outcome[]; pairs: Pair[] } {
  const counted = records.filter((r) => inScope(r, scope));
  const of = (version: string, shadow: boolean) =>
    counted.filter((r) => r.version === version && (r.source === "shadow") === shadow);
  const championRecords = of(versions.champion, false);
  // A shadow rollout's challenger only ever runs as a shadow; elsewhere its records are served ones.
  const challengerRecords = of(versions.challenger, pairing === "shadow_of");
  const champion = distinctOutcomes(championRecords);
  const challenger = distinctOutcomes(challengerRecords);
  const pairs =
    pairing === "shadow_of"
      ? pairByShadow(championRecords, challengerRecords)
      : pairByBar(champion, challenger);
  return { champion, challenger, pairs };
}
