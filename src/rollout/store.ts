/** The log reads and pointer writes of the rollout decisions. */
import { pointersUnavailable } from "../registry/failures.js";
import type { AuditEntry, ModelPointers, PointerStore } from "../storage/pointers.js";
import type { PredictionLog, PredictionRecord, PredictionSource } from "../storage/prediction-log.js";

/** Records listed per page: the log's largest page. */
const PAGE = 1_000;

/**
 * Every resolved record of one version and source whose target time is at or after `fromMs` (a forecast's target
 * is never before it was served, so this holds every record served since then; the caller bounds `served_at`).
 */
export async function readRecords(
  log: PredictionLog,
  model: string,
  filter: { version: string; source: PredictionSource },
  fromMs: number,
): Promise<PredictionRecord[]> {
  const records: PredictionRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await log.list(model, {
      ...filter,
      resolved: true,
      limit: PAGE,
      ...(Number.isFinite(fromMs) ? { from: new Date(fromMs).toISOString() } : {}),
      ...(cursor === undefined ? {} : { cursor }),
    });
    records.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor !== undefined);
  return records;
}

/** Thrown inside a pointer update to write nothing. */
class NoChange extends Error {}

/**
 * One pointer change under the model's lock, with its audit entry; `change` answers undefined to write nothing (the
 * state it decided on changed meanwhile), and then so does this.
 */
export async function writeChange(
  deps: { pointers: PointerStore; now: () => Date },
  model: string,
  change: (
    current: ModelPointers,
  ) => { pointers: ModelPointers; entry: Omit<AuditEntry, "at" | "model"> } | undefined,
): Promise<AuditEntry | null> {
  try {
    const { entry } = await deps.pointers.update(model, (current) => {
      const next = change(current);
      if (!next) throw new NoChange();
      return { pointers: next.pointers, entry: { at: deps.now().toISOString(), model, ...next.entry } };
    });
    return entry;
  } catch (error) {
    if (error instanceof NoChange || (error as { cause?: unknown } | null)?.cause instanceof NoChange) {
      return null;
    }
    throw pointersUnavailable(error);
  }
}
