import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import {
  createSqlitePredictionLog,
  openSqlitePredictionLog,
} from "../../src/storage/node/sqlite-prediction-log.js";
import {
  outcomeFor,
  PREDICTION_LOG_DEFAULTS,
  type PredictionEntry,
} from "../../src/storage/prediction-log.js";
import { createUpstashPredictionLog } from "../../src/storage/upstash-prediction-log.js";
import { REPO_ROOT, tempDir } from "../support/paths.js";
import { btcBars, forecastsFrom, predictionLogContract } from "./prediction-log.contract.js";
import { eventually } from "./support/eventually.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "./support/upstash.js";

const upstash = useLocalUpstash();

predictionLogContract("process memory", async (options) => ({ store: createMemoryPredictionLog(options) }));

predictionLogContract("node:sqlite (embedded, a file in a temp dir)", async (options) => {
  const dir = await tempDir("edgeml-plog-");
  const log = openSqlitePredictionLog(join(dir.path, "predictions.db"), options);
  return {
    store: log,
    cleanup: async () => {
      log.close();
      await dir.cleanup();
    },
  };
});

predictionLogContract(
  "Upstash Redis (@upstash/redis → Upstash REST bridge → redis-server)",
  async (options) => ({
    store: createUpstashPredictionLog(upstash.client(), {
      ...options,
      prefix: upstash.freshPrefix(),
      timeoutMs: TEST_STORE_TIMEOUT_MS,
    }),
  }),
);

describe("outcomeFor: the error figures, signed, in percent", () => {
  const entry = { last_close: 100, predicted_price: 102 };
  it.each([
    ["the market rose less than forecast", 101, 0.990099, -0.990099, true],
    ["the market fell", 98, 4.081633, 2.040816, false],
    ["the market rose more than forecast", 110, -7.272727, -9.090909, true],
    ["the market did not move", 100, 2, 0, false],
  ])("%s", (_, actual, errorPct, naivePct, hit) => {
    const outcome = outcomeFor(entry, { price: actual, time: "2026-03-27T00:00:00.000Z" }, new Date(0));
    expect(outcome.error_pct).toBeCloseTo(errorPct, 5);
    expect(outcome.naive_error_pct).toBeCloseTo(naivePct, 5);
    expect(outcome.direction_hit).toBe(hit);
    expect(outcome.resolved_at).toBe("1970-01-01T00:00:00.000Z");
  });
});

