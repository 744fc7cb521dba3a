import { z } from "zod";

/** Why and when a version was archived: it stays listed and restorable, and never serves until restored. */
export const ArchivedVersionSchema = z.object({ at: z.string(), reason: z.string() });
export type ArchivedVersion = z.infer<typeof ArchivedVersionSchema>;

/**
 * A rollout of one challenger beside the champion (src/rollout). `canary`: a sticky share of clients is served the
 * challenger; `shadow`: the champion answers and the challenger's forecast is only logged beside it. The decision to
 * promote or end it is taken from the live outcomes (src/rollout/evaluate.ts).
 */
export const RolloutSchema = z.object({
  /** New per rollout: the canary hash is salted with it, so a new rollout reshuffles which clients get the challenger. */
  id: z.string(),
  challenger: z.string(),
  /** The version it is compared against: the one serving when the rollout started. */
  champion: z.string().nullable(),
  mode: z.enum(["canary", "shadow"]),
  /** canary: the share of clients served the challenger; shadow: the share of champion forecasts mirrored. */
  weight: z.number().min(0).max(1),
  started_at: z.string(),
  /** Resolved outcomes each version needs before the evaluation may decide. */
  min_outcomes: z.number().int().positive(),
  /** Past this, the evaluation ends the rollout whatever the numbers. */
  max_duration_seconds: z.number().int().positive(),
});
export type Rollout = z.infer<typeof RolloutSchema>;

/**
 * Which version of one model serves: a pin beats a canary rollout, which beats the champion. The
 * archived versions live here too, beside the pointers that protect versions from archival, so one read-modify-write
 * under the model's lock decides both on every adapter (one Edge Config item per model, the JSON file locally).
 */
export const ModelPointersSchema = z.object({
  champion: z.string().optional(),
  /**
   * The champion was chosen by the selection policy (src/selection), which may replace it after training. Absent: a
   * person set it (promote, rollback), and the policy leaves it alone until they hand the model back (`promote --auto`).
   */
  automatic: z.boolean().optional(),
  pinned: z.string().optional(),
  /** The running rollout, if any: one per model (src/rollout). */
  rollout: RolloutSchema.optional(),
  /** Legacy weights from before rollouts: still read (retention keeps these versions), never written by the API. */
  canary: z.record(z.string(), z.number().min(0).max(1)).optional(),
  /** Archived versions by number: not served, still listed, restorable (src/registry/retention.ts). */
  archived: z.record(z.string(), ArchivedVersionSchema).optional(),
  /** Versions a person restored: retention never archives them again (a restore is a decision to keep). */
  kept: z.array(z.string()).optional(),
});
export type ModelPointers = z.infer<typeof ModelPointersSchema>;

/** Why the selection policy chose a version: the test, its level and the walk-forward rows it decided on. */
export const SelectionEvidenceSchema = z.object({
  /** The chosen version's one-sided Diebold–Mariano p-value against naive (naive chosen: the smallest candidate's, or null). */
  p_value: z.number().nullable(),
  /** The same p-value after Holm's step-down adjustment across the candidates tested with it. */
  holm_p_value: z.number().nullable().optional(),
  test: z.string(),
  alpha: z.number(),
  /** The walk-forward span of the chosen version: first fold's start .. last fold's end. */
  window: z.object({ from: z.string(), to: z.string() }).nullable(),
  folds: z.number().int().nonnegative(),
  /** The comparison with the champion it replaced, on the walk-forward folds both were evaluated on. */
  compared_with: z
    .object({
      version: z.string(),
      shared_folds: z.number().int().nonnegative(),
      wins: z.number().int().nonnegative(),
      mean_mape: z.number().nullable(),
      current_mean_mape: z.number().nullable(),
      sign_test_p_value: z.number().nullable(),
    })
    .optional(),
});
export type SelectionEvidence = z.infer<typeof SelectionEvidenceSchema>;

export const AuditEntrySchema = z.object({
  at: z.string(),
  model: z.string(),
  action: z.enum([
    "promote",
    "rollback",
    "pin",
    "unpin",
    "archive",
    "restore",
    "rollout_start",
    "rollout_end",
  ]),
  from: z.string().nullable(),
  to: z.string().nullable(),
  reason: z.string().optional(),
  /** Written by the selection policy, not a person (a person's promote, rollback or pin never carries it). */
  automatic: z.boolean().optional(),
  evidence: SelectionEvidenceSchema.optional(),
  /** The rollout the entry belongs to: its start, its end, or a promotion or rollback it decided. */
  rollout_id: z.string().optional(),
  /** The live numbers a rollout decision used (src/rollout/evaluate.ts). */
  rollout_evidence: z.record(z.string(), z.unknown()).optional(),
});
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

/** One change of a model's pointers: the pointers it leaves and the audit entry that explains it. */
export interface PointerChange {
  pointers: ModelPointers;
  entry: AuditEntry;
}

/**
 * The version pointers and their audit log: all the registry needs. Adapters: a JSON file (embedded default) and
 * Vercel Edge Config (production, with the audit log in an AuditLog of its own).
 */
export interface PointerStore {
  readonly kind: string;
  /** The model's pointers; may be served from a short-lived cache. */
  get(model: string): Promise<ModelPointers>;
  /**
   * Read-modify-write of one model's pointers: `change` gets the pointers as stored now (read fresh, never from a
   * cache) and returns the next pointers with the audit entry that explains them. No other update of the model
   * through this store runs between the read and the write; the JSON file also locks out other processes (a
   * conflict it cannot wait out is a 409 `conflict`, never a lost write). `change` may throw to abort: nothing is
   * written.
   */
  update(
    model: string,
    change: (current: ModelPointers) => PointerChange | Promise<PointerChange>,
  ): Promise<PointerChange>;
  /** Replaces a model's pointers and appends the audit entry that explains the change (a blind `update`). */
  set(model: string, pointers: ModelPointers, entry: AuditEntry): Promise<void>;
  /** The model's audit log, oldest first. */
  history(model: string): Promise<AuditEntry[]>;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

const EMPTY_POINTERS: ModelPointers = deepFreeze({});
const frozenCopies = new WeakMap<ModelPointers, ModelPointers>();

/**
 * What a store's `get` answers for pointers it keeps (`stored`, undefined when the model has none): a deep-frozen
 * copy, made once per stored object. Stores replace, never mutate, the object they keep when the pointers change,
 * so a copy is valid for as long as its source is kept; every request resolving a version used to pay a
 * `structuredClone` instead. Frozen, so no caller can change the pointers another request reads (a write through a
 * frozen object throws in strict-mode code, which every ES module is).
 */
export function frozenPointers(stored: ModelPointers | undefined): ModelPointers {
  if (stored === undefined) return EMPTY_POINTERS;
  let copy = frozenCopies.get(stored);
  if (copy === undefined) {
    copy = deepFreeze(structuredClone(stored));
    frozenCopies.set(stored, copy);
  }
  return copy;
}
