import { z } from "zod";
import { asEdgeMLError, EdgeMLError, errorMessage } from "../errors.js";
import { FeatureError } from "../features/index.js";
import type { Logger } from "../logger.js";
import { INTERVAL_MS, isoTime, resolveSymbol } from "../market/symbols.js";
import type { Bar, Interval, MarketDataSource } from "../market/types.js";
import type { RegistrationInput } from "../registry/metadata.js";
import type { Registry } from "../registry/registry.js";
import { type NaiveExporter, naiveExportInputOf, naiveRegistrationOf } from "../selection/naive.js";
import { isNaive } from "../selection/policy.js";
import type { SelectionOutcome } from "../selection/select.js";
import type { JobStore, TrainingJob } from "../storage/jobs.js";
import type { Mutex } from "../storage/single-flight.js";
import { TrainingError } from "../training/errors.js";
import type {
  EvaluationReport,
  ModelFamily,
  TrainedForecaster,
  TrainForecasterInput,
} from "../training/forecaster.js";
import { DEFAULT_HORIZON, forecastModelName, horizonHours } from "./horizon.js";
import { createJobStateWriter, JOB_WRITE_RETRY, type JobWriteRetry } from "./job-state.js";

/**
 * The trainer port: fits one forecaster and exports it to ONNX. src/training's `trainForecaster` where training runs
 * (Node: the server, the training script, the Vercel training function); left out of the edge wiring, whose bundle
 * then carries no trainer at all.
 */
export type Trainer = ((input: TrainForecasterInput) => Promise<TrainedForecaster>) & {
  /** Exports the naive baseline's ONNX (src/training's exportNaive); absent, trainSymbol registers no naive version. */
  exportNaive?: NaiveExporter;
};

/** What a training run trains for one symbol. The defaults are the users' product: 24h ahead from daily bars. */
export interface TrainingPlan {
  horizon: string;
  interval: Interval;
  families: ModelFamily[];
  seed: number;
}

export const DEFAULT_PLAN: TrainingPlan = {
  horizon: DEFAULT_HORIZON,
  // Daily bars: Yahoo serves a decade of them (hourly only the last 730 days), and the 24h target is one bar ahead.
  interval: "1d",
  // The GBDT and its linear baseline: best-version selection keeps whichever beats naive on held-out data.
  families: ["gbdt", "ridge"],
  seed: 42,
};

export interface TrainedVersion {
  family: ModelFamily;
  version: string;
  name: string;
  report: EvaluationReport;
  /**
   * Set when the run registered nothing: the trained model has the bytes and calibration of this existing version
   * (`version` is then that version too), as a retrain on unchanged data with the same seed does.
   */
  duplicate_of?: string;
  /** Versions retention archived when this one registered. */
  archived?: string[];
}

/**
 * `until` as a client writes it: a date (`2025-12-27`: that whole UTC day, so the daily bar dated 2025-12-27 is the
 * last one read) or an instant (`2025-12-27T12:00:00Z`). Parsed to the instant by which every bar read has closed.
 */
export const UntilSchema = z
  .union([
    z.iso.date().transform((day) => new Date(Date.parse(`${day}T00:00:00Z`) + INTERVAL_MS["1d"])),
    z.iso.datetime({ offset: true }).transform((instant) => new Date(instant)),
  ])
  .describe(
    "Train only on bars closed by this instant: a date (YYYY-MM-DD, that whole UTC day included) or an ISO 8601 date-time",
  );

/**
 * The close time of the last bar a trained version read: every split (train, validation, test) ends at or before
 * it, and the last test target is that bar's close. Backfill replays only forecasts made after it.
 */
export function dataCutoffOf(report: Pick<EvaluationReport, "data" | "interval">): string {
  return isoTime(Date.parse(report.data.last) + INTERVAL_MS[report.interval]);
}

