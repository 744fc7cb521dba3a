import { cp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { createServices, type Services } from "../../src/services/index.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import type { PointerStore, Rollout } from "../../src/storage/pointers.js";
import type { PredictionLog, PredictionRecord } from "../../src/storage/prediction-log.js";
import { dieboldMariano } from "../../src/training/diebold-mariano.js";
import { exportRidge } from "../../src/training/onnx/export.js";
import { testEngine } from "../support/app.js";
import { MARKET_DATA, REPO_ROOT } from "../support/paths.js";

export const MODEL = "BTC-24h";
const DAY = 86_400_000;

/** A clock the test moves. */
export function clock(start: string) {
  let now = Date.parse(start);
  return {
    now: () => new Date(now),
    set: (iso: string) => {
      now = Date.parse(iso);
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/**
 * The shipped models copied into `dir` (BTC-24h: v1 gbdt, v2 ridge, v3 naive, the champion), on the real CSVs, with
 * the Diebold–Mariano test wired as on Node; the prediction log given (default process memory).
 */
export async function rolloutServices(
  dir: string,
  now: () => Date,
  options: { log?: PredictionLog; freshPointers?: boolean; adminToken?: string; withoutTest?: boolean } = {},
): Promise<{ services: Services; pointers: PointerStore; log: PredictionLog }> {
  const log = options.log ?? createMemoryPredictionLog();
  const models = join(dir, "models");
  await cp(join(REPO_ROOT, "models"), models, { recursive: true });
  // No pointers and no audit log: a model whose champion history starts with the test.
  if (options.freshPointers) await writeFile(join(models, "pointers.json"), '{"models": {}, "audit": []}\n');
  const pointers = createJsonFilePointerStore(join(models, "pointers.json"));
  const services = createServices(
    {
      artifacts: createFsArtifactStore(models),
      pointers,
      engine: testEngine(),
      market: createCsvMarketData({ dir: MARKET_DATA }),
      predictionLog: log,
      // As on the edge: no test, so decisions answer 501.
      ...(options.withoutTest ? {} : { pairedTest: dieboldMariano }),
    },
    {
      logger: silentLogger,
      now,
      ...(options.adminToken ? { config: { adminToken: options.adminToken } } : {}),
    },
  );
  return { services, pointers, log };
}

/**
 * Registers a deliberately bad forecaster of BTC-24h, built with the project's exporter: a ridge model with zero
 * weights whose intercept is a constant log return (`logReturn` a day, whatever the market did). Same feature set,
 * forecast spec and data cutoff as the shipped ridge version, so it backfills over the same bars. Real prices,
 * invented model.
 */
export async function registerConstantForecaster(services: Services, logReturn: number): Promise<string> {
  const sibling = await services.registry.metadata(MODEL, "2");
  const spec = sibling.forecast;
  const names = sibling.feature_names ?? [];
  if (!spec || !sibling.feature_set) throw new Error("the shipped ridge version has no forecast spec");
  const F = names.length;
  const bytes = exportRidge(
    {
      family: "ridge",
      nFeatures: F,
      weights: new Float64Array(F),
      intercept: logReturn,
      standardizedWeights: new Float64Array(F),
      alpha: 1,
      params: { alphas: [1] },
      validationLoss: [],
    },
    {
      featureSet: sibling.feature_set,
      featureNames: names,
      symbol: spec.symbol,
      interval: spec.interval,
      horizonBars: spec.horizon_bars,
      description: `constant log return ${logReturn}: a deliberately bad forecaster`,
    },
  );
  const registered = await services.registry.register(MODEL, bytes, {
    description: `BTC 24h, a constant log return of ${logReturn} a day: deliberately bad, for the rollout tests`,
    tags: { family: "constant" },
    metrics: {},
    feature_set: sibling.feature_set,
    feature_names: names,
    forecast: spec,
    ...(sibling.data_cutoff ? { data_cutoff: sibling.data_cutoff } : {}),
  });
  return registered.version;
}

/** Starts a rollout by writing its pointer with a `rollout_start` entry, as `POST …/rollout` does. */
export async function startRollout(
  pointers: PointerStore,
  rollout: Omit<Rollout, "champion"> & { champion?: string | null },
): Promise<Rollout> {
  let started: Rollout | undefined;
  await pointers.update(MODEL, (current) => {
    started = { ...rollout, champion: rollout.champion ?? current.champion ?? null };
    return {
      pointers: { ...current, rollout: started },
      entry: {
        at: rollout.started_at,
        model: MODEL,
        action: "rollout_start",
        from: current.champion ?? null,
        to: rollout.challenger,
        rollout_id: rollout.id,
      },
    };
  });
  return started as Rollout;
}

/** Every record of the model in the log, any source. */
export async function everyRecord(log: PredictionLog, model = MODEL): Promise<PredictionRecord[]> {
  const records: PredictionRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await log.list(model, { limit: 1000, ...(cursor ? { cursor } : {}) });
    records.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return records;
}

/**
 * The test recomputed from the log, without src/rollout: each version's resolved records of `source` served within
 * [from, to], one per target time, joined on the target time; d = |challenger error| − |champion error| in target
 * order, and the one-sided Diebold–Mariano p-values of "better" (d < 0) and "worse" (d > 0) at horizon 1 (daily).
 */
export function recompute(
  records: readonly PredictionRecord[],
  options: { champion: string; challenger: string; source: string; from: number; to: number },
) {
  const byTarget = (version: string) => {
    const map = new Map<number, number>();
    for (const r of records) {
      const served = Date.parse(r.served_at);
      if (r.version !== version || r.source !== options.source || r.error_pct === undefined) continue;
      if (served < options.from || served > options.to) continue;
      const t = Date.parse(r.target_time);
      if (!map.has(t)) map.set(t, Math.abs(r.error_pct));
    }
    return map;
  };
  const champion = byTarget(options.champion);
  const challenger = byTarget(options.challenger);
  const targets = [...challenger.keys()].filter((t) => champion.has(t)).sort((a, b) => a - b);
  const d = targets.map((t) => (challenger.get(t) as number) - (champion.get(t) as number));
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const better = dieboldMariano(d, 1);
  const worse = dieboldMariano(
    d.map((x) => -x),
    1,
  );
  return {
    pairs: targets.length,
    first: new Date(targets[0] ?? Number.NaN).toISOString(),
    last: new Date(targets.at(-1) ?? Number.NaN).toISOString(),
    champion_mape: mean(targets.map((t) => champion.get(t) as number)),
    challenger_mape: mean(targets.map((t) => challenger.get(t) as number)),
    statistic: better.statistic,
    p_better: better.pValue,
    p_worse: worse.pValue,
    decision: better.pValue < 0.05 ? "promote" : worse.pValue < 0.05 ? "end" : "continue",
  };
}

export const days = (n: number) => n * DAY;

/**
 * Copies `version`'s resolved backfill records into the log as `live` forecasts served at their as-of (new prediction
 * ids, the same outcomes): backfilled real data standing in for a version's live history.
 */
export async function backfillAsLive(log: PredictionLog, version: string): Promise<PredictionRecord[]> {
  const records = (await everyRecord(log)).filter(
    (r) => r.version === version && r.source === "backfill" && r.actual_price !== undefined,
  );
  const live = records.map((r) => ({
    ...r,
    prediction_id: `live-${r.prediction_id}`,
    source: "live" as const,
  }));
  await log.record(
    live.map(
      ({
        actual_price,
        actual_time,
        error_pct,
        naive_error_pct,
        direction_hit,
        resolved_at,
        manual,
        ...entry
      }) => entry,
    ),
  );
  await log.resolve(
    MODEL,
    live.map((r) => ({
      prediction_id: r.prediction_id,
      version: r.version,
      outcome: {
        actual_price: r.actual_price as number,
        actual_time: r.actual_time as string,
        error_pct: r.error_pct as number,
        naive_error_pct: r.naive_error_pct as number,
        direction_hit: r.direction_hit as boolean,
        resolved_at: r.resolved_at as string,
      },
    })),
  );
  return live;
}
