/**
 * Rollout decisions from outcomes (issue 12): a rollout's challenger compared with its champion on the resolved
 * outcomes of the prediction log, then promoted, ended or left running; and the rollback check of every champion
 * against naive (./rollback.ts). The daily cron runs `evaluateAll` after resolving outcomes; an admin runs
 * `evaluate` (`POST /api/ml/models/{name}/rollout/evaluate`, `npm run cli -- rollout evaluate`); `compare` is the
 * live comparison `GET …/rollout` shows, which decides nothing.
 *
 * In production (`source` live, the default) only `live` and `shadow` records served since the rollout started
 * count; `source` backfill (or replay) with `from`/`to` runs the same decision on replayed outcomes, which is how a
 * rollout is tried on history. Every decision that changes something is written under the model's pointer lock with
 * its audit entry carrying the numbers it used; `dryRun` answers the same without writing.
 */
import { z } from "zod";
import { asEdgeMLError, EdgeMLError } from "../errors.js";
import type { Registry } from "../registry/registry.js";
import { SELECTION_ALPHA } from "../selection/policy.js";
import type { AuditEntry, ModelPointers, PointerStore, Rollout } from "../storage/pointers.js";
import type { PredictionLog, PredictionRecord } from "../storage/prediction-log.js";
import { decideRollout, type PairedTest, type RolloutDecision } from "./decide.js";
import { type Pairing, pairsOf, type Scope } from "./pairing.js";
import { checkChampion, type RollbackVerdict } from "./rollback.js";
import { readRecords, writeChange } from "./store.js";

/** A range end: a date (YYYY-MM-DD, its 00:00 UTC) or an ISO 8601 date-time, as backfill takes them. */
const RangeEnd = z.union([
  z.iso.date().transform((day) => `${day}T00:00:00.000Z`),
  z.iso.datetime({ offset: true }).transform((instant) => new Date(instant).toISOString()),
]);

/** The sources an evaluation may count: `live` is production (live and shadow records); the others are replayed. */
export const EVALUATION_SOURCES = ["live", "replay", "backfill"] as const;

/** The body of `POST /api/ml/models/{name}/rollout/evaluate`. */
export const EvaluateRequestSchema = z
  .object({
    source: z
      .enum(EVALUATION_SOURCES)
      .optional()
      .describe(
        "live (default): live and shadow records served since the rollout started; replay or backfill: those records only, any time unless from/to bound them",
      ),
    from: RangeEnd.optional().describe(
      "Earliest served_at counted, inclusive (a backfilled forecast is served at its as-of): a date or an ISO 8601 date-time",
    ),
    to: RangeEnd.optional().describe("Latest served_at counted, inclusive"),
  })
  .strict()
  .refine((r) => r.from === undefined || r.to === undefined || r.from <= r.to, {
    message: "from must not be after to",
    path: ["to"],
  });
export type EvaluateRequest = z.input<typeof EvaluateRequestSchema>;

export interface EvaluateOptions extends EvaluateRequest {
  /** Answer what would be decided, and write nothing. */
  dryRun?: boolean;
}

/** What the rollout's comparison decided, and the audit entry that recorded it (null: nothing written). */
export interface RolloutVerdict extends RolloutDecision {
  rollout: Rollout;
  written: AuditEntry | null;
}

export interface EvaluationResult {
  model: string;
  dry_run: boolean;
  /** Null when the model has no rollout running. */
  rollout: RolloutVerdict | null;
  rollback: RollbackVerdict;
}

/** The live comparison so far (`GET …/rollout`): what `evaluate` would decide now, with its numbers. */
export interface RolloutComparison extends RolloutDecision {
  model: string;
  rollout: Rollout;
}

export interface RolloutDecisionDeps {
  log: PredictionLog;
  /** Read fresh and written under the model's lock. */
  pointers: PointerStore;
  registry: Pick<Registry, "versions" | "versionNames" | "listModelNames" | "resolve" | "history">;
  /** The Diebold–Mariano test (src/training/diebold-mariano.ts), where training runs; absent on the edge. */
  test?: PairedTest;
  now: () => Date;
  warn: (message: string, error?: unknown) => void;
  /** Default SELECTION_ALPHA: the selection policy's level. */
  alpha?: number;
}

function parseOptions(options: EvaluateRequest) {
  const parsed = EvaluateRequestSchema.safeParse(options);
  if (!parsed.success) {
    throw new EdgeMLError(
      "invalid_request",
      `rollout evaluation options are not valid: ${z.prettifyError(parsed.error)}`,
      { details: parsed.error.issues },
    );
  }
  return { ...parsed.data, source: parsed.data.source ?? "live" };
}

/** Which records count, and how they pair: production counts served records since the rollout started. */
function scopeOf(
  rollout: Rollout,
  options: ReturnType<typeof parseOptions>,
): { scope: Scope; pairing: Pairing } {
  const to = options.to === undefined ? Number.POSITIVE_INFINITY : Date.parse(options.to);
  const from = options.from === undefined ? Number.NEGATIVE_INFINITY : Date.parse(options.from);
  if (options.source === "live") {
    return {
      scope: { sources: ["live", "shadow"], from: Math.max(from, Date.parse(rollout.started_at)), to },
      pairing: rollout.mode === "shadow" ? "shadow_of" : "bar",
    };
  }
  return { scope: { sources: [options.source], from, to }, pairing: "bar" };
}

/** The version's horizon in bars, from its metadata: the test's lag is h − 1. */
async function horizonOf(deps: RolloutDecisionDeps, model: string, version: string): Promise<number> {
  const meta = (await deps.registry.versions(model)).find((m) => m.version === version);
  return meta?.forecast?.horizon_bars ?? 1;
}

