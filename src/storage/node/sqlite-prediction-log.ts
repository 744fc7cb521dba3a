import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { EdgeMLError, errorMessage } from "../../errors.js";
import type { ListQuery, PredictionLog, PredictionRecord } from "../prediction-log.js";
import * as rules from "../prediction-log.js";

export interface SqlitePredictionLogOptions {
  /** Records kept per model; past it the oldest by target time go. Default 20 000. */
  capPerModel?: number;
}

export interface SqlitePredictionLog extends PredictionLog {
  /** Closes the database; the log cannot be used afterwards. */
  close(): void;
}

/**
 * How long a writer waits for another process's write transaction before failing (SQLite's busy timeout): several
 * server processes may share one file, and a write holds the lock for a batch of inserts, milliseconds.
 */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * One row per record; the forecast, outcome and manual report are kept as the JSON that was validated, and the
 * columns the queries filter and order on beside them. `member` is `"<prediction_id> <version>"`, the tie-break order
 * every adapter shares (BINARY collation compares bytes, as Redis does for equal scores).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS prediction_log (
  model TEXT NOT NULL,
  prediction_id TEXT NOT NULL,
  version TEXT NOT NULL,
  member TEXT NOT NULL,
  target_ms INTEGER NOT NULL,
  source TEXT NOT NULL,
  forecast TEXT NOT NULL,
  outcome TEXT,
  manual TEXT,
  PRIMARY KEY (model, prediction_id, version)
);
CREATE INDEX IF NOT EXISTS prediction_log_by_target ON prediction_log (model, target_ms, member);
CREATE INDEX IF NOT EXISTS prediction_log_due ON prediction_log (model, target_ms, member) WHERE outcome IS NULL;
PRAGMA user_version = 1;
`;

/**
 * Opens (creating if needed) the prediction log in the SQLite file at `path`, with Node's built-in `node:sqlite`:
 * the embedded default of `npm start`, persisted across restarts with no service and no dependency.
 */
export function openSqlitePredictionLog(
  path: string,
  options: SqlitePredictionLogOptions = {},
): SqlitePredictionLog {
  return createSqlitePredictionLog(new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS }), options);
}

/**
 * The log in the SQLite file at `path`, opened (its directory created) on first use: `npm start`'s default. The
 * CLI, the training script and the Vercel training function build the same dependencies and never record a
 * forecast; opening lazily keeps them from creating the file, or failing on a read-only disk. A file that cannot be
 * opened is an outage like any other (503 `not_ready`, counted by the caller), retried on the next call.
 */
export function sqlitePredictionLogAt(path: string, options: SqlitePredictionLogOptions = {}): PredictionLog {
  let opened: SqlitePredictionLog | undefined;
  const open = (): SqlitePredictionLog => {
    if (opened) return opened;
    opened = guard(`be opened at ${path}`, () => {
      mkdirSync(dirname(path), { recursive: true });
      return openSqlitePredictionLog(path, options);
    });
    return opened;
  };
  return {
    kind: "sqlite",
    record: async (entries) => open().record(entries),
    get: async (model, predictionId) => open().get(model, predictionId),
    list: async (model, listOptions) => open().list(model, listOptions),
    due: async (model, now, limit) => open().due(model, now, limit),
    resolve: async (model, resolutions) => open().resolve(model, resolutions),
    track: async (model, predictionId, manual) => open().track(model, predictionId, manual),
  };
}

function toRecord(row: Record<string, unknown>): PredictionRecord {
  const json = (column: string) => (typeof row[column] === "string" ? JSON.parse(row[column]) : undefined);
  return rules.assembleRecord(
    json("forecast"),
    json("outcome"),
    json("manual"),
    `${String(row.model)} ${String(row.member)}`,
  );
}

/** One page of the listing, filtered in SQL: every value a bound parameter. */
function listQuery(db: DatabaseSync, model: string, query: ListQuery) {
  const where = ["model = ?", "target_ms BETWEEN ? AND ?"];
  const params: SQLInputValue[] = [model, query.fromMs, query.toMs];
  if (query.version !== undefined) {
    where.push("version = ?");
    params.push(query.version);
  }
  if (query.source !== undefined) {
    where.push("source = ?");
    params.push(query.source);
  }
  if (query.resolved !== undefined) where.push(`outcome IS ${query.resolved ? "NOT " : ""}NULL`);
  if (query.after) {
    where.push("(target_ms < ? OR (target_ms = ? AND member < ?))");
    params.push(query.after.t, query.after.t, query.after.member);
  }
  params.push(query.limit + 1);
  // Built from fixed fragments only; every value is a bound parameter.
  const sql = `SELECT * FROM prediction_log WHERE ${where.join(" AND ")} ORDER BY target_ms DESC, member DESC LIMIT ?`;
  return db.prepare(sql).all(...params);
}

/**
 * Runs `work`, reporting a database failure (another process holding the write lock past the busy timeout, a full
 * disk) as the outage it is, like the remote adapters: a 503 `not_ready`, which callers count. Our own errors
 * (a corrupt record) pass through.
 */
function guard<T>(what: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof EdgeMLError) throw error;
    throw new EdgeMLError(
      "not_ready",
      `the prediction log database could not ${what} (${errorMessage(error)}); try again shortly`,
      { cause: error },
    );
  }
}

/**
 * The prediction log on an open SQLite database (the caller may share it, or, in tests, instrument it).
 *
 * Write-ahead logging: readers never wait for the writer, and every batch is one transaction, so a process killed in
 * the middle of `record` leaves either the whole batch or none of it (test/storage/prediction-log.test.ts kills one).
 * `synchronous = NORMAL` is WAL's usual setting: a crash of the process loses nothing committed; a power cut may
 * lose the last transactions but never corrupts the file. Calls are synchronous underneath: a batch is a few
 * milliseconds of inserts, less than a worker hop would cost.
 */
export function createSqlitePredictionLog(
  db: DatabaseSync,
  options: SqlitePredictionLogOptions = {},
): SqlitePredictionLog {
  const cap = options.capPerModel ?? rules.PREDICTION_LOG_DEFAULTS.capPerModel;
  rules.assertCap(cap);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec(SCHEMA);

  const insert = db.prepare(
    `INSERT INTO prediction_log (model, prediction_id, version, member, target_ms, source, forecast)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const count = db.prepare("SELECT count(*) AS n FROM prediction_log WHERE model = ?");
  const trim = db.prepare(
    `DELETE FROM prediction_log WHERE rowid IN
       (SELECT rowid FROM prediction_log WHERE model = ? ORDER BY target_ms, member LIMIT ?)`,
  );
  const byId = db.prepare(
    "SELECT * FROM prediction_log WHERE model = ? AND prediction_id = ? ORDER BY version",
  );
  const due = db.prepare(
    `SELECT * FROM prediction_log WHERE model = ? AND outcome IS NULL AND target_ms <= ?
     ORDER BY target_ms, member LIMIT ?`,
  );
  const resolve = db.prepare(
    `UPDATE prediction_log SET outcome = ?
     WHERE model = ? AND prediction_id = ? AND version = ? AND outcome IS NULL`,
  );
  const track = db.prepare("UPDATE prediction_log SET manual = ? WHERE model = ? AND prediction_id = ?");

  /** Runs `work` in one write transaction (IMMEDIATE: take the write lock now, not half way through). */
  const transaction = <T>(what: string, work: () => T): T =>
    guard(what, () => {
      db.exec("BEGIN IMMEDIATE");
      try {
        const result = work();
        db.exec("COMMIT");
        return result;
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    });

  const log: SqlitePredictionLog = {
    kind: "sqlite",
    async record(entries) {
      const parsed = rules.parseEntries(entries);
      return transaction("record forecasts", () => {
        let added = 0;
        const touched = new Set<string>();
        for (const entry of parsed) {
          const { changes } = insert.run(
            entry.model,
            entry.prediction_id,
            entry.version,
            rules.memberOf(entry),
            Date.parse(entry.target_time),
            entry.source,
            JSON.stringify(entry),
          );
          if (Number(changes) > 0) {
            added += 1;
            touched.add(entry.model);
          }
        }
        for (const model of touched) {
          const excess = Number((count.get(model) as { n: number | bigint }).n) - cap;
          if (excess > 0) trim.run(model, excess);
        }
        return added;
      });
    },
    async get(model, predictionId) {
      return guard("read", () => byId.all(model, predictionId)).map(toRecord);
    },
    async list(model, options) {
      const query = rules.parseListOptions(options);
      return rules.pageOf(guard("read", () => listQuery(db, model, query)).map(toRecord), query.limit);
    },
    async due(model, now, limit) {
      rules.assertLimit(limit);
      return guard("read", () => due.all(model, now.getTime(), limit)).map(toRecord);
    },
    async resolve(model, resolutions) {
      const checked = resolutions.map((r) => ({ ...r, outcome: rules.parseOutcome(r.outcome) }));
      return transaction("record outcomes", () => {
        let resolved = 0;
        for (const r of checked) {
          const { changes } = resolve.run(JSON.stringify(r.outcome), model, r.prediction_id, r.version);
          resolved += Number(changes);
        }
        return resolved;
      });
    },
    async track(model, predictionId, manual) {
      const report = rules.parseManual(manual);
      guard("record a manual report", () => track.run(JSON.stringify(report), model, predictionId));
      return log.get(model, predictionId);
    },
    close() {
      db.close();
    },
  };
  return log;
}
