/**
 * The selection policy of forecast models (SELECTION_POLICY=strict): which version serves when nobody chose one.
 *
 * A version is chosen only if it beats the naive "no change" forecast with significance: the one-sided
 * Diebold–Mariano test of its walk-forward evaluation (`report.walk_forward.dm_p_value`: loss absolute percentage
 * error, HAC variance, Harvey–Leybourne–Newbold correction, Student t) at α = 0.05, with the p-values of the
 * candidates tested together adjusted by Holm's step-down procedure, so that training several versions at once (two
 * families a day) does not multiply the chance that a lucky one passes. Otherwise the naive version serves.
 *
 * A candidate replaces the current automatic champion only if, on top of that, it beats the champion on the
 * walk-forward folds both were evaluated on (same calendar span and rows; folds sit on fixed calendar boundaries so
 * versions trained on different days share them): a lower MAPE on a strict majority of the shared folds and a lower
 * mean MAPE over them. With six-odd folds no fold-level test can reach 5 % after Holm (the exact one-sided sign
 * test's smallest p with 5 folds is 1/32), so the fold rule is a gate, not a test: its sign-test p-value is reported
 * in the evidence, never hidden. Across days the guard is that gate: a retrain must beat naive (DM, Holm across the
 * day's candidates) and the version it would replace, on the same rows; Holm does not control the error rate over
 * the sequence of days.
 *
 * Pure: the versions' metadata in, a decision out. The registry runs it where training runs and writes the champion
 * pointer with its evidence (src/selection/select.ts); resolution applies it per request only while a model has no
 * champion yet.
 */
import { z } from "zod";
import type { VersionMetadata } from "../registry/metadata.js";
import type { SelectionEvidence } from "../storage/pointers.js";

/** Significance level of the test against naive: the conventional 5 %, one-sided. */
export const SELECTION_ALPHA = 0.05;

/** The test, as evidence and docs name it. */
export const SELECTION_TEST =
  "one-sided Diebold–Mariano test of walk-forward absolute percentage errors against naive (HAC variance, HLN correction, Student t), Holm step-down across the candidates";

/** `best`: the highest BEST_METRIC, as before this policy (no test against naive). */
export const SELECTION_POLICIES = ["strict", "best"] as const;
export type SelectionPolicy = (typeof SELECTION_POLICIES)[number];

/** The tag value of the naive baseline's versions (`tags.family`). */
export const NAIVE_FAMILY = "naive";

/** Fewer shared folds than this and the fold comparison cannot say anything: no replacement. */
export const MIN_SHARED_FOLDS = 3;

const FoldSchema = z.object({
  from: z.string(),
  to: z.string(),
  rows: z.number(),
  skill: z.number(),
  mape: z.number().optional(),
  naive_mape: z.number().optional(),
});

/** What the policy reads of `report.walk_forward` (src/training/walk-forward.ts writes it). */
const WalkForwardSchema = z.object({
  folds: z.array(FoldSchema),
  dm_p_value: z.number().nullable().optional(),
  mean_skill: z.number().optional(),
});
export type WalkForwardEvidence = z.infer<typeof WalkForwardSchema>;
type Fold = z.infer<typeof FoldSchema>;

/** The version's walk-forward report, or undefined when it has none (trained before it existed, or brought). */
export function walkForwardOf(meta: VersionMetadata): WalkForwardEvidence | undefined {
  const parsed = WalkForwardSchema.safeParse(meta.report?.walk_forward);
  return parsed.success ? parsed.data : undefined;
}

/** The family a version says it is (`tags.family`, else `report.family`). */
export function familyOf(meta: VersionMetadata): string | undefined {
  const family = meta.tags?.family ?? meta.report?.family;
  return typeof family === "string" ? family : undefined;
}

export const isNaive = (meta: VersionMetadata) => familyOf(meta) === NAIVE_FAMILY;

/** A forecast model is one whose versions carry a forecast spec; models people bring keep BEST_METRIC. */
export const isForecastModel = (versions: readonly VersionMetadata[]) =>
  versions.some((meta) => meta.forecast !== undefined);

/** The version's one-sided DM p-value against naive: its walk-forward report's, else `metrics.dm_p_value`. */
export function dmPValueOf(meta: VersionMetadata): number | undefined {
  const p = walkForwardOf(meta)?.dm_p_value ?? meta.metrics?.dm_p_value;
  return typeof p === "number" && Number.isFinite(p) ? p : undefined;
}

/** Mean walk-forward skill: `metrics.wf_skill`, else the report's `mean_skill`. */
function wfSkillOf(meta: VersionMetadata): number {
  const skill = meta.metrics?.wf_skill ?? walkForwardOf(meta)?.mean_skill;
  return typeof skill === "number" && Number.isFinite(skill) ? skill : Number.NEGATIVE_INFINITY;
}

/** What a forecast response says about its version: whether it beats naive, and on what evidence. */
export interface ServingEvidence {
  beats_naive: boolean;
  evidence: { p_value: number | null; window: { from: string; to: string } | null; folds: number };
}

/**
 * From the serving version's metadata alone: `beats_naive` is its own DM p-value below α (the naive version never
 * does); a version without a walk-forward report has no evidence and does not beat naive.
 */
