/**
 * Runs the selection policy (./policy.ts) for one model and writes its choice: the champion pointer, marked
 * `automatic`, with an audit entry marked automatic that carries the evidence. It runs where training runs (after
 * trainSymbol registers versions: the training script, the training service, the daily cron) and when a person hands
 * a model back (`promote --auto`), never per request.
 */
import type { VersionMetadata } from "../registry/metadata.js";
import type { AuditEntry, ModelPointers, PointerStore } from "../storage/pointers.js";
import { decideChampion, isForecastModel, type PolicyDecision, type SelectionPolicy } from "./policy.js";

export interface SelectOptions {
  /** The versions a training run just registered: the day's candidates, tested together (Holm). */
  candidates?: readonly string[];
  /**
   * A person hands the model back to the policy (`promote --auto`): a champion they set is cleared and the policy
   * decides now, over every version. Always writes an audit entry (the person's act), even when nothing changes.
   */
  handBack?: boolean;
  /** The person's reason, kept in the audit entry beside the policy's. */
  reason?: string;
}

export interface SelectionOutcome {
  model: string;
  /** The audit entry written; absent when nothing changed (see `reason`). */
  entry?: AuditEntry;
  /** The policy's decision; absent when the policy does not apply (`best`, or not a forecast model). */
  decision?: PolicyDecision;
  /** Why this outcome, in a sentence. */
  reason: string;
}

export interface SelectionDeps {
  pointers: PointerStore;
  /** Every readable version's metadata, ascending. */
  versions(name: string): Promise<VersionMetadata[]>;
  policy: SelectionPolicy;
  now: () => Date;
  /** Maps a pointer store failure to the API's error (the registry's `pointersUnavailable`). */
  storeError: (error: unknown) => Error;
}

/** Thrown inside a pointer update to write nothing. */
class NoChange extends Error {}

export function createSelection(deps: SelectionDeps) {
  /** Writes one change under the model's pointer lock; `decide` throws NoChange to write nothing. */
  const write = async (
    name: string,
    decide: (current: ModelPointers) => { pointers: ModelPointers; entry: Omit<AuditEntry, "at" | "model"> },
  ): Promise<AuditEntry | undefined> => {
    try {
      const { entry } = await deps.pointers.update(name, (current) => {
        const next = decide(current);
        return {
          pointers: next.pointers,
          entry: { at: deps.now().toISOString(), model: name, automatic: true, ...next.entry },
        };
      });
      return entry;
    } catch (error) {
      if (error instanceof NoChange || (error as { cause?: unknown } | null)?.cause instanceof NoChange)
        return undefined;
      throw deps.storeError(error);
    }
  };

  /** The champion released by a hand-back where the policy does not choose (best policy, models people bring). */
  const release = (name: string, why: string, reason?: string) =>
    write(name, (current) => {
      const { champion: _champion, automatic: _automatic, ...rest } = current;
      return {
        pointers: rest,
        entry: {
          action: "promote",
          from: current.champion ?? null,
          to: null,
          reason: [reason, why].filter(Boolean).join("; "),
        },
      };
    });

  return {
    async select(name: string, options: SelectOptions = {}): Promise<SelectionOutcome> {
      const versions = await deps.versions(name);
      if (deps.policy !== "strict" || !isForecastModel(versions)) {
        const why =
          deps.policy !== "strict"
            ? "SELECTION_POLICY=best: the version with the best BEST_METRIC serves, untested against naive"
            : "not a forecast model: the version with the best BEST_METRIC serves";
        if (!options.handBack) return { model: name, reason: why };
        const entry = await release(name, `handed back: ${why}`, options.reason);
        return { model: name, entry, reason: why };
      }
      let decision: PolicyDecision | undefined;
      let reason = "";
      const entry = await write(name, (current) => {
        if (!options.handBack && current.champion !== undefined && !current.automatic) {
          reason = `v${current.champion} was made champion by a person; the policy leaves it until \`promote ${name} --auto\` hands the model back`;
          throw new NoChange();
        }
        // Archived versions never serve (retention): not candidates, and not a champion to keep.
        const archived = current.archived ?? {};
        const live = versions.filter((meta) => !Object.hasOwn(archived, meta.version));
        const automatic =
          !options.handBack && current.automatic && live.some((meta) => meta.version === current.champion)
            ? current.champion
            : undefined;
        decision = decideChampion({
          versions: live,
          // With an automatic champion, a run's new versions are the candidates; without one, every version is.
          candidates: automatic === undefined ? undefined : options.candidates,
          current: automatic,
        });
        reason = decision.reason;
        const withReason = [options.reason, decision.reason].filter(Boolean).join("; ");
        if (decision.kind !== "choose") {
          // A hand-back is a person's act: it is written (and the champion cleared) even when the policy chooses nothing.
          if (!options.handBack) throw new NoChange();
          const { champion: _champion, automatic: _automatic, ...rest } = current;
          return {
            pointers: rest,
            entry: { action: "promote", from: current.champion ?? null, to: null, reason: withReason },
          };
        }
        if (!options.handBack && current.automatic && current.champion === decision.version) {
          throw new NoChange();
        }
        return {
          pointers: { ...current, champion: decision.version, automatic: true },
          entry: {
            action: "promote",
            from: current.champion ?? null,
            to: decision.version,
            reason: withReason,
            evidence: decision.evidence,
          },
        };
      });
      return { model: name, ...(entry ? { entry } : {}), ...(decision ? { decision } : {}), reason };
    },
  };
}

export type Selection = ReturnType<typeof createSelection>;
