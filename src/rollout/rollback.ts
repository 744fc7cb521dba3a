/**
 * The rollback check of a forecast model's champion: when its recent live outcomes lose to naive significantly (the
 * champion-vs-naive Diebold–Mariano test of ./decide.ts), the champion pointer steps back to the previous champion
 * in the audit stack that does not itself lose to naive significantly on its own live outcomes, or to the naive
 * version when none qualifies; written under the model's lock with an automatic `rollback` audit entry that carries
 * the numbers of every version it examined.
 *
 * A champion a person set is rolled back too: a live model that is significantly worse than "no change" is an
 * incident, and every forecast it serves meanwhile is a worse answer than the baseline the system already has. The
 * entry says that the champion was a person's, and the pointer stays theirs (`automatic` is left as it was), so the
 * selection policy does not take the model over because of it. Where there is nothing to roll back to (no earlier
 * champion, no naive version), it writes nothing and warns: an alert, not a guess.
 */
import type { VersionMetadata } from "../registry/metadata.js";
import { championStack } from "../registry/pointer-ops.js";
import type { Registry } from "../registry/registry.js";
import { isNaive, SELECTION_ALPHA } from "../selection/policy.js";
import type { AuditEntry, PointerStore } from "../storage/pointers.js";
import type { PredictionLog, PredictionSource } from "../storage/prediction-log.js";
import { againstNaive, type NaiveComparison, type PairedTest, ROLLBACK_TEST } from "./decide.js";
import { distinctOutcomes, inScope, type Outcome, type Scope } from "./pairing.js";
import { readRecords, writeChange } from "./store.js";

/**
 * Distinct live outcomes a version needs before the check may roll it back: above the test's 2h, and a month of a
 * daily forecaster, so that a few bad days after a promotion are not read as a verdict.
 */
export const ROLLBACK_MIN_OUTCOMES = 30;

/** The check reads the latest 60 days of a version's outcomes (by target time): its skill now, not its history's. */
export const ROLLBACK_WINDOW_DAYS = 60;

export interface RollbackVerdict {
  /** The champion checked; null when the model has none. */
  champion: string | null;
  /** `skip`: not checked (none, naive, not a forecaster); `alert`: loses, and there is nothing to roll back to. */
  action: "rollback" | "keep" | "skip" | "alert";
  to: string | null;
  summary: string;
  evidence: Record<string, unknown> | null;
  written: AuditEntry | null;
}

export interface RollbackDeps {
  log: PredictionLog;
  pointers: PointerStore;
  registry: Pick<Registry, "versions" | "history">;
  test?: PairedTest;
  now: () => Date;
  warn: (message: string, error?: unknown) => void;
  alpha?: number;
}

export interface RollbackOptions {
  /** `live`: the champion's live records since it last became champion; else that source's records. */
  source: "live" | "replay" | "backfill";
  from?: string | undefined;
  to?: string | undefined;
  dryRun: boolean;
}

const DAY_MS = 86_400_000;

/** When `version` last became champion, from the audit log; -∞ when the log does not say. */
function becameChampionAt(history: readonly AuditEntry[], version: string): number {
  const entry = history.findLast(
    (e) => (e.action === "promote" || e.action === "rollback") && e.to === version,
  );
  return entry ? Date.parse(entry.at) : Number.NEGATIVE_INFINITY;
}

/** The outcomes of the trailing window, ending at the version's latest one. */
function recent(outcomes: Outcome[]): Outcome[] {
  const last = outcomes.at(-1);
  if (!last) return outcomes;
  const from = Date.parse(last.target_time) - ROLLBACK_WINDOW_DAYS * DAY_MS;
  return outcomes.filter((o) => Date.parse(o.target_time) > from);
}