/**
 * The live comparison of `model`'s rollout so far, or null with none running: each version's distinct outcomes, the
 * pairs, their mean APEs, the current p-values and what `evaluate` would decide (it decides nothing). Without the
 * test (the edge) the p-values are null and the decision says so. For the serving helper's `GET …/rollout`.
 */
export async function compareRollout(
  deps: RolloutDecisionDeps,
  model: string,
  options: EvaluateRequest = {},
  pointers?: ModelPointers,
): Promise<RolloutComparison | null> {
  const parsed = parseOptions(options);
  const current = pointers ?? (await deps.pointers.get(model));
  const rollout = current.rollout;
  if (!rollout) return null;
  // A rollout started on a model without a champion pointer compares with what serves without it.
  const champion = rollout.champion ?? (await deps.registry.resolve(model)).meta.version;
  const { scope, pairing } = scopeOf(rollout, parsed);
  const records: PredictionRecord[] = [];
  for (const version of [champion, rollout.challenger]) {
    for (const source of scope.sources) {
      records.push(...(await readRecords(deps.log, model, { version, source }, scope.from)));
    }
  }
  const { pairs, ...outcomes } = pairsOf(
    records,
    { champion, challenger: rollout.challenger },
    scope,
    pairing,
  );
  const decision = decideRollout({
    rollout,
    champion,
    outcomes,
    pairs,
    pairing,
    source: parsed.source,
    window: { from: finite(scope.from), to: finite(scope.to) },
    horizon: await horizonOf(deps, model, rollout.challenger),
    now: deps.now(),
    alpha: deps.alpha ?? SELECTION_ALPHA,
    ...(deps.test ? { test: deps.test } : {}),
  });
  return { model, rollout, ...decision };
}

const finite = (ms: number) => (Number.isFinite(ms) ? ms : null);

/** Writes a promote or an end, if the rollout is still the one evaluated; null when it changed meanwhile. */
async function writeDecision(
  deps: RolloutDecisionDeps,
  model: string,
  comparison: RolloutComparison,
): Promise<AuditEntry | null> {
  const { rollout, evidence, summary, action } = comparison;
  return writeChange(deps, model, (current) => {
    if (current.rollout?.id !== rollout.id) return undefined;
    const { rollout: _ended, ...rest } = current;
    const audit = { automatic: true, rollout_id: rollout.id, rollout_evidence: evidence, reason: summary };
    if (action === "promote") {
      // Who owns the champion pointer (the selection policy, or a person) does not change: a person who started a
      // rollout on their champion keeps the model; the policy keeps one it owned.
      return {
        pointers: { ...rest, champion: rollout.challenger },
        entry: { action: "promote", from: current.champion ?? null, to: rollout.challenger, ...audit },
      };
    }
    return {
      pointers: rest,
      entry: { action: "rollout_end", from: rollout.challenger, to: current.champion ?? null, ...audit },
    };
  });
}

/**
 * Builds the decisions service (`services.rollouts`). `evaluate` and `evaluateAll` need the test (501
 * `evaluation_unavailable` without it, on the edge); `compare` answers without it.
 */
export function createRolloutDecisions(deps: RolloutDecisionDeps) {
  const requireTest = () => {
    if (!deps.test) {
      throw new EdgeMLError(
        "evaluation_unavailable",
        "rollout decisions run where training runs (the Node server, or the Vercel Node function /api/train, which vercel.json routes …/rollout/evaluate to); this runtime serves only the comparison (GET …/rollout)",
      );
    }
  };

  const evaluate = async (model: string, options: EvaluateOptions = {}): Promise<EvaluationResult> => {
    requireTest();
    const { dryRun = false, ...request } = options;
    const parsed = parseOptions(request);
    await deps.registry.versionNames(model);
    const pointers = await deps.pointers.get(model);
    let rollout: RolloutVerdict | null = null;
    const comparison = await compareRollout(deps, model, request, pointers);
    if (comparison) {
      const { model: _m, ...decided } = comparison;
      const written =
        dryRun || comparison.action === "continue" ? null : await writeDecision(deps, model, comparison);
      // Another writer ended or replaced the rollout between the read and the write: nothing was written.
      const stale = !dryRun && comparison.action !== "continue" && written === null;
      rollout = {
        ...decided,
        ...(stale ? { summary: `${decided.summary} (not written: the rollout changed meanwhile)` } : {}),
        written,
      };
    }
    const rollback = await checkChampion(deps, model, {
      source: parsed.source,
      from: parsed.from,
      to: parsed.to,
      dryRun,
    });
    return { model, dry_run: dryRun, rollout, rollback };
  };

  return {
    compare: (model: string, options?: EvaluateRequest) => compareRollout(deps, model, options),
    evaluate,
    /** The cron's step: every model's rollout and rollback check, in production. A model's failure is reported, never thrown. */
    async evaluateAll(): Promise<Record<string, EvaluationResult | { error: string; code?: string }>> {
      requireTest();
      const results: Record<string, EvaluationResult | { error: string; code?: string }> = {};
      for (const model of await deps.registry.listModelNames()) {
        try {
          results[model] = await evaluate(model);
        } catch (error) {
          deps.warn(`evaluating the rollout of ${model} failed`, error);
          const known = asEdgeMLError(error);
          results[model] = {
            error: known?.message ?? "edgeml: the evaluation failed; see the server's log",
            ...(known ? { code: known.code } : {}),
          };
        }
      }
      return results;
    },
  };
}

export type RolloutDecisions = ReturnType<typeof createRolloutDecisions>;
