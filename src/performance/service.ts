import { createAsyncCache } from "../cache/async-cache.js";
import { EdgeMLError } from "../errors.js";
import { DEFAULT_HORIZON, forecastModelName } from "../forecast/horizon.js";
import { SUPPORTED_SYMBOLS } from "../market/symbols.js";
import type { MarketDataSource } from "../market/types.js";
import type { Registry } from "../registry/registry.js";
import type { PredictionCache } from "../storage/cache.js";
import {
  isResolved,
  type ManualTracking,
  type PredictionEntry,
  type PredictionLog,
  type PredictionRecord,
  type PredictionSource,
} from "../storage/prediction-log.js";
import { type Figures, rollingSkill, type SkillPoint, type WindowName, windowsOf } from "./figures.js";
import { createOutcomeResolver, type ResolutionRun } from "./outcomes.js";

/** Latency percentiles of a histogram, in milliseconds (estimated from its buckets). */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
}

/** How a model or version served: from the telemetry (src/telemetry), not from the prediction log. */
export interface ServingFigures {
  requests: number;
  errors: number;
  error_rate: number | null;
  errors_by_code: Record<string, number>;
  latency_ms: { serve: Percentiles | null; infer: Percentiles | null };
  cache: { hits: number; misses: number; hit_rate: number | null };
  cold_starts: number;
}

export type ServingFiguresSource = (
  model: string,
) => Promise<{ model: ServingFigures; versions: Record<string, ServingFigures> } | null>;

export interface VersionPerformance {
  version: string;
  windows: Record<WindowName, Figures>;
  serving: ServingFigures | null;
}

export interface PerformanceSummary extends Omit<Figures, "window" | "from"> {
  model: string;
  source: PredictionSource;
  generated_at: string;
  /** Where the windows end: now for live figures; the latest resolved target for the other sources. */
  window_end: string;
  windows: Record<WindowName, Figures>;
  versions: VersionPerformance[];
  serving: ServingFigures | null;
  resolution: {
    /** Forecasts whose target time has passed and that have no outcome yet. */
    pending: number;
    /** Forecasts not due yet. */
    open: number;
    /** The latest resolution run for this model (this request's, or one shared with it within the minute). */
    last_run: ResolutionRun;
  };
}

export interface PerformanceSeries {
  model: string;
  source: PredictionSource;
  /** Resolved forecasts, oldest first: the latest `limit` by target time. */
  points: Pick<
    PredictionRecord,
    "prediction_id" | "version" | "as_of" | "target_time" | "last_close" | "predicted_price" | "actual_price"
  >[];
  /** Rolling 30-day skill per version at each resolved target time within the points' span. */
  skill: SkillPoint[];
}

export interface PerformanceDeps {
  log: PredictionLog;
  market: MarketDataSource;
  registry: Registry;
  /** Shared by instances (Upstash in production): marks a model's lazy resolution so other instances skip it. */
  cache: PredictionCache;
  servingFigures?: ServingFiguresSource;
  /** Lazy resolution runs at most once per model per this long (default a minute). */
  resolveEveryMs?: number;
  now?: () => Date;
  warn: (message: string, error: unknown) => void;
}

/** Records read per page when a figure needs a whole source: the log's largest page. */
const READ_PAGE = 1_000;
/** Series points at most (a request's `limit` is capped here): what a chart can show. */
export const MAX_SERIES_POINTS = 2_000;

const byVersionDesc = (a: string, b: string) =>
  b.localeCompare(a, "en", { numeric: true, sensitivity: "base" });

/** The summary of one source's records: figures by window, for the model and each version, and the backlog. */
function summaryOf(
  model: string,
  source: PredictionSource,
  records: readonly PredictionRecord[],
  serving: Awaited<ReturnType<ServingFiguresSource>>,
  lastRun: ResolutionRun,
  at: Date,
): PerformanceSummary {
  // Live windows end now; a replayed history ends where it was replayed to, or its windows would be empty.
  const latestResolved = records.find(isResolved)?.target_time;
  const end = source === "live" || !latestResolved ? at : new Date(latestResolved);
  const windows = windowsOf(records, end);
  const byVersion = new Map<string, PredictionRecord[]>();
  for (const record of records) {
    byVersion.set(record.version, [...(byVersion.get(record.version) ?? []), record]);
  }
  const { window: _w, from: _f, ...whole } = windows.all;
  const unresolved = records.filter((r) => !isResolved(r));
  const due = unresolved.filter((r) => Date.parse(r.target_time) <= at.getTime()).length;
  return {
    model,
    source,
    generated_at: at.toISOString(),
    window_end: end.toISOString(),
    ...whole,
    windows,
    versions: [...byVersion.keys()].sort(byVersionDesc).map((version) => ({
      version,
      windows: windowsOf(byVersion.get(version) as PredictionRecord[], end),
      serving: serving?.versions[version] ?? null,
    })),
    serving: serving?.model ?? null,
    resolution: { pending: due, open: unresolved.length - due, last_run: lastRun },
  };
}