/** The registry form of a trained forecaster: metrics for ranking, the full report, golden rows, the forecast spec. */
export function registrationOf(trained: TrainedForecaster, plan: TrainingPlan): RegistrationInput {
  const { report } = trained;
  const width = trained.featureNames.length;
  const rows = trained.golden.inputs.length;
  return {
    description: `${report.symbol} ${plan.horizon} log-return forecaster (${report.family}), ${report.interval} bars ${report.data.first.slice(0, 10)}..${report.data.last.slice(0, 10)}`,
    tags: { family: report.family, symbol: report.symbol, interval: report.interval, trainer: "edgeml" },
    metrics: {
      skill: report.test.skill,
      mape: report.test.mape,
      naive_mape: report.test.naiveMape,
      r2_log_return: report.test.r2LogReturn,
      direction_accuracy: report.test.directionAccuracy,
      r2_price: report.test.r2Price,
      test_rows: report.test.rows,
      // Walk-forward: mean skill over the calendar folds (shared by versions whose data covers them) and the one-sided
      // Diebold–Mariano p-value of "beats naive" over all fold rows: what selection compares on.
      wf_skill: report.walk_forward.mean_skill,
      wf_skill_std: report.walk_forward.std_skill,
      wf_folds: report.walk_forward.folds.length,
      dm_p_value: report.walk_forward.dm_p_value,
    },
    feature_set: { name: trained.featureSet.name, version: trained.featureSet.version },
    feature_names: [...trained.featureNames],
    forecast: {
      symbol: report.symbol,
      interval: report.interval,
      horizon: plan.horizon,
      horizon_bars: report.horizonBars,
      target: "log_return",
    },
    // Exact: the trainer checked bit parity on the whole test split; a loaded artifact must give the same bits.
    golden: {
      atol: 0,
      cases: [
        {
          inputs: [
            { name: "features", datatype: "FP64", shape: [rows, width], data: trained.golden.inputs.flat() },
          ],
          outputs: [{ name: "log_return", datatype: "FP64", shape: [rows, 1], data: trained.golden.outputs }],
        },
      ],
    },
    data_cutoff: dataCutoffOf(report),
    report: report as unknown as Record<string, unknown>,
    // What serving reads to turn a forecast into an interval (src/forecast/interval.ts).
    calibration: trained.calibration,
  };
}

/**
 * The bars a run trains on: all the source has, or those closed by `until`. An `until` the data cannot honour is the
 * caller's to fix (400): before the first bar closes, or past the last bar (the version would claim a cutoff it does
 * not have). One so early that too few rows are left for the splits is refused by the trainer (see trainSymbol).
 */
export async function trainingBars(
  market: MarketDataSource,
  symbol: string,
  interval: Interval,
  until?: Date,
): Promise<Bar[]> {
  const all = await market.getBars(symbol, interval);
  if (!until) return all;
  const step = INTERVAL_MS[interval];
  const untilMs = until.getTime();
  const bars = all.filter((bar) => bar.time + step <= untilMs);
  const first = all[0] as Bar;
  const last = all.at(-1) as Bar;
  if (bars.length === 0) {
    throw new EdgeMLError(
      "invalid_request",
      `no ${symbol} ${interval} bar of ${market.name} closes by until ${isoTime(untilMs)}: the first closes at ${isoTime(first.time + step)}; pass a later until`,
    );
  }
  if (last.time + 2 * step <= untilMs) {
    throw new EdgeMLError(
      "invalid_request",
      `until ${isoTime(untilMs)} is past the ${symbol} ${interval} data of ${market.name}, whose last bar closes at ${isoTime(last.time + step)}; pass an until at or before it, or leave until out to train on all of it`,
    );
  }
  return bars;
}

/**
 * Too little history is the market data's fault (503) when the source has no more, but the caller's (400) when their
 * `until` cut it short: the trainer's own check (the split's minimum rows) decides, and this names the fix.
 */
