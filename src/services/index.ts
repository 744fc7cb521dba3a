import { type AppConfig, type AppConfigInput, AppConfigSchema } from "../config.js";
import { createForecaster, type Forecaster } from "../forecast/service.js";
import {
  createTrainingService,
  type Trainer,
  type TrainingPlan,
  type TrainingService,
} from "../forecast/training.js";
import type { InferenceEngine } from "../inference/engine.js";
import { consoleLogger, type Logger } from "../logger.js";
import type { MarketDataSource } from "../market/types.js";
import { type BackfillService, createBackfillService } from "../performance/backfill.js";
import { createPerformanceService, type PerformanceService } from "../performance/service.js";
import { createRegistry, type Registry } from "../registry/registry.js";
import { createRolloutControl, type RolloutControl } from "../rollout/control.js";
import type { PairedTest } from "../rollout/decide.js";
import { createRolloutDecisions, type RolloutDecisions } from "../rollout/evaluate.js";
import { createShadowRunner } from "../rollout/shadow.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import type { PredictionCache } from "../storage/cache.js";
import { type Counters, createMemoryCounters } from "../storage/counters.js";
import { createMemoryJobStore, type JobStore } from "../storage/jobs.js";
import { createMemoryCache } from "../storage/memory-cache.js";
import { createMemoryPredictionLog } from "../storage/memory-prediction-log.js";
import type { PointerStore } from "../storage/pointers.js";
import type { PredictionLog } from "../storage/prediction-log.js";
import type { Mutex, SingleFlight } from "../storage/single-flight.js";
import { createTelemetry, type Telemetry } from "../telemetry/recorder.js";
import { createMemoryMetricsStore, type MetricsStore } from "../telemetry/store.js";
import { createUsageTracker, type UsageTracker } from "../tracking/usage.js";
import { createInferenceOperations, type InferenceOperations } from "./inference.js";
import { createModelOperations, type ModelOperations } from "./models.js";

/** The ports the services are built from. Each runtime's wiring builds them from its environment. */
export interface Ports {
  artifacts: ArtifactStore;
  pointers: PointerStore;
  engine: InferenceEngine;
  /** Bars for forecasts and training: Yahoo Finance in production, a CSV directory offline. */
  market: MarketDataSource;
  /** Prediction cache; defaults to an in-process LRU. */
  cache?: PredictionCache;
  /** Training job state; defaults to process memory. */
  jobs?: JobStore;
  /** Usage counters per model version; default process memory. */
  counters?: Counters;
  /** Telemetry series (GET /metrics, Triton statistics, serving figures), shared by instances; default process memory. */
  metrics?: MetricsStore;
  /** Every forecast served, recorded off the response path; default process memory. */
  predictionLog?: PredictionLog;
  /** Shares concurrent identical forecasts; default this process (`npm start`'s workers: their primary). */
  flights?: SingleFlight;
  /** One training job at a time across processes (`npm start`'s workers); default none (jobs run as they come). */
  trainingLock?: Mutex;
  /**
   * Fits forecasters (src/training's `trainForecaster`). Left out where training does not run (the edge): training
   * requests then answer 501 `training_unavailable`, and the bundle carries no trainer.
   */
  trainer?: Trainer;
  /**
   * The Diebold–Mariano test (src/training/diebold-mariano.ts) the rollout decisions use. Left out on the edge (its
   * Student-t CDF does not fit the bundle's budget): evaluations then answer 501 `evaluation_unavailable`.
   */
  pairedTest?: PairedTest;
}

export interface ServiceOptions {
  config?: AppConfigInput;
  /** Where everything reports; default the console. */
  logger?: Logger;
  /**
   * Hands side effects (cache writes, counters, training runs) to the runtime so they finish after the response: the
   * edge's `waitUntil`. Default: the promise runs on, its failure logged.
   */
  waitUntil?: (work: Promise<unknown>) => void;
  /** What `POST /api/ml/train` trains; defaults to DEFAULT_PLAN. */
  trainingPlan?: Partial<TrainingPlan>;
  now?: () => Date;
}

/** What the server does, without HTTP: the app, the CLI, the training script and the cron all call these. */
export interface Services {
  config: AppConfig;
  logger: Logger;
  engine: InferenceEngine;
  registry: Registry;
  usage: UsageTracker;
  forecaster: Forecaster;
  /** Every forecast served (the forecaster records into it): what the performance tracker reads. */
  predictionLog: PredictionLog;
  /** Live performance from the prediction log: outcomes resolved against the market, figures, series, manual reports. */
  performance: PerformanceService;
  training: TrainingService;
  /** The admin view of models: summaries with usage and history, pointer changes with what serves after them. */
  models: ModelOperations;
  /** Open Inference Protocol operations: model metadata, readiness, inference under one deadline. */
  inference: InferenceOperations;
  /** Replays a version's forecasts over history after its data cutoff, recorded as `backfill` and resolved at once. */
  backfill: BackfillService;
  /** Rollout decisions from outcomes: promote, end or continue a rollout, and the champions' rollback check. */
  rollouts: RolloutDecisions;
  /** Starts, reads and ends a model's rollout (canary or shadow); serving reads it from the pointers. */
  rolloutControl: RolloutControl;
  /** Requests, latency, failures and cold starts, recorded off the response path into the metrics store. */
  telemetry: Telemetry;
  /** Runs `work` after the response (the runtime's waitUntil); its failure is logged, never unobserved. */
  defer: (work: Promise<unknown>) => void;
  /** Whether the inference runtime is up and the model store answers: backs /v2/health/ready. */
  ready(): Promise<boolean>;
}

