import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isEdgeMLError } from "../../src/errors.js";
import { createOrtEngine } from "../../src/inference/engine.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import type { Bar } from "../../src/market/types.js";
import { MAX_BACKFILL_BARS } from "../../src/performance/backfill.js";
import { type RegistrationInput, VersionMetadataSchema } from "../../src/registry/metadata.js";
import { naiveExportInputOf, naiveRegistrationOf } from "../../src/selection/naive.js";
import { createServices, type Services } from "../../src/services/index.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { openSqlitePredictionLog } from "../../src/storage/node/sqlite-prediction-log.js";
import type { PredictionLog, PredictionRecord } from "../../src/storage/prediction-log.js";
import { createUpstashPredictionLog } from "../../src/storage/upstash-prediction-log.js";
import { exportNaive } from "../../src/training/onnx/export.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "../storage/support/upstash.js";
import { testEngine } from "../support/app.js";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/**
 * Backfill on the shipped models and the real CSVs: every forecast is what serving would have answered at that bar's
 * close, recorded as `backfill`, and resolved to the CSV's close at its target time; nothing at or before the
 * version's data cutoff is replayed; a rerun records nothing twice. On every prediction-log adapter.
 */
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const upstash = useLocalUpstash();
const market = createCsvMarketData({ dir: MARKET_DATA });

/** The CSV's own rows, read here without the project's parser: date → Close, as the file says. */
async function csvCloses(file: string): Promise<Map<string, number>> {
  const lines = (await readFile(join(MARKET_DATA, file), "utf8")).trim().split(/\r?\n/).slice(1);
  return new Map(lines.map((line) => line.split(",")).map((cells) => [cells[0] ?? "", Number(cells[4])]));
}

/** Services over the shipped models in models/ (read only) with the given prediction log. */
function servicesOver(predictionLog: PredictionLog, dir: string, now?: () => Date): Services {
  return createServices(
    {
      artifacts: createFsArtifactStore(join(REPO_ROOT, "models")),
      pointers: createJsonFilePointerStore(join(dir, "pointers.json")),
      engine: testEngine(),
      market,
      predictionLog,
    },
    { logger: silentLogger, ...(now && { now }) },
  );
}

async function allRecords(log: PredictionLog, model: string): Promise<PredictionRecord[]> {
  return (await log.list(model, { limit: 1000 })).items.sort((a, b) => a.as_of.localeCompare(b.as_of));
}

const ADAPTERS: [string, (dir: string) => { log: PredictionLog; close?: () => void }][] = [
  ["process memory", () => ({ log: createMemoryPredictionLog() })],
  [
    "node:sqlite",
    (dir) => {
      const log = openSqlitePredictionLog(join(dir, "predictions.sqlite"));
      return { log, close: () => log.close() };
    },
  ],
  [
    "Upstash Redis",
    () => ({
      log: createUpstashPredictionLog(upstash.client(), {
        prefix: upstash.freshPrefix(),
        timeoutMs: TEST_STORE_TIMEOUT_MS,
      }),
    }),
  ],
];