function tooEarly(error: unknown, bars: readonly Bar[], until: Date | undefined): EdgeMLError | undefined {
  const short =
    (error instanceof TrainingError && error.kind === "insufficient_data") ||
    (error instanceof FeatureError && error.kind === "insufficient_history");
  if (!until || !short) return undefined;
  const first = bars[0] as Bar;
  return new EdgeMLError(
    "invalid_request",
    `until ${isoTime(until.getTime())} leaves ${bars.length} bars (from ${isoTime(first.time)}), too few for train, validation and test splits; pass a later until`,
    { cause: error },
  );
}

/** The plan's horizon in bars of its interval; 400 when it is not a whole number of them. */
function horizonBarsOf(plan: TrainingPlan): number {
  const hours = horizonHours(plan.horizon);
  const barHours = INTERVAL_MS[plan.interval] / 3_600_000;
  if (!hours || hours % barHours !== 0) {
    throw new EdgeMLError(
      "invalid_request",
      `horizon ${plan.horizon} is not a whole number of ${plan.interval} bars`,
    );
  }
  return hours / barHours;
}

/**
 * Trains every family of the plan for one symbol on the source's full history and registers each as a new version.
 * Registration re-checks the golden rows in the serving engine, so what is registered is what serves. Then, once per
 * model, the naive baseline is registered beside them (when the trainer exports one), and the selection policy
 * decides which version serves (registry.select: a champion a person set stays).
 */
export async function trainSymbol(options: {
  symbol: string;
  trainer: Trainer;
  market: MarketDataSource;
  registry: Registry;
  plan?: Partial<TrainingPlan>;
  /** Train only on bars closed by this instant (see UntilSchema); default all the source has. */
  until?: Date;
  onProgress?: (message: string) => void;
  /** What the selection policy decided after registering (src/selection/select.ts). */
  onSelection?: (outcome: SelectionOutcome) => void;
}): Promise<TrainedVersion[]> {
  const plan = { ...DEFAULT_PLAN, ...options.plan };
  const symbol = resolveSymbol(options.symbol);
  const horizonBars = horizonBarsOf(plan);
  const progress = options.onProgress ?? (() => {});
  progress(`fetching ${symbol} ${plan.interval} bars from ${options.market.name}`);
  const bars = await trainingBars(options.market, symbol, plan.interval, options.until);
  const name = forecastModelName(symbol, plan.horizon);
  const results: TrainedVersion[] = [];
  let sibling: { registration: RegistrationInput; naive?: TrainedForecaster["naive"] } | undefined;
  for (const family of plan.families) {
    progress(`training ${name} ${family} on ${bars.length} bars`);
    const trained = await options
      .trainer({ bars, symbol, interval: plan.interval, horizonBars, family, seed: plan.seed })
      .catch((error: unknown) => {
        throw tooEarly(error, bars, options.until) ?? error;
      });
    progress(`registering ${name} ${family}`);
    const registration = registrationOf(trained, plan);
    sibling ??= { registration, naive: trained.naive };
    const meta = await options.registry.register(name, trained.onnx, registration);
    results.push({
      family,
      version: meta.version,
      name,
      report: trained.report,
      ...(meta.duplicate_of !== undefined && { duplicate_of: meta.duplicate_of }),
      ...(meta.archived && { archived: meta.archived }),
    });
  }
  if (sibling && options.trainer.exportNaive) {
    await registerNaiveOnce(
      options.registry,
      name,
      options.trainer.exportNaive,
      sibling.registration,
      sibling.naive,
      progress,
    );
  }
  // The policy decides what serves, where training runs and never per request; a retrain that equals an existing
  // version is no new candidate (no fresh lottery ticket).
  const selection = await options.registry.select(name, {
    candidates: results.filter((r) => r.duplicate_of === undefined).map((r) => r.version),
  });
  progress(selection.reason);
  options.onSelection?.(selection);
  return results;
}

/**
 * Registers the model's naive baseline unless it has one: the same ONNX contract, feature set, forecast spec and
 * golden inputs as `sibling` (a version trained in this run), predicting no change. Once per model, not per run.
 * Its interval calibration and report (`naive`) are the sibling run's, computed with ŷ = 0 on the same test split
 * and walk-forward folds: naive fits nothing, so those rows are out of sample for it as for the sibling. A trainer
 * that gives none (one without intervals) registers a naive version without calibration: `interval: null`.
 */