export async function checkChampion(
  deps: RollbackDeps,
  model: string,
  options: RollbackOptions,
): Promise<RollbackVerdict> {
  const pointers = await deps.pointers.get(model);
  const champion = pointers.champion ?? null;
  const skip = (summary: string): RollbackVerdict => ({
    champion,
    action: "skip",
    to: null,
    summary,
    evidence: null,
    written: null,
  });
  if (champion === null) {
    return skip("no champion pointer: the version that serves is chosen per request by the selection policy");
  }
  const versions = await deps.registry.versions(model);
  const meta = versions.find((m) => m.version === champion);
  if (!meta?.forecast) return skip(`v${champion} is not a forecaster: it has no outcomes to check`);
  if (isNaive(meta)) return skip(`v${champion} is the naive version: it cannot lose to itself`);
  if (!deps.test) return skip("the test runs where training runs");

  const test = deps.test;
  const alpha = deps.alpha ?? SELECTION_ALPHA;
  const horizon = meta.forecast.horizon_bars;
  const history = await deps.registry.history(model);
  const sources: PredictionSource[] = [options.source];
  const from = options.from === undefined ? Number.NEGATIVE_INFINITY : Date.parse(options.from);
  const to = options.to === undefined ? Number.POSITIVE_INFINITY : Date.parse(options.to);
  const compare = async (version: string, since: number): Promise<NaiveComparison> => {
    const scope: Scope = { sources, from: Math.max(from, since), to };
    const records = (
      await readRecords(deps.log, model, { version, source: options.source }, scope.from)
    ).filter((r) => inScope(r, scope));
    return againstNaive(version, recent(distinctOutcomes(records)), {
      horizon,
      alpha,
      minOutcomes: ROLLBACK_MIN_OUTCOMES,
      test,
    });
  };
  // Live: only what it served as champion; a replayed source has no such time (it is served at its as-of).
  const since = options.source === "live" ? becameChampionAt(history, champion) : Number.NEGATIVE_INFINITY;
  const checked = await compare(champion, since);
  const evidence: Record<string, unknown> = {
    test: ROLLBACK_TEST,
    alpha,
    source: options.source,
    min_outcomes: ROLLBACK_MIN_OUTCOMES,
    window_days: ROLLBACK_WINDOW_DAYS,
    since: Number.isFinite(since) ? new Date(since).toISOString() : null,
    champion: checked,
    person_set: pointers.automatic !== true,
  };
  const numbers = `${checked.outcomes} outcomes, mean APE ${checked.mean_ape?.toFixed(4) ?? "–"} % vs naive ${checked.naive_mean_ape?.toFixed(4) ?? "–"} %, p(worse than naive) ${checked.p_value_worse?.toFixed(4) ?? "–"}, α ${alpha}`;
  if (!checked.loses) {
    return {
      champion,
      action: "keep",
      to: null,
      summary: `v${champion} stays: ${numbers}`,
      evidence,
      written: null,
    };
  }

  const { target, examined } = await rollbackTarget(
    versions,
    pointers.archived ?? {},
    history,
    champion,
    (v) => compare(v, Number.NEGATIVE_INFINITY),
  );
  evidence.candidates = examined;
  if (target === undefined) {
    const summary = `v${champion} loses to naive significantly (${numbers}), and there is no earlier champion that does not, nor a naive version, to roll back to: nothing written; roll back by hand (POST /api/ml/models/${model}/rollback {"to": …})`;
    deps.warn(`edgeml: ${model}: ${summary}`);
    return { champion, action: "alert", to: null, summary, evidence, written: null };
  }
  const byPerson =
    pointers.automatic === true
      ? ""
      : `; v${champion} was made champion by a person, rolled back all the same (a champion that loses to naive on live outcomes is an incident), and the pointer stays theirs`;
  const summary = `rollback check: v${champion} loses to naive significantly on its ${options.source} outcomes (${numbers}); back to v${target.version} (${target.why})${byPerson}`;
  const written = options.dryRun
    ? null
    : await writeChange(deps, model, (current) => {
        if (current.champion !== champion) return undefined;
        const { rollout, ...rest } = current;
        const ended = rollout ? `; ends rollout ${rollout.id}, whose champion this was` : "";
        return {
          pointers: { ...rest, champion: target.version },
          entry: {
            action: "rollback",
            from: champion,
            to: target.version,
            reason: `${summary}${ended}`,
            automatic: true,
            ...(rollout ? { rollout_id: rollout.id } : {}),
            rollout_evidence: evidence,
          },
        };
      });
  // The champion changed between the read and the write (a person, another instance): nothing was written.
  const stale = !options.dryRun && written === null ? " (not written: the champion changed meanwhile)" : "";
  return {
    champion,
    action: "rollback",
    to: target.version,
    summary: `${summary}${stale}`,
    evidence,
    written,
  };
}

/**
 * The previous champions, newest first, each checked on its own outcomes; the first that does not lose to naive
 * significantly is the target, else the naive version.
 */
async function rollbackTarget(
  versions: readonly VersionMetadata[],
  archived: Record<string, unknown>,
  history: readonly AuditEntry[],
  champion: string,
  check: (version: string) => Promise<NaiveComparison>,
): Promise<{ target?: { version: string; why: string }; examined: NaiveComparison[] }> {
  const usable = (version: string) =>
    version !== champion && versions.some((m) => m.version === version) && !Object.hasOwn(archived, version);
  const examined: NaiveComparison[] = [];
  for (const version of new Set(championStack(history).reverse())) {
    if (!usable(version)) continue;
    const result = await check(version);
    examined.push(result);
    if (!result.loses) {
      return { target: { version, why: "the previous champion that does not lose to naive" }, examined };
    }
  }
  const naive = versions.filter((m) => isNaive(m) && usable(m.version)).at(-1);
  return naive
    ? {
        target: { version: naive.version, why: "the naive version: no earlier champion qualifies" },
        examined,
      }
    : { examined };
}
