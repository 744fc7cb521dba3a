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

/**
 * The version pointers and their audit log: all the registry needs. Adapters: a JSON file (embedded default) and
 * Vercel Edge Config (production).
 */
export interface PointerStore {
  readonly kind: string;
  get(model: string): Promise<ModelPointers>;
  /** Replaces a model's pointers and appends the audit entry that explains the change. */
  set(model: string, pointers: ModelPointers, entry: AuditEntry): Promise<void>;
  /** The model's audit log, oldest first. */
  history(model: string): Promise<AuditEntry[]>;
}
