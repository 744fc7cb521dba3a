import { EdgeMLError } from "../errors.js";
import type { AuditEntry, ModelPointers, PointerStore } from "../storage/pointers.js";
import { pointersUnavailable } from "./failures.js";
import { archiveOf, versionArchived, withArchived, withRestored } from "./retention.js";

/** What a pointer operation checks before it moves a pointer: the model and version exist and can be read. */
export interface PointerChecks {
  versionsOf(name: string): Promise<unknown>;
  metadata(name: string, version: string): Promise<unknown>;
}

export interface PointerOps {
  read(name: string): Promise<ModelPointers>;
  history(name: string): Promise<AuditEntry[]>;
  promote(name: string, version: string, reason?: string): Promise<AuditEntry>;
  rollback(name: string, options?: { to?: string; reason?: string }): Promise<AuditEntry>;
  pin(name: string, version: string | null, reason?: string): Promise<AuditEntry>;
  /**
   * Archives the versions `plan` picks from the pointers as stored now; nothing is written (and null returned) when
   * it picks none, so a registration that archives nothing costs no pointer write.
   */
  archive(
    name: string,
    plan: (current: ModelPointers) => string[],
    reason: string,
  ): Promise<{ entry: AuditEntry; archived: string[] } | null>;
  /** Brings an archived version back: it serves again as any version would, and retention keeps it from then on. */
  restore(name: string, version: string, reason?: string): Promise<AuditEntry>;
}

/** Thrown inside an update to write nothing: the plan picked no version. */
class NothingToArchive extends Error {}

/** Refuses to point at an archived version: it would not serve; the error says how to restore it. */
function refuseArchived(name: string, current: ModelPointers, version: string): void {
  const archived = archiveOf(current, version);
  if (archived) throw versionArchived(name, version, archived);
}

/**
 * The pointers with the champion a person set: no longer `automatic`, so the selection policy leaves it alone until
 * the person hands the model back (`promote --auto`).
 */
const byPerson = ({ automatic: _automatic, ...rest }: ModelPointers): ModelPointers => rest;

/** The champions in effect over time, replayed from the audit log; rollback steps back through it. */
export function championStack(log: readonly AuditEntry[]): string[] {
  const stack: string[] = [];
  for (const entry of log) {
    if (entry.action === "promote" && entry.to) stack.push(entry.to);
    if (entry.action === "rollback" && entry.to) {
      const at = stack.lastIndexOf(entry.to);
      if (at >= 0) stack.length = at + 1;
      else stack.splice(0, stack.length, entry.to);
    }
  }
  return stack;
}

/**
 * Promote, roll back and pin: each moves a pointer through the pointer store's `update`, which hands the change
 * the pointers as stored now, under the store's lock for the model, so two changes at once (a promote and a pin)
 * both land, one after the other, and neither is lost. Every change is written to the audit log with it.
 */
export function createPointerOps(pointers: PointerStore, checks: PointerChecks, now: () => Date): PointerOps {
  const read = (name: string) =>
    pointers.get(name).catch((error: unknown) => Promise.reject(pointersUnavailable(error)));
  const history = (name: string) =>
    pointers.history(name).catch((error: unknown) => Promise.reject(pointersUnavailable(error)));

  const change = async (
    name: string,
    decide: (
      current: ModelPointers,
    ) => Promise<{ next: ModelPointers; entry: Omit<AuditEntry, "at" | "model"> }>,
  ): Promise<AuditEntry> => {
    try {
      const { entry } = await pointers.update(name, async (current) => {
        const { next, entry } = await decide(current);
        return { pointers: next, entry: { at: now().toISOString(), model: name, ...entry } };
      });
      return entry;
    } catch (error) {
      throw pointersUnavailable(error);
    }
  };

  return {
    read,
    history,
    async promote(name, version, reason) {
      await checks.metadata(name, version);
      return change(name, async (current) => {
        refuseArchived(name, current, version);
        return {
          next: { ...byPerson(current), champion: version },
          entry: { action: "promote", from: current.champion ?? null, to: version, reason },
        };
      });
    },
    async rollback(name, options = {}) {
      await checks.versionsOf(name);
      if (options.to !== undefined) await checks.metadata(name, options.to);
      return change(name, async (current) => {
        if (!current.champion) {
          throw new EdgeMLError(
            "conflict",
            `'${name}' has no champion to roll back; promote a version first`,
          );
        }
        let target = options.to;
        if (target === undefined) {
          target = championStack(await history(name)).at(-2);
          if (!target) {
            throw new EdgeMLError(
              "conflict",
              `'${name}' has no earlier champion to roll back to; name one with {"to": "<version>"}`,
            );
          }
        }
        refuseArchived(name, current, target);
        return {
          next: { ...byPerson(current), champion: target },
          entry: { action: "rollback", from: current.champion, to: target, reason: options.reason },
        };
      });
    },
    async pin(name, version, reason) {
      if (version !== null) await checks.metadata(name, version);
      else await checks.versionsOf(name);
      return change(name, async (current) => {
        if (version !== null) refuseArchived(name, current, version);
        const { pinned: _previous, ...rest } = current;
        return {
          next: version === null ? rest : { ...current, pinned: version },
          entry: {
            action: version === null ? "unpin" : "pin",
            from: current.pinned ?? null,
            to: version,
            reason,
          },
        };
      });
    },
    async archive(name, plan, reason) {
      let archived: string[] = [];
      try {
        const entry = await change(name, async (current) => {
          archived = plan(current);
          if (archived.length === 0) throw new NothingToArchive();
          return {
            next: withArchived(current, archived, { at: now().toISOString(), reason }),
            entry: { action: "archive", from: null, to: archived.join(","), reason },
          };
        });
        return { entry, archived };
      } catch (error) {
        if (
          error instanceof NothingToArchive ||
          (error as { cause?: unknown }).cause instanceof NothingToArchive
        )
          return null;
        throw error;
      }
    },
    async restore(name, version, reason) {
      await checks.metadata(name, version);
      return change(name, async (current) => {
        if (!archiveOf(current, version)) {
          throw new EdgeMLError(
            "conflict",
            `version ${version} of '${name}' is not archived; nothing to restore (GET /api/ml/models/${name} lists the archived ones)`,
          );
        }
        return {
          next: withRestored(current, version),
          entry: { action: "restore", from: null, to: version, reason },
        };
      });
    },
  };
}
