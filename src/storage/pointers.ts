import { z } from "zod";

/** Which version of one model serves: a pin beats the champion; canary weights are read by a later policy. */
export const ModelPointersSchema = z.object({
  champion: z.string().optional(),
  pinned: z.string().optional(),
  canary: z.record(z.string(), z.number().min(0).max(1)).optional(),
});
export type ModelPointers = z.infer<typeof ModelPointersSchema>;

export const AuditEntrySchema = z.object({
  at: z.string(),
  model: z.string(),
  action: z.enum(["promote", "rollback", "pin", "unpin"]),
  from: z.string().nullable(),
  to: z.string().nullable(),
  reason: z.string().optional(),
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
