/**
 * The rollout decisions, pure: pairs of outcomes and a clock in, a decision with the numbers it used out.
 *
 * The test is the selection policy's (src/selection/policy.ts): a one-sided Diebold–Mariano test on absolute
 * percentage error loss differentials, Newey–West (HAC) variance up to lag h − 1, Harvey–Leybourne–Newbold
 * correction, Student t, at α = SELECTION_ALPHA. The function itself is src/training/diebold-mariano.ts, injected
 * (`PairedTest`): its Student-t CDF (@stdlib, 37 KiB gzip) does not fit the edge bundle's budget, so the decisions
 * run where training runs (the Node server, the Vercel Node function) and the edge answers 501.
 */
import type { Rollout } from "../storage/pointers.js";
import type { Outcome, Pair, Pairing } from "./pairing.js";

/** src/training/diebold-mariano.ts's `dieboldMariano`: differentials in time order, the horizon in bars. */
export type PairedTest = (
  differentials: ArrayLike<number>,
  horizon: number,
) => { rows: number; statistic: number; pValue: number; lag: number; meanDifferential: number };

/** The challenger-vs-champion test, as evidence and docs name it. */
export const ROLLOUT_TEST =
  "one-sided Diebold–Mariano tests on paired absolute percentage errors, challenger − champion (HAC variance to lag h − 1, HLN correction, Student t): better and worse each at α";

/** The champion-vs-naive test of the rollback check. */
export const ROLLBACK_TEST =
  "one-sided Diebold–Mariano test on absolute percentage errors, champion − naive (the last close held flat, on the same records; HAC variance to lag h − 1, HLN correction, Student t): worse than naive at α";

export type RolloutAction = "promote" | "end" | "continue";
export type RolloutReason =
  | "challenger_better"
  | "challenger_worse"
  | "timeout"
  | "too_few_outcomes"
  | "not_significant"
  | "test_unavailable";

const mean = (values: readonly number[]) =>
  values.length === 0 ? null : values.reduce((sum, v) => sum + v, 0) / values.length;

/** The fewest differentials the test takes at horizon h (it needs more than 2h). */
export const testableAt = (horizon: number) => 2 * horizon + 1;

/** The numbers a rollout decision used: written to the audit entry (`rollout_evidence`) as they are. */
export interface RolloutEvidence extends Record<string, unknown> {
  test: string;
  alpha: number;
  source: string;
  pairing: Pairing;
  /** The bounds on `served_at` the records were counted within, and the target bars the pairs span. */
  window: { from: string | null; to: string | null; first_target: string | null; last_target: string | null };
  champion: string;
  challenger: string;
  /** Distinct resolved outcomes (version, target bar) of each version in scope. */
  outcomes: { champion: number; challenger: number };
  pairs: number;
  min_outcomes: number;
  mean_ape: { champion: number | null; challenger: number | null };
  /** Mean of challenger APE − champion APE, percentage points: negative when the challenger erred less. */
  mean_differential: number | null;
  horizon_bars: number;
  lag: number | null;
  /** The DM statistic of the differentials (negative favours the challenger); null when the test did not run. */
  dm_statistic: number | null;
  /** One-sided p-value of "the challenger's expected APE is lower". */
  p_value_better: number | null;
  /** One-sided p-value of "the challenger's expected APE is higher". */
  p_value_worse: number | null;
  elapsed_seconds: number;
  max_duration_seconds: number;
  /** What the numbers decided, and why: kept with them in the audit entry (`timeout` included). */
  action?: RolloutAction;
  reason?: RolloutReason;
}

export interface RolloutDecision {
  action: RolloutAction;
  reason: RolloutReason;
  /** The decision in a sentence, with its numbers: the audit entry's reason. */
  summary: string;
  evidence: RolloutEvidence;
}

export interface RolloutDecisionInput {
  rollout: Rollout;
  /** The version compared against: the rollout's champion, or what served without it when it had none. */
  champion: string;
  outcomes: { champion: readonly Outcome[]; challenger: readonly Outcome[] };
  pairs: readonly Pair[];
  pairing: Pairing;
  source: string;
  window: { from: number | null; to: number | null };
  horizon: number;
  now: Date;
  alpha: number;
  /** Absent where the test cannot run (the edge): the comparison is reported without it, and nothing decided. */
  test?: PairedTest;
}

const fmt = (value: number | null, digits = 4) => (value === null ? "–" : value.toFixed(digits));
const iso = (ms: number | null) => (ms === null || !Number.isFinite(ms) ? null : new Date(ms).toISOString());

/**
 * Once the versions have `min_outcomes` paired outcomes (and more than 2h, which the test needs): promote the
 * challenger when it is significantly better, end the rollout when it is significantly worse. Otherwise, end it once
 * `max_duration_seconds` have passed since it started (evidence first: a decided comparison is not a timeout), else
 * continue.
 */