export function servingEvidence(meta: VersionMetadata, alpha = SELECTION_ALPHA): ServingEvidence {
  const wf = walkForwardOf(meta);
  const p = dmPValueOf(meta);
  return {
    beats_naive: !isNaive(meta) && p !== undefined && p < alpha,
    evidence: { p_value: p ?? null, window: windowOf(wf), folds: wf?.folds.length ?? 0 },
  };
}

function windowOf(wf: WalkForwardEvidence | undefined): { from: string; to: string } | null {
  const first = wf?.folds[0];
  const last = wf?.folds.at(-1);
  return first && last ? { from: first.from, to: last.to } : null;
}

/**
 * Holm's step-down procedure: adjusted p-values (the smallest level at which each hypothesis is rejected while the
 * family-wise error rate stays at that level): sort ascending, p(i)·(m − i + 1), made monotone, capped at 1. Reject
 * where the adjusted value is below α. A dozen lines with no library of ours doing it (jstat and simple-statistics
 * have no multiple-testing correction).
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => ({ p, i })).sort((a, b) => a.p - b.p || a.i - b.i);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(({ p, i }, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

/**
 * Exact one-sided sign test: P(at least `wins` of `n` fair coin flips), the chance of doing this well on the folds
 * if neither version were better. Binomial tail by hand: n is a handful of folds.
 */
export function signTestPValue(wins: number, n: number): number {
  if (n === 0) return 1;
  let coefficient = 1;
  let tail = 0;
  for (let k = 0; k <= n; k++) {
    if (k >= wins) tail += coefficient;
    coefficient = (coefficient * (n - k)) / (k + 1);
  }
  return tail / 2 ** n;
}

/** A fold's loss: MAPE, or, where a report has no MAPE, −skill (the same order on the same rows). */
const lossOf = (fold: Fold) => fold.mape ?? -fold.skill;

export interface FoldComparison {
  version: string;
  shared_folds: number;
  wins: number;
  mean_mape: number | null;
  current_mean_mape: number | null;
  sign_test_p_value: number | null;
  beats: boolean;
}

/**
 * The candidate against the current champion on the folds both were evaluated on (same from, to and rows). Against
 * the naive version the current's loss on each of the candidate's folds is the fold's naive MAPE (same rows).
 */
export function compareOnSharedFolds(candidate: VersionMetadata, current: VersionMetadata): FoldComparison {
  const mine = walkForwardOf(candidate)?.folds ?? [];
  const key = (f: Fold) => `${f.from}|${f.to}|${f.rows}`;
  let pairs: [Fold, number][];
  if (isNaive(current)) {
    // Naive's loss on a fold is the fold's naive MAPE; a report without MAPEs compares skill with naive's 0.
    pairs = mine.map((f) =>
      f.mape !== undefined && f.naive_mape !== undefined
        ? [f, f.naive_mape]
        : [{ ...f, mape: undefined }, -0],
    );
  } else {
    const theirs = new Map((walkForwardOf(current)?.folds ?? []).map((f) => [key(f), f] as const));
    pairs = mine.flatMap((f) => {
      const other = theirs.get(key(f));
      return other ? [[f, lossOf(other)] as [Fold, number]] : [];
    });
  }
  const n = pairs.length;
  const wins = pairs.filter(([f, other]) => lossOf(f) < other).length;
  const mean = (values: number[]) =>
    values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  const meanMine = mean(pairs.map(([f]) => lossOf(f)));
  const meanTheirs = mean(pairs.map(([, other]) => other));
  return {
    version: current.version,
    shared_folds: n,
    wins,
    mean_mape: meanMine,
    current_mean_mape: meanTheirs,
    sign_test_p_value: n ? signTestPValue(wins, n) : null,
    beats:
      n >= MIN_SHARED_FOLDS &&
      wins * 2 > n &&
      meanMine !== null &&
      meanTheirs !== null &&
      meanMine < meanTheirs,
  };
}

export interface PolicyInput {
  /** Every readable version of the model, ascending. */
  versions: readonly VersionMetadata[];
  /** The versions to consider for a change (a training run's new versions); default every non-naive version. */
  candidates?: readonly string[];
  /** The champion the policy chose before (an automatic champion), which a candidate must also beat. */
  current?: string;
  alpha?: number;
}

/** One candidate as the policy judged it, for the audit entry's reason. */
export interface CandidateVerdict {
  version: string;
  p_value: number | null;
  holm_p_value: number | null;
  against_current?: FoldComparison;
  eligible: boolean;
}

export type PolicyDecision =
  /** Serve `version` (the naive one when `naive`), on this evidence. */
  | {
      kind: "choose";
      version: string;
      naive: boolean;
      evidence: SelectionEvidence;
      verdicts: CandidateVerdict[];
      reason: string;
    }
  /** The current champion stays: no candidate passed. */
  | { kind: "keep"; version: string; verdicts: CandidateVerdict[]; reason: string }
  /** Nothing the policy can choose: no candidate passed and the model has no naive version. */
  | { kind: "none"; verdicts: CandidateVerdict[]; reason: string };