describe("node:sqlite prediction log", () => {
  it("is still there after a restart: forecasts, outcomes and manual reports read back from the file", async () => {
    const dir = await tempDir("edgeml-plog-");
    try {
      const file = join(dir.path, "predictions.db");
      const forecasts = forecastsFrom(await btcBars(12), { source: "live" });
      const first = openSqlitePredictionLog(file);
      await first.record(forecasts.map((f) => f.entry));
      const [{ entry, actual }] = forecasts as [(typeof forecasts)[number]];
      const outcome = outcomeFor(entry, actual, new Date("2026-03-28T00:00:00Z"));
      await first.resolve(entry.model, [{ ...entry, outcome }]);
      const manual = { predicted_value: 1, actual_value: 2, tracked_at: "2026-03-28T01:00:00.000Z" };
      await first.track(entry.model, entry.prediction_id, manual);
      const before = await first.list(entry.model, { limit: 1000 });
      first.close();

      const reopened = openSqlitePredictionLog(file);
      try {
        expect(await reopened.list(entry.model, { limit: 1000 })).toEqual(before);
        expect(await reopened.get(entry.model, entry.prediction_id)).toEqual([
          { ...entry, ...outcome, manual },
        ]);
        expect(await reopened.record([entry])).toBe(0);
        expect(await reopened.due(entry.model, new Date("2026-06-01T00:00:00Z"), 100)).toHaveLength(
          forecasts.length - 1,
        );
      } finally {
        reopened.close();
      }
    } finally {
      await dir.cleanup();
    }
  });

  it("two connections to one file (two server processes) see each other's writes", async () => {
    const dir = await tempDir("edgeml-plog-");
    const file = join(dir.path, "predictions.db");
    const a = openSqlitePredictionLog(file);
    const b = openSqlitePredictionLog(file);
    try {
      const [first, second] = forecastsFrom(await btcBars(4)).map((f) => f.entry) as [
        PredictionEntry,
        PredictionEntry,
      ];
      expect(await a.record([first])).toBe(1);
      expect(await b.record([first, second])).toBe(1);
      expect((await a.list("BTC-24h")).items.map((r) => r.prediction_id)).toEqual([
        second.prediction_id,
        first.prediction_id,
      ]);
    } finally {
      a.close();
      b.close();
      await dir.cleanup();
    }
  });

  it("another process holding the write lock is a 503 not_ready, and nothing is half written", async () => {
    const dir = await tempDir("edgeml-plog-");
    const file = join(dir.path, "predictions.db");
    openSqlitePredictionLog(file).close();
    const other = new DatabaseSync(file);
    // Busy timeout 0: the lock is met at once, no wait for a timer to fire.
    const log = createSqlitePredictionLog(new DatabaseSync(file, { timeout: 0 }));
    try {
      other.exec("BEGIN IMMEDIATE");
      const entries = forecastsFrom(await btcBars(5)).map((f) => f.entry);
      await expect(log.record(entries)).rejects.toMatchObject({
        code: "not_ready",
        message: expect.stringMatching(/prediction log database could not record forecasts \(.*locked/),
      });
      other.exec("ROLLBACK");
      expect((await log.list("BTC-24h")).items).toEqual([]);
      expect(await log.record(entries)).toBe(entries.length);
    } finally {
      other.close();
      log.close();
      await dir.cleanup();
    }
  });

  it("runs in write-ahead-log mode", async () => {
    const dir = await tempDir("edgeml-plog-");
    try {
      const file = join(dir.path, "predictions.db");
      openSqlitePredictionLog(file).close();
      const db = new DatabaseSync(file);
      expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
      db.close();
    } finally {
      await dir.cleanup();
    }
  });

  it("a process killed in the middle of a batch leaves the batches before it whole and none of that batch", async () => {
    const dir = await tempDir("edgeml-plog-");
    try {
      const file = join(dir.path, "predictions.db");
      const entries = forecastsFrom(await btcBars(302)).map((f, i) => ({
        ...f.entry,
        prediction_id: `batch-${Math.floor(i / 100) + 1}-entry-${(i % 100) + 1}`,
      }));
      const batches = [entries.slice(0, 100), entries.slice(100, 200), entries.slice(200, 300)];
      const batchesFile = join(dir.path, "batches.json");
      await writeFile(batchesFile, JSON.stringify(batches));
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          join(REPO_ROOT, "test/storage/support/prediction-log-crash-child.ts"),
          file,
          batchesFile,
          "batch-3-entry-50",
        ],
        { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
        child.on("exit", (c, s) => resolve([c, s])),
      );
      expect({ code, signal, stderr: stderr.replace(/^.*ExperimentalWarning.*\n?/gm, "") }).toMatchObject({
        signal: "SIGKILL",
      });
      expect(stdout).toBe("committed 1\ncommitted 2\n");

      const reopened = openSqlitePredictionLog(file);
      try {
        const listed = (await reopened.list("BTC-24h", { limit: 1000 })).items.map((r) => r.prediction_id);
        expect(new Set(listed)).toEqual(new Set(entries.slice(0, 200).map((e) => e.prediction_id)));
        expect(await reopened.get("BTC-24h", "batch-3-entry-1")).toEqual([]);
        // The interrupted batch, sent again, is recorded whole.
        expect(await reopened.record(batches[2] as PredictionEntry[])).toBe(100);
      } finally {
        reopened.close();
      }
      const db = new DatabaseSync(file);
      expect(db.prepare("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
      db.close();
    } finally {
      await dir.cleanup();
    }
  });
});

describe("Upstash prediction log: keys, bounds and outages", () => {
  const make = (options: { capPerModel?: number; ttlSeconds?: number } = {}) => {
    const prefix = upstash.freshPrefix();
    return {
      prefix,
      log: createUpstashPredictionLog(upstash.client(), {
        prefix,
        timeoutMs: TEST_STORE_TIMEOUT_MS,
        ...options,
      }),
    };
  };

  it("keeps a hash per prediction id and two sorted sets by target time; the hash expires", async () => {
    const { prefix, log } = make({ ttlSeconds: 3600 });
    const [{ entry, actual }] = forecastsFrom(await btcBars(3), { source: "live" }) as [
      ReturnType<typeof forecastsFrom>[number],
    ];
    await log.record([entry]);
    const raw = upstash.client();
    const base = `${prefix}plog:BTC-24h:`;
    const member = `${entry.prediction_id} 1`;
    const score = Date.parse(entry.target_time);
    expect(await raw.zrange(`${base}t`, 0, -1, { withScores: true })).toEqual([member, score]);
    expect(await raw.zrange(`${base}due`, 0, -1, { withScores: true })).toEqual([member, score]);
    expect(await raw.hgetall(`${base}p:${entry.prediction_id}`)).toEqual({ "f:1": entry });
    const ttl = await raw.ttl(`${base}p:${entry.prediction_id}`);
    expect(ttl).toBeGreaterThan(3600 - 60);
    expect(ttl).toBeLessThanOrEqual(3600);

    const outcome = outcomeFor(entry, actual, new Date("2026-03-28T00:00:00Z"));
    await log.resolve("BTC-24h", [{ ...entry, outcome }]);
    const manual = { predicted_value: 1, actual_value: 2, tracked_at: "2026-03-28T01:00:00.000Z" };
    await log.track("BTC-24h", entry.prediction_id, manual);
    expect(await raw.zcard(`${base}due`)).toBe(0);
    expect(await raw.hgetall(`${base}p:${entry.prediction_id}`)).toEqual({
      "f:1": entry,
      "o:1": outcome,
      manual,
    });
  });

  it("uses a year's expiry and a cap of 20 000 unless told otherwise", () => {
    expect(PREDICTION_LOG_DEFAULTS).toMatchObject({ capPerModel: 20_000, ttlSeconds: 31_536_000 });
  });

  it("past the cap, the oldest records leave both sets and their hash", async () => {
    const { prefix, log } = make({ capPerModel: 3 });
    const entries = forecastsFrom(await btcBars(7)).map((f) => f.entry);
    await log.record(entries);
    const raw = upstash.client();
    const base = `${prefix}plog:BTC-24h:`;
    expect(await raw.zcard(`${base}t`)).toBe(3);
    expect(await raw.zcard(`${base}due`)).toBe(3);
    for (const gone of entries.slice(0, 2))
      expect(await raw.exists(`${base}p:${gone.prediction_id}`)).toBe(0);
  });

  it("an expired record is skipped by list and due, and its index entries are dropped", async () => {
    const { prefix, log } = make();
    const entries = forecastsFrom(await btcBars(6)).map((f) => f.entry);
    await log.record(entries);
    const raw = upstash.client();
    const base = `${prefix}plog:BTC-24h:`;
    const expired = entries[1] as PredictionEntry;
    await raw.del(`${base}p:${expired.prediction_id}`); // what its TTL would do
    const listed = (await log.list("BTC-24h")).items.map((r) => r.prediction_id);
    expect(listed).toEqual(
      entries
        .filter((e) => e !== expired)
        .map((e) => e.prediction_id)
        .reverse(),
    );
    expect(await raw.zcard(`${base}t`)).toBe(entries.length - 1);
    expect(await raw.zcard(`${base}due`)).toBe(entries.length - 1);
    expect(await log.due("BTC-24h", new Date("2026-06-01T00:00:00Z"), 100)).toHaveLength(entries.length - 1);
  });

  it("an outage is a 503 not_ready with a message, for writes and reads", async () => {
    const { log } = make();
    const [{ entry }] = forecastsFrom(await btcBars(3)) as [ReturnType<typeof forecastsFrom>[number]];
    await upstash.redisServer.kill();
    try {
      await expect(log.record([entry])).rejects.toMatchObject({
        code: "not_ready",
        message: expect.stringMatching(/prediction log is unavailable/),
      });
      await expect(log.list("BTC-24h")).rejects.toMatchObject({ code: "not_ready" });
      await expect(log.due("BTC-24h", new Date(), 10)).rejects.toMatchObject({ code: "not_ready" });
    } finally {
      await upstash.redisServer.restart();
      await eventually(async () => upstash.bridge.redisReady(), "the bridge reconnects");
    }
  });
});