/** Every record of one source of `model`, newest target first. */
async function readAll(log: PredictionLog, model: string, source: PredictionSource, resolved?: boolean) {
  const records: PredictionRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await log.list(model, {
      source,
      limit: READ_PAGE,
      ...(resolved === undefined ? {} : { resolved }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    records.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor !== undefined);
  return records;
}

/**
 * The performance tracker: figures computed from the prediction log on each request (never kept as running
 * totals), outcomes resolved lazily (at most once per model per `resolveEveryMs`, coalesced) and by the cron.
 */
export function createPerformanceService(deps: PerformanceDeps) {
  const now = deps.now ?? (() => new Date());
  const every = deps.resolveEveryMs ?? 60_000;
  const resolver = createOutcomeResolver({
    log: deps.log,
    market: deps.market,
    registry: deps.registry,
    now,
  });
  const runAndKeep = async (model: string) => {
    const run = await resolver.resolveModel(model);
    if (run.error) deps.warn(`resolving the forecasts of ${model} stopped short`, run.error);
    return run;
  };
  // Policy: ttl: a model's lazy run is shared by concurrent requests and answers for `every`, failed or not (a run
  // never rejects), so public requests cannot drive market or store traffic. Timed on the service's clock.
  const lazyRuns = createAsyncCache<string, ResolutionRun>({
    policy: { kind: "ttl", ttlMs: every },
    max: 1_000,
    now: () => now().getTime(),
    load: async (model) => {
      // The shared marker bounds the other instances too (the edge runs many); a marker store that fails costs at
      // most a run here. Its age is read from the run it holds, on the same clock as above.
      const marker = `performance:resolved:v1:${model}`;
      const ran = await deps.cache.get<ResolutionRun>(marker).catch(() => undefined);
      if (ran && now().getTime() - Date.parse(ran.checked_at) < every) return ran;
      const run = await runAndKeep(model);
      await deps.cache.set(marker, run, every).catch(() => {});
      return run;
    },
  });

  /** `BTC` (a symbol: its 24h forecaster) or a registry name, checked against the registry. */
  const modelOf = async (modelId: string): Promise<string> => {
    const symbol = modelId.trim().toUpperCase();
    const name = Object.hasOwn(SUPPORTED_SYMBOLS, symbol)
      ? forecastModelName(symbol, DEFAULT_HORIZON)
      : modelId;
    if (!(await deps.registry.listModelNames()).includes(name)) {
      throw new EdgeMLError(
        "model_not_found",
        `no model ${JSON.stringify(modelId)}; use a symbol (${Object.keys(SUPPORTED_SYMBOLS).join(", ")}) or a registry name from GET /api/ml/models`,
      );
    }
    return name;
  };

  return {
    modelOf,

    /**
     * Resolves freshly recorded forecasts that are due already (replays of a past `as_of`), so they "resolve at
     * once": one market call for the record's own bar, never a walk of the model's backlog. Never rejects.
     */
    async resolveRecorded(entries: readonly PredictionEntry[]): Promise<void> {
      for (const entry of entries) {
        await resolver.resolveNow(entry.model, [entry]).catch((error: unknown) => {
          deps.warn(
            `could not resolve the ${entry.source} forecast ${entry.prediction_id} of ${entry.model}`,
            error,
          );
        });
      }
    },

    /** Runs the resolver now for `model`, or for every registry model: the daily cron's step. */
    async resolveDue(model?: string): Promise<Record<string, ResolutionRun>> {
      const models = model === undefined ? await deps.registry.listModelNames() : [await modelOf(model)];
      const runs: Record<string, ResolutionRun> = {};
      for (const name of models) runs[name] = await runAndKeep(name);
      return runs;
    },

    async summary(modelId: string, options: { source?: PredictionSource } = {}): Promise<PerformanceSummary> {
      const model = await modelOf(modelId);
      const source = options.source ?? "live";
      const lastRun = await lazyRuns.get(model);
      const [records, serving] = await Promise.all([
        readAll(deps.log, model, source),
        deps.servingFigures?.(model).catch((error: unknown) => {
          deps.warn(`could not read the serving figures of ${model}`, error);
          return null;
        }) ?? null,
      ]);
      return summaryOf(model, source, records, serving, lastRun, now());
    },

    async series(
      modelId: string,
      options: { source?: PredictionSource; version?: string; limit?: number } = {},
    ): Promise<PerformanceSeries> {
      const model = await modelOf(modelId);
      const source = options.source ?? "live";
      const limit = Math.min(options.limit ?? 500, MAX_SERIES_POINTS);
      await lazyRuns.get(model);
      const resolved = (await readAll(deps.log, model, source, true)).filter(
        (r) => options.version === undefined || r.version === options.version,
      );
      const shown = resolved.slice(0, limit).reverse();
      const since = shown[0] ? Date.parse(shown[0].target_time) : Number.POSITIVE_INFINITY;
      return {
        model,
        source,
        points: shown.map((r) => ({
          prediction_id: r.prediction_id,
          version: r.version,
          as_of: r.as_of,
          target_time: r.target_time,
          last_close: r.last_close,
          predicted_price: r.predicted_price,
          actual_price: r.actual_price,
        })),
        // Computed over every resolved record (a point's 30 days may reach before the first shown), shown from there.
        skill: rollingSkill(resolved).filter((p) => Date.parse(p.target_time) >= since),
      };
    },

    /** Stores a manual report beside the market outcome (never over it); unknown prediction ids are 404. */
    async track(
      modelId: string,
      predictionId: string,
      values: Omit<ManualTracking, "tracked_at">,
    ): Promise<PredictionRecord[]> {
      const model = await modelOf(modelId);
      const updated = await deps.log.track(model, predictionId, {
        ...values,
        tracked_at: now().toISOString(),
      });
      if (updated.length === 0) {
        throw new EdgeMLError(
          "prediction_not_found",
          `no prediction ${JSON.stringify(predictionId)} of ${model} in the log; use the prediction_id a forecast of ${model} returned`,
        );
      }
      return updated;
    },
  };
}

export type PerformanceService = ReturnType<typeof createPerformanceService>;
