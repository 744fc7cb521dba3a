/**
 * Child process of the SQLite crash test (test/storage/prediction-log.test.ts): records the batches in a JSON file
 * one `record` call each, printing `committed <n>` after each, and is killed (SIGKILL, by itself, from inside
 * SQLite) in the middle of the batch holding the entry named `--die-at`: a deterministic crash mid-transaction.
 *
 *   node --import tsx prediction-log-crash-child.ts <db file> <batches.json> <prediction_id to die at>
 */
import { readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { createSqlitePredictionLog } from "../../../src/storage/node/sqlite-prediction-log.js";
import type { PredictionEntry } from "../../../src/storage/prediction-log.js";

const [file, batchesFile, dieAt] = process.argv.slice(2) as [string, string, string];
const batches = JSON.parse(readFileSync(batchesFile, "utf8")) as PredictionEntry[][];
const db = new DatabaseSync(file, { timeout: 5_000 });
const log = createSqlitePredictionLog(db);
db.function("die", () => {
  process.kill(process.pid, "SIGKILL");
  return 0;
});
// A TEMP trigger lives in this connection only: the file the parent reopens has no trace of it.
db.exec(
  `CREATE TEMP TRIGGER die_mid_batch AFTER INSERT ON main.prediction_log WHEN NEW.prediction_id = '${dieAt.replaceAll("'", "''")}' BEGIN SELECT die(); END`,
);
for (const [i, batch] of batches.entries()) {
  await log.record(batch);
  process.stdout.write(`committed ${i + 1}\n`);
}