describe.each(ADAPTERS)("backfill of the shipped models on the prediction log in %s", (_, open) => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: ReturnType<typeof open>;
  let services: Services;
  let bars: Bar[];
  let closes: Map<string, number>;
  beforeAll(async () => {
    dir = await tempDir("edgeml-backfill-");
    store = open(dir.path);
    services = servicesOver(store.log, dir.path);
    bars = await market.getBars("BTC", "1d");
    closes = await csvCloses("BTC-USD_1d.csv");
  });
  afterAll(async () => {
    store.close?.();
    await dir.cleanup();
  });

  /** The dates of the CSV's last 60 rows: a date is an as-of instant (00:00 UTC), so the forecasts dated so. */
  const last60 = () => ({
    from: iso((bars.at(-60) as Bar).time).slice(0, 10),
    to: iso((bars.at(-1) as Bar).time).slice(0, 10),
  });

  it("over the last 60 days of the CSV: 60 forecasts, every one resolved to the CSV's close at its target_time", async () => {
    expect(last60()).toEqual({ from: "2026-01-27", to: "2026-03-27" });
    // A trained version (the policy serves the naive baseline, which replays anything: tested below).
    const summary = await services.backfill.run({ model: "BTC-24h", version: "1", ...last60() });
    const trained = await services.registry.metadata("BTC-24h", "1");
    expect(summary).toMatchObject({
      model: "BTC-24h",
      version: "1",
      chosen_via: "requested",
      data_cutoff: trained.data_cutoff,
      from: "2026-01-27T00:00:00.000Z",
      to: "2026-03-27T00:00:00.000Z",
      forecasts: 60,
      recorded: 60,
      resolved: 60,
      unresolved: 0,
      skipped_before_cutoff: 0,
      skipped_no_data: 0,
      first_as_of: "2026-01-27T00:00:00.000Z",
      last_as_of: "2026-03-27T00:00:00.000Z",
    });
    const records = await allRecords(store.log, "BTC-24h");
    expect(records).toHaveLength(60);
    for (const record of records) {
      // A daily bar dated D closes at D + 1 day: the actual is the CSV row dated target_time − 1 day.
      const row = iso(Date.parse(record.target_time) - DAY).slice(0, 10);
      expect(record.actual_price, `${record.as_of}: close of the row dated ${row}`).toBe(closes.get(row));
      expect(record.actual_time).toBe(record.target_time);
      const actual = closes.get(row) ?? Number.NaN;
      expect(record.error_pct).toBeCloseTo((100 * (record.predicted_price - actual)) / actual, 9);
      expect(record.naive_error_pct).toBeCloseTo((100 * (record.last_close - actual)) / actual, 9);
    }
    // Checked by hand against the file: the row dated 2026-03-27 closes at 66076.140625, 2026-03-26 at 68791.625.
    const byTarget = new Map(records.map((r) => [r.target_time, r]));
    expect(byTarget.get("2026-03-28T00:00:00.000Z")?.actual_price).toBe(66076.140625);
    expect(byTarget.get("2026-03-27T00:00:00.000Z")?.actual_price).toBe(68791.625);
    expect(byTarget.get("2026-03-28T00:00:00.000Z")?.last_close).toBe(68791.625);
  });

  it("a forecast made at the CSV's last close stays unresolved: its target bar is not in the data yet", async () => {
    const summary = await services.backfill.run({
      model: "BTC-24h",
      version: "1",
      from: "2026-01-27",
      to: "2026-03-28",
    });
    expect(summary).toMatchObject({ forecasts: 61, recorded: 1, resolved: 60, unresolved: 1 });
    const records = await allRecords(store.log, "BTC-24h");
    const last = records.at(-1) as PredictionRecord;
    expect(last).toMatchObject({
      as_of: "2026-03-28T00:00:00.000Z",
      target_time: "2026-03-29T00:00:00.000Z",
    });
    expect(last.actual_price).toBeUndefined();
  });

  it("records each as source backfill, served at its as-of, target one day later, with a deterministic id", async () => {
    const records = await allRecords(store.log, "BTC-24h");
    for (const record of records) {
      const asOf = Date.parse(record.as_of);
      expect(record).toMatchObject({
        source: "backfill",
        symbol: "BTC",
        horizon: "24h",
        served_at: record.as_of,
        target_time: iso(asOf + DAY),
        prediction_id: `bf-${record.version}-${asOf}`,
      });
      // The last close is that of the bar closing at as_of: the CSV row dated as_of − 1 day.
      expect(record.last_close).toBe(closes.get(iso(asOf - DAY).slice(0, 10)));
    }
  });

  it("a rerun records nothing new and changes no outcome", async () => {
    const before = await allRecords(store.log, "BTC-24h");
    const again = await services.backfill.run({
      model: "BTC-24h",
      version: "1",
      from: "2026-01-27",
      to: "2026-03-28",
    });
    expect(again).toMatchObject({ forecasts: 61, recorded: 0, resolved: 60, unresolved: 1 });
    expect(await allRecords(store.log, "BTC-24h")).toEqual(before);
  });

  it("a named version is replayed beside the other, chosen_via requested", async () => {
    const summary = await services.backfill.run({ model: "ETH-24h", version: "1", ...last60() });
    expect(summary).toMatchObject({ version: "1", chosen_via: "requested", forecasts: 60, resolved: 60 });
    const eth = await csvCloses("ETH-USD_1d.csv");
    const records = await allRecords(store.log, "ETH-24h");
    expect(records.every((r) => r.version === "1" && r.chosen_via === "requested")).toBe(true);
    for (const record of records) {
      expect(record.actual_price).toBe(eth.get(iso(Date.parse(record.target_time) - DAY).slice(0, 10)));
    }
  });

  it("skips the bars at or before the data cutoff, and refuses a range that holds nothing else", async () => {
    const meta = await services.registry.metadata("BTC-24h", "2");
    const cutoff = Date.parse(meta.data_cutoff ?? "");
    const summary = await services.backfill.run({
      model: "BTC-24h",
      version: "2",
      from: iso(cutoff - 9 * DAY),
      to: iso(cutoff + 3 * DAY),
    });
    // as_of cutoff − 9 d .. cutoff: ten bars in sample; cutoff + 1 d .. + 3 d: three replayed.
    expect(summary).toMatchObject({
      skipped_before_cutoff: 10,
      forecasts: 3,
      first_as_of: iso(cutoff + DAY),
    });
    const records = await allRecords(store.log, "BTC-24h");
    expect(records.every((r) => Date.parse(r.as_of) > cutoff)).toBe(true);

    const refused = services.backfill.run({
      model: "BTC-24h",
      version: "2",
      from: iso(cutoff - 30 * DAY),
      to: iso(cutoff),
    });
    await expect(refused).rejects.toMatchObject({ code: "invalid_request" });
    await expect(refused).rejects.toThrow(/at or before BTC-24h@\d+'s data_cutoff 2025-12-28T00:00:00.000Z/);
  });
});