export function decideRollout(input: RolloutDecisionInput): RolloutDecision {
  const { rollout, pairs, horizon, alpha } = input;
  const differentials = pairs.map((p) => p.challenger.ape - p.champion.ape);
  const needed = Math.max(rollout.min_outcomes, testableAt(horizon));
  const ran = input.test && pairs.length >= needed ? input.test(differentials, horizon) : undefined;
  const worse =
    ran && input.test
      ? input.test(
          differentials.map((d) => -d),
          horizon,
        )
      : undefined;
  const elapsed = (input.now.getTime() - Date.parse(rollout.started_at)) / 1000;
  const evidence: RolloutEvidence = {
    test: ROLLOUT_TEST,
    alpha,
    source: input.source,
    pairing: input.pairing,
    window: {
      from: iso(input.window.from),
      to: iso(input.window.to),
      first_target: pairs[0]?.target_time ?? null,
      last_target: pairs.at(-1)?.target_time ?? null,
    },
    champion: input.champion,
    challenger: rollout.challenger,
    outcomes: { champion: input.outcomes.champion.length, challenger: input.outcomes.challenger.length },
    pairs: pairs.length,
    min_outcomes: rollout.min_outcomes,
    mean_ape: {
      champion: mean(pairs.map((p) => p.champion.ape)),
      challenger: mean(pairs.map((p) => p.challenger.ape)),
    },
    mean_differential: mean(differentials),
    horizon_bars: horizon,
    lag: ran?.lag ?? null,
    dm_statistic: ran?.statistic ?? null,
    p_value_better: ran?.pValue ?? null,
    p_value_worse: worse?.pValue ?? null,
    elapsed_seconds: Math.max(0, Math.round(elapsed)),
    max_duration_seconds: rollout.max_duration_seconds,
  };
  const numbers = `${pairs.length} paired outcomes, mean APE ${fmt(evidence.mean_ape.challenger)} % (v${rollout.challenger}) vs ${fmt(evidence.mean_ape.champion)} % (v${input.champion}), DM ${fmt(evidence.dm_statistic, 3)}, p(better) ${fmt(evidence.p_value_better)}, p(worse) ${fmt(evidence.p_value_worse)}, α ${alpha}`;
  const decide = (action: RolloutAction, reason: RolloutReason, summary: string): RolloutDecision => ({
    action,
    reason,
    summary: `rollout ${rollout.id} (${rollout.mode}, ${input.source}): ${summary}`,
    evidence: { ...evidence, action, reason },
  });
  if (ran && worse) {
    if (ran.pValue < alpha) {
      return decide(
        "promote",
        "challenger_better",
        `v${rollout.challenger} is significantly better: ${numbers}`,
      );
    }
    if (worse.pValue < alpha) {
      return decide("end", "challenger_worse", `v${rollout.challenger} is significantly worse: ${numbers}`);
    }
  }
  if (elapsed >= rollout.max_duration_seconds) {
    return decide(
      "end",
      "timeout",
      `max_duration_seconds ${rollout.max_duration_seconds} passed (${evidence.elapsed_seconds} s since ${rollout.started_at}) undecided: ${numbers}`,
    );
  }
  if (!input.test) {
    return decide("continue", "test_unavailable", `the test runs where training runs: ${numbers}`);
  }
  if (!ran) {
    return decide(
      "continue",
      "too_few_outcomes",
      `${pairs.length} paired outcomes of the ${needed} needed (min_outcomes ${rollout.min_outcomes}, and more than 2h = ${2 * horizon} for the test)`,
    );
  }
  return decide("continue", "not_significant", `no significant difference yet: ${numbers}`);
}

/** The numbers of one version's live outcomes against naive. */
export interface NaiveComparison extends Record<string, unknown> {
  version: string;
  outcomes: number;
  mean_ape: number | null;
  naive_mean_ape: number | null;
  dm_statistic: number | null;
  /** One-sided p-value of "the version's expected APE is higher than naive's". */
  p_value_worse: number | null;
  /** The test ran (enough outcomes) and rejected "no worse than naive" at α. */
  loses: boolean;
  first_target: string | null;
  last_target: string | null;
}

/**
 * Whether a version's outcomes lose to naive significantly: naive's APE is known from the same records (the last
 * close held flat), so the differentials are |error| − |naive error| per distinct outcome. Too few outcomes: the
 * test does not run and the version does not lose.
 */
export function againstNaive(
  version: string,
  outcomes: readonly Outcome[],
  options: { horizon: number; alpha: number; minOutcomes: number; test: PairedTest },
): NaiveComparison {
  const d = outcomes.map((o) => o.ape - o.naive_ape);
  const enough = outcomes.length >= Math.max(options.minOutcomes, testableAt(options.horizon));
  // Tested as "naive is better than the version": the negated differentials' one-sided DM.
  const ran = enough
    ? options.test(
        d.map((x) => -x),
        options.horizon,
      )
    : undefined;
  return {
    version,
    outcomes: outcomes.length,
    mean_ape: mean(outcomes.map((o) => o.ape)),
    naive_mean_ape: mean(outcomes.map((o) => o.naive_ape)),
    dm_statistic: ran ? -ran.statistic : null,
    p_value_worse: ran?.pValue ?? null,
    loses: ran !== undefined && ran.pValue < options.alpha,
    first_target: outcomes[0]?.target_time ?? null,
    last_target: outcomes.at(-1)?.target_time ?? null,
  };
}