async function registerNaiveOnce(
  registry: Registry,
  name: string,
  exportNaive: NaiveExporter,
  sibling: RegistrationInput,
  naive: TrainedForecaster["naive"] | undefined,
  progress: (message: string) => void,
): Promise<string> {
  const existing = (await registry.versions(name)).find(isNaive);
  if (existing) return existing.version;
  progress(`registering ${name} naive baseline`);
  const registration = naiveRegistrationOf(sibling);
  const meta = await registry.register(name, exportNaive(naiveExportInputOf(sibling)), {
    ...registration,
    ...(naive && {
      report: { ...registration.report, intervals: naive.intervals },
      calibration: naive.calibration,
    }),
  });
  return meta.version;
}

/** What serves after a run and why, for the job's result: the policy's champion and evidence, or why it kept one. */
const selectionResult = (outcome: SelectionOutcome | undefined) =>
  outcome && {
    selection: {
      changed: outcome.entry !== undefined,
      champion: outcome.entry?.to,
      evidence: outcome.entry?.evidence,
      reason: outcome.reason,
    },
  };

/** What one training request may ask beyond the symbol. */
export interface TrainOptions {
  /** Train only on bars closed by this instant (UntilSchema); default all the source has. */
  until?: Date;
}

/** Jobs this process finished but could not store, kept at most this long (the store's own TTL) and this many. */
const UNSTORED_TTL_MS = 24 * 60 * 60 * 1000;
const UNSTORED_MAX = 1_000;

/**
 * Runs training requests as background jobs whose state lives in a JobStore. The store is remote in production and
 * may fail at any point; what the service guarantees:
 * - creating a job is the only write a caller waits for: if it fails, `start` rejects (503) and nothing trains;
 * - every later write (running, progress, result) is retried with backoff, latest state first (see
 *   createJobStateWriter), and its failure is logged, never thrown: it cannot change the job's outcome, and the
 *   background run never rejects;
 * - a job's result is what happened: a job whose versions were registered is `succeeded` even if every progress
 *   write failed. If the result itself could not be stored, this process keeps it and `status` answers it here.
 */
