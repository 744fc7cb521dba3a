import type { ManualTracking, PredictionLog, PredictionRecord } from "./prediction-log.js";
import * as rules from "./prediction-log.js";

export interface MemoryPredictionLogOptions {
  /** Records kept per model; past it the oldest by target time go. Default 20 000. */
  capPerModel?: number;
}

interface Row {
  t: number;
  member: string;
  record: PredictionRecord;
}

/**
 * The prediction log in process memory: for tests, and the edge when no store is configured (per isolate, gone
 * with it). Bounded like the others by a cap per model. Listing sorts the model's records on each call: at most the
 * cap, and this adapter is not the one that holds a production log.
 */
export function createMemoryPredictionLog(options: MemoryPredictionLogOptions = {}): PredictionLog {
  const cap = options.capPerModel ?? rules.PREDICTION_LOG_DEFAULTS.capPerModel;
  rules.assertCap(cap);
  const models = new Map<string, Map<string, Row>>();
  const rowsOf = (model: string) => models.get(model) ?? new Map<string, Row>();
  const sorted = (model: string) => [...rowsOf(model).values()].sort(rules.compareRecords);

  const log: PredictionLog = {
    kind: "memory",
    async record(entries) {
      const parsed = rules.parseEntries(entries);
      let added = 0;
      const touched = new Set<string>();
      for (const entry of parsed) {
        const rows = models.get(entry.model) ?? new Map<string, Row>();
        models.set(entry.model, rows);
        const member = rules.memberOf(entry);
        if (rows.has(member)) continue;
        rows.set(member, { t: Date.parse(entry.target_time), member, record: structuredClone(entry) });
        added += 1;
        touched.add(entry.model);
      }
      for (const model of touched) {
        const rows = rowsOf(model);
        if (rows.size <= cap) continue;
        for (const row of sorted(model).slice(0, rows.size - cap)) rows.delete(row.member);
      }
      return added;
    },
    async get(model, predictionId) {
      return sorted(model)
        .filter((row) => row.record.prediction_id === predictionId)
        .sort((a, b) => (a.record.version < b.record.version ? -1 : 1))
        .map((row) => structuredClone(row.record));
    },
    async list(model, options) {
      const query = rules.parseListOptions(options);
      const matches = sorted(model)
        .reverse()
        .filter((row) => row.t >= query.fromMs && row.t <= query.toMs && rules.isAfterCursor(row, query))
        .filter((row) => rules.matchesFilters(row.record, query))
        .slice(0, query.limit + 1)
        .map((row) => structuredClone(row.record));
      return rules.pageOf(matches, query.limit);
    },
    async due(model, now, limit) {
      rules.assertLimit(limit);
      return sorted(model)
        .filter((row) => row.t <= now.getTime() && !rules.isResolved(row.record))
        .slice(0, limit)
        .map((row) => structuredClone(row.record));
    },
    async resolve(model, resolutions) {
      const checked = resolutions.map((r) => ({
        member: rules.memberOf(r),
        outcome: rules.parseOutcome(r.outcome),
      }));
      let resolved = 0;
      for (const { member, outcome } of checked) {
        const row = rowsOf(model).get(member);
        if (!row || rules.isResolved(row.record)) continue;
        row.record = { ...row.record, ...structuredClone(outcome) };
        resolved += 1;
      }
      return resolved;
    },
    async track(model, predictionId, manual: ManualTracking) {
      const report = rules.parseManual(manual);
      const rows = [...rowsOf(model).values()].filter((row) => row.record.prediction_id === predictionId);
      for (const row of rows) row.record = { ...row.record, manual: structuredClone(report) };
      return log.get(model, predictionId);
    },
  };
  return log;
}