const pct = (p: number | null) => (p === null ? "none" : p < 0.0001 ? p.toExponential(2) : p.toFixed(4));

function describe(verdicts: readonly CandidateVerdict[]): string {
  if (verdicts.length === 0) return "no candidate with a walk-forward Diebold–Mariano p-value";
  return verdicts
    .map((v) => {
      const cmp = v.against_current
        ? `; vs ${v.against_current.version} on ${v.against_current.shared_folds} shared folds: lower MAPE on ${v.against_current.wins}, mean ${v.against_current.mean_mape?.toFixed(4) ?? "-"} vs ${v.against_current.current_mean_mape?.toFixed(4) ?? "-"}`
        : "";
      return `v${v.version}: p ${pct(v.p_value)}, Holm ${pct(v.holm_p_value)}${cmp} → ${v.eligible ? "passes" : "fails"}`;
    })
    .join("; ");
}

/** The strict policy's decision for one model (see the module comment for the rule). */
export function decideChampion(input: PolicyInput): PolicyDecision {
  const alpha = input.alpha ?? SELECTION_ALPHA;
  const byVersion = new Map(input.versions.map((meta) => [meta.version, meta] as const));
  const naive = input.versions.filter(isNaive).at(-1);
  const current = input.current === undefined ? undefined : byVersion.get(input.current);
  const named = input.candidates ?? input.versions.map((meta) => meta.version);
  const candidates = named
    .map((version) => byVersion.get(version))
    .filter((meta): meta is VersionMetadata => meta !== undefined && !isNaive(meta) && meta !== current)
    .filter((meta) => dmPValueOf(meta) !== undefined);
  const raw = candidates.map((meta) => dmPValueOf(meta) as number);
  const adjusted = holmAdjust(raw);
  const verdicts: CandidateVerdict[] = candidates.map((meta, i) => {
    const holm = adjusted[i] as number;
    const against = current ? compareOnSharedFolds(meta, current) : undefined;
    return {
      version: meta.version,
      p_value: raw[i] as number,
      holm_p_value: holm,
      ...(against ? { against_current: against } : {}),
      eligible: holm < alpha && (against?.beats ?? true),
    };
  });
  // Among those that pass, the best mean walk-forward skill; ties go to the newer version.
  let winner: { meta: VersionMetadata; verdict: CandidateVerdict } | undefined;
  candidates.forEach((meta, i) => {
    const verdict = verdicts[i] as CandidateVerdict;
    if (verdict.eligible && (!winner || wfSkillOf(meta) >= wfSkillOf(winner.meta)))
      winner = { meta, verdict };
  });
  const summary = describe(verdicts);
  const level = `α = ${alpha}, Holm across ${candidates.length} candidate${candidates.length === 1 ? "" : "s"}`;
  if (winner) {
    const wf = walkForwardOf(winner.meta);
    const { against_current } = winner.verdict;
    return {
      kind: "choose",
      version: winner.meta.version,
      naive: false,
      verdicts,
      reason: `selection policy (strict): v${winner.meta.version} beats naive with significance (${level}) and has the best mean walk-forward skill among those that do${current ? `, and beats the current v${current.version} on their shared folds` : ""}: ${summary}`,
      evidence: {
        p_value: winner.verdict.p_value,
        holm_p_value: winner.verdict.holm_p_value,
        test: SELECTION_TEST,
        alpha,
        window: windowOf(wf),
        folds: wf?.folds.length ?? 0,
        ...(against_current
          ? {
              compared_with: {
                version: against_current.version,
                shared_folds: against_current.shared_folds,
                wins: against_current.wins,
                mean_mape: against_current.mean_mape,
                current_mean_mape: against_current.current_mean_mape,
                sign_test_p_value: against_current.sign_test_p_value,
              },
            }
          : {}),
      },
    };
  }
  if (current) {
    return {
      kind: "keep",
      version: current.version,
      verdicts,
      reason: `selection policy (strict): v${current.version} stays; no candidate beats naive with significance (${level}) and v${current.version} on their shared folds: ${summary}`,
    };
  }
  if (!naive) {
    return {
      kind: "none",
      verdicts,
      reason: `selection policy (strict): no version beats naive with significance (${level}) and the model has no naive version to serve: ${summary}`,
    };
  }
  const best = verdicts.reduce<CandidateVerdict | undefined>(
    (a, v) => (a === undefined || (v.p_value ?? 1) < (a.p_value ?? 1) ? v : a),
    undefined,
  );
  const wf = walkForwardOf(naive);
  return {
    kind: "choose",
    version: naive.version,
    naive: true,
    verdicts,
    reason: `selection policy (strict): naive v${naive.version} serves; no version beats naive with significance (${level}): ${summary}`,
    evidence: {
      // The strongest evidence there was against naive, and why it was not enough.
      p_value: best?.p_value ?? null,
      holm_p_value: best?.holm_p_value ?? null,
      test: `${SELECTION_TEST}; no candidate rejected "no better than naive", so the naive version serves`,
      alpha,
      window: windowOf(wf),
      folds: wf?.folds.length ?? 0,
    },
  };
}