/** Parses the configuration; a setting that cannot work throws here, at start-up, with every reason. */
export function parseConfig(input: AppConfigInput = {}): AppConfig {
  const parsed = AppConfigSchema.safeParse(input);
  if (!parsed.success) {
    // A field's own rule ("must be > 0") is named by its path; the checks that span fields name their variables.
    const describe = (i: { path: PropertyKey[]; message: string }) =>
      i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message;
    throw new Error(`edgeml: invalid configuration: ${parsed.error.issues.map(describe).join("; ")}`);
  }
  return parsed.data;
}

/**
 * The composition root: every service built once from the ports. Nothing here knows HTTP; `createApp` puts routes
 * on top of these, and the CLI, the training script and the training cron use them directly.
 */
export function createServices(ports: Ports, options: ServiceOptions = {}): Services {
  const config = parseConfig(options.config);
  const logger = options.logger ?? consoleLogger;
  const warn = (message: string, error: unknown) => logger.warn(message, error);
  // Every deferred promise is observed here, before the runtime's waitUntil sees it: a failure of background work
  // is logged, and can never be an unhandled rejection (which ends a Node process).
  const defer = (work: Promise<unknown>) => {
    const observed = work.catch((error) => logger.error("background work failed", error));
    options.waitUntil?.(observed);
  };
  // Labels come from the registry and cache figures from the usage tracker, both built below: read lazily.
  const telemetry = createTelemetry({
    store: ports.metrics ?? createMemoryMetricsStore(),
    catalog: () => registry,
    usage: () => usage,
    defer,
    warn,
    now: options.now,
  });
  const registry = createRegistry({
    artifacts: ports.artifacts,
    pointers: ports.pointers,
    engine: telemetry.instrumentEngine(ports.engine),
    config,
    now: options.now,
  });
  const predictionLog = ports.predictionLog ?? createMemoryPredictionLog();
  const usage = createUsageTracker({ counters: ports.counters ?? createMemoryCounters(), defer, warn });
  const cache = ports.cache ?? createMemoryCache();
  // What serves runs through the timed registry; backfill replays and registration checks are not serving.
  const serving = telemetry.instrumentRegistry(registry);
  const performance = createPerformanceService({
    log: predictionLog,
    market: ports.market,
    registry,
    cache,
    servingFigures: telemetry.servingFigures,
    now: options.now,
    warn,
  });
  const forecaster = createForecaster({
    registry: serving,
    observer: telemetry.observer,
    market: ports.market,
    cache,
    cacheTtlMs: config.cacheTtlMs,
    timeoutMs: config.inferTimeoutMs,
    defer,
    warn,
    usage,
    predictionLog,
    flights: ports.flights,
    onReplayRecorded: (entry) => performance.resolveRecorded([entry]),
    shadow: createShadowRunner({
      registry: serving,
      predictionLog,
      defer,
      warn,
      observer: telemetry.observer,
      queueDepth: () => ports.engine.stats().queued ?? 0,
      maxQueueDepth: config.shadowMaxQueueDepth,
      timeoutMs: config.inferTimeoutMs,
      onReplayRecorded: (entry) => performance.resolveRecorded([entry]),
      now: options.now ?? (() => new Date()),
    }),
    staleGraceSeconds: config.staleGraceSeconds,
    intervalLevel: config.intervalLevel,
    now: options.now,
  });
  const training = createTrainingService({
    market: ports.market,
    registry,
    jobs: ports.jobs ?? createMemoryJobStore(),
    trainer: ports.trainer,
    defer,
    logger,
    retry: { attempts: config.jobWriteAttempts, backoffMs: config.jobWriteBackoffMs },
    now: options.now,
    plan: options.trainingPlan,
    lock: ports.trainingLock,
  });
  return {
    config,
    logger,
    engine: ports.engine,
    registry,
    usage,
    forecaster,
    predictionLog,
    performance,
    training,
    models: createModelOperations({ registry, usage }),
    inference: telemetry.instrumentInference(
      createInferenceOperations({ registry: serving, usage, timeoutMs: config.inferTimeoutMs }),
    ),
    backfill: createBackfillService({
      registry,
      market: ports.market,
      predictionLog,
      timeoutMs: config.inferTimeoutMs,
      now: options.now,
    }),
    rollouts: createRolloutDecisions({
      log: predictionLog,
      pointers: ports.pointers,
      registry,
      ...(ports.pairedTest ? { test: ports.pairedTest } : {}),
      now: options.now ?? (() => new Date()),
      warn: (message, error) => logger.warn(message, error),
    }),
    rolloutControl: createRolloutControl({
      pointers: ports.pointers,
      registry,
      defaults: {
        minOutcomes: config.rolloutMinOutcomes,
        maxDurationSeconds: config.rolloutMaxDurationSeconds,
      },
      now: options.now ?? (() => new Date()),
    }),
    telemetry,
    defer,
    async ready() {
      try {
        await ports.engine.init();
        // The registry's cached listing: a probe costs the store at most one list call per listing TTL.
        return await registry.ready();
      } catch (error) {
        logger.error("readiness check failed", error);
        return false;
      }
    },
  };
}