describe("backfill forecasts are the ones serving answers", () => {
  it.each([["2026-01-15T00:00:00.000Z"], ["2026-03-01T00:00:00.000Z"]])(
    "as of %s: the same version, last close and log return, bit for bit",
    async (asOf) => {
      const dir = await tempDir("edgeml-backfill-");
      try {
        // A clock one hour after the close: serving's as-of bar is the one closing at `asOf`.
        const served = servicesOver(
          createMemoryPredictionLog(),
          dir.path,
          () => new Date(Date.parse(asOf) + 3_600_000),
        );
        const { forecast } = await served.forecaster.forecast("BTC", "24h");
        const replayed = servicesOver(createMemoryPredictionLog(), dir.path);
        await replayed.backfill.run({ model: "BTC-24h", from: asOf, to: asOf });
        const [record] = await allRecords(replayed.predictionLog, "BTC-24h");
        expect(record).toMatchObject({
          version: forecast.model_version,
          as_of: forecast.as_of,
          target_time: forecast.target_time,
          last_close: forecast.last_close,
        });
        expect(Object.is(record?.predicted_log_return, forecast.predicted_log_return)).toBe(true);
        expect(record?.predicted_price).toBe(forecast.predicted_price);
      } finally {
        await dir.cleanup();
      }
    },
  );
});