export function createTrainingService(deps: {
  market: MarketDataSource;
  registry: Registry;
  jobs: JobStore;
  /** Absent where training does not run (the edge): `start` then refuses with `training_unavailable`. */
  trainer?: Trainer;
  defer: (work: Promise<unknown>) => void;
  /** Store failures of running jobs, which no caller sees. */
  logger: Logger;
  retry?: Partial<JobWriteRetry>;
  now?: () => Date;
  plan?: Partial<TrainingPlan>;
  /** Runs one job at a time where several processes serve (`npm start`'s workers); jobs wait in it as `queued`. */
  lock?: Mutex;
}) {
  const now = deps.now ?? (() => new Date());
  const warn = (message: string, error: unknown) => deps.logger.warn(message, error);
  const retry: JobWriteRetry = { ...JOB_WRITE_RETRY, ...deps.retry };
  const unstored = new Map<string, { job: TrainingJob; at: number }>();

  const keepUnstored = (job: TrainingJob) => {
    const at = Date.now();
    for (const [id, entry] of unstored) {
      if (at - entry.at > UNSTORED_TTL_MS || unstored.size >= UNSTORED_MAX) unstored.delete(id);
    }
    unstored.set(job.request_id, { job, at });
  };

  const execute = async (queued: TrainingJob, trainer: Trainer, until?: Date): Promise<void> => {
    const writer = createJobStateWriter(deps.jobs, retry, warn);
    const job: TrainingJob = { ...queued, state: "running", started_at: now().toISOString() };
    void writer.write(job);
    let result: TrainingJob;
    const selected: SelectionOutcome[] = [];
    try {
      const versions = await trainSymbol({
        symbol: job.model_id,
        trainer,
        market: deps.market,
        registry: deps.registry,
        plan: deps.plan,
        until,
        onProgress: (progress) => void writer.write({ ...job, progress }),
        onSelection: (outcome) => selected.push(outcome),
      });
      result = {
        ...job,
        state: "succeeded",
        finished_at: now().toISOString(),
        result: {
          versions: versions.map((v) => ({
            name: v.name,
            version: v.version,
            family: v.family,
            // "equal to version N, nothing registered": the job's report says so rather than claim a new version.
            registered: v.duplicate_of === undefined,
            ...(v.duplicate_of !== undefined && { duplicate_of: v.duplicate_of }),
            ...(v.archived && { archived: v.archived }),
            test: v.report.test,
          })),
          reports: versions.map((v) => v.report),
          ...selectionResult(selected[0]),
        },
      };
    } catch (error) {
      const known = asEdgeMLError(error);
      result = {
        ...job,
        state: "failed",
        finished_at: now().toISOString(),
        error: {
          code: known ? known.code : "internal",
          message: known ? known.message : `edgeml: training failed: ${errorMessage(error)}`,
        },
      };
    }
    // Kept until the store has it, so that status never answers an older state than this process knows.
    keepUnstored(result);
    await writer.write(result);
    // Otherwise the writer has logged why, and this process answers the result from `unstored`.
    if (writer.stored === result) unstored.delete(result.request_id);
  };

  /** Records a queued job (the only write a caller waits for) and returns it with the run that trains it. */
  const queue = async (modelId: string, options: TrainOptions) => {
    const trainer = deps.trainer;
    if (!trainer) {
      throw new EdgeMLError(
        "training_unavailable",
        // No paths in the text: a 5xx message loses them (redactInternals).
        "training does not run in this deployment (an edge function has no trainer); it runs in the Node server (`npm start`), in the Vercel training function that vercel.json routes training requests to, or locally with `npm run train`",
      );
    }
    const symbol = resolveSymbol(modelId);
    if (options.until) {
      // Checked before the job is queued, so a bad `until` is the request's 400, not a failed job to poll for.
      const plan = { ...DEFAULT_PLAN, ...deps.plan };
      await trainingBars(deps.market, symbol, plan.interval, options.until);
    }
    const job: TrainingJob = {
      request_id: crypto.randomUUID(),
      model_id: symbol,
      state: "queued",
      created_at: now().toISOString(),
    };
    await deps.jobs.put(job);
    const run = () => execute(job, trainer, options.until);
    return { job, run: deps.lock ? () => (deps.lock as Mutex).run(run) : run };
  };

  const service = {
    /**
     * Queues training of a symbol's forecasters; the returned job has the `request_id` to poll. Rejects (503
     * not_ready) when the job cannot be recorded: a job nobody can ask about is not started; 501
     * `training_unavailable` where no trainer is wired.
     */
    async start(modelId: string, options: TrainOptions = {}): Promise<TrainingJob> {
      const { job, run } = await queue(modelId, options);
      deps.defer(run());
      return job;
    },
    /**
     * Trains within the call and answers the finished job as the store has it: for a caller whose process ends with
     * its response (the daily cron on a serverless function), where deferred work would be cut short.
     */
    async run(modelId: string, options: TrainOptions = {}): Promise<TrainingJob> {
      const { job, run } = await queue(modelId, options);
      await run();
      return service.status(job.request_id);
    },
    /** The job's state; 503 while the store cannot be read (never a guess), 404 for a job it does not know. */
    async status(requestId: string): Promise<TrainingJob> {
      const job = await deps.jobs.get(requestId);
      const local = unstored.get(requestId)?.job;
      if (local) return structuredClone(local);
      if (!job) {
        throw new EdgeMLError(
          "not_found",
          `no training request ${requestId}; POST /api/ml/train returns the request_id`,
        );
      }
      return job;
    },
  };
  return service;
}

export type TrainingService = ReturnType<typeof createTrainingService>;