describe("backfill refuses what it cannot replay honestly", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let services: Services;
  beforeAll(async () => {
    dir = await tempDir("edgeml-backfill-");
    services = servicesOver(createMemoryPredictionLog(), dir.path);
  });
  afterAll(() => dir.cleanup());

  const code = async (work: Promise<unknown>) =>
    work.then(
      () => "resolved",
      (error: unknown) => (isEdgeMLError(error) ? `${error.code}: ${error.message}` : String(error)),
    );

  it.each([
    [
      "from after to",
      { from: "2026-03-01", to: "2026-02-01" },
      /invalid_request: .*from must not be after to/,
    ],
    ["a date that is no date", { from: "2026-02-30", to: "2026-03-01" }, /invalid_request/],
    ["an unknown field", { from: "2026-02-01", to: "2026-03-01", horizon: "48h" }, /invalid_request/],
    [
      `more than ${MAX_BACKFILL_BARS} bars`,
      { from: "2020-01-01", to: "2026-03-27" },
      new RegExp(`invalid_request: .*at most ${MAX_BACKFILL_BARS}`),
    ],
    ["an unknown model", { model: "DOGE-24h", from: "2026-02-01", to: "2026-03-01" }, /model_not_found/],
    ["an unknown version", { version: "9", from: "2026-02-01", to: "2026-03-01" }, /version_not_found/],
  ])("%s", async (_, request, expected) => {
    expect(await code(services.backfill.run({ model: "BTC-24h", ...request } as never))).toMatch(expected);
  });

  it("a version without data_cutoff is a 409 conflict that says to retrain", async () => {
    const pathOf = dir.path;
    const registry = createServices(
      {
        artifacts: createFsArtifactStore(join(pathOf, "models")),
        pointers: createJsonFilePointerStore(join(pathOf, "own-pointers.json")),
        engine: testEngine(),
        market,
      },
      { logger: silentLogger },
    );
    const shipped = VersionMetadataSchema.parse(
      JSON.parse(await readFile(join(REPO_ROOT, "models/BTC-24h/2/metadata.json"), "utf8")),
    );
    const { description, tags, metrics, feature_set, feature_names, forecast, golden, report } = shipped;
    const input: RegistrationInput = {
      description,
      tags,
      metrics,
      feature_set,
      feature_names,
      forecast,
      golden,
      report,
    };
    const bytes = new Uint8Array(await readFile(join(REPO_ROOT, "models/BTC-24h/2/model.onnx")));
    await registry.registry.register("BTC-24h", bytes, input);
    const error = await registry.backfill
      .run({ model: "BTC-24h", from: "2026-02-01", to: "2026-03-01" })
      .catch((e) => e);
    expect(isEdgeMLError(error) && error.status).toBe(409);
    expect(String(error.message)).toMatch(/BTC-24h@1 has no data_cutoff.*retrain it/);
  });

  it("the naive baseline, fitted on nothing, replays any range: every forecast is the last close", async () => {
    const own = await tempDir();
    try {
      const built = createServices(
        {
          artifacts: createFsArtifactStore(join(own.path, "models")),
          pointers: createJsonFilePointerStore(join(own.path, "pointers.json")),
          // An engine of its own: sessions are keyed by name@version, and this file's shared engine holds the
          // shipped BTC-24h@1 under that key.
          engine: createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 30, timeoutMs: 30_000 }),
          market,
        },
        { logger: silentLogger },
      );
      const sibling = VersionMetadataSchema.parse(
        JSON.parse(await readFile(join(REPO_ROOT, "models/BTC-24h/1/metadata.json"), "utf8")),
      );
      const naive = await built.registry.register(
        "BTC-24h",
        exportNaive(naiveExportInputOf(sibling)),
        naiveRegistrationOf(sibling),
      );
      expect(naive.tags?.family).toBe("naive");
      const summary = await built.backfill.run({ model: "BTC-24h", from: "2020-01-01", to: "2020-01-31" });
      expect(summary).toMatchObject({
        version: naive.version,
        data_cutoff: null,
        forecasts: 31,
        resolved: 31,
      });
      const { items } = await built.predictionLog.list("BTC-24h", { source: "backfill", limit: 100 });
      expect(items).toHaveLength(31);
      for (const item of items) {
        expect(item.predicted_price).toBe(item.last_close);
        expect(item.error_pct).toBe(item.naive_error_pct);
      }
    } finally {
      await own.cleanup();
    }
  });
});
