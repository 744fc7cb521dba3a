import { Tensor } from "onnxruntime-web/wasm";
import { asEdgeMLError, EdgeMLError, isEdgeMLError } from "../errors.js";
import { computeFeatures, FEATURE_NAMES, knownFeatureSet, MIN_HISTORY } from "../features/index.js";
import { outageReporter } from "../logger.js";
import { firstBreak, INTERVAL_MS, isoTime, resolveSymbol, SUPPORTED_SYMBOLS } from "../market/symbols.js";
import type { Bar, MarketDataSource } from "../market/types.js";
import type { VersionMetadata } from "../registry/metadata.js";
import {
  type Deadline,
  deadlineIn,
  type Registry,
  type Resolution,
  withinDeadline,
} from "../registry/registry.js";
import type { ShadowRunner } from "../rollout/shadow.js";
import { type ServingEvidence, servingEvidence } from "../selection/policy.js";
import type { PredictionCache } from "../storage/cache.js";
import type { Rollout } from "../storage/pointers.js";
import type { PredictionEntry, PredictionLog, PredictionSource } from "../storage/prediction-log.js";
import { createLocalSingleFlight, type SingleFlight } from "../storage/single-flight.js";
import type { ServeObserver } from "../telemetry/recorder.js";
import type { UsageTracker } from "../tracking/usage.js";
import { asOfText, lastCloseBy } from "./as-of.js";
import { ageSeconds, isStale, requestedInstant, staleError } from "./freshness.js";
import { DEFAULT_HORIZON, forecastModelName, horizonHours, normaliseHorizon } from "./horizon.js";
import {
  DEFAULT_INTERVAL_LEVEL,
  type ForecastInterval,
  forecastInterval,
  type IntervalLevel,
  intervalLevelOf,
  intervalScale,
} from "./interval.js";

/** One forecast, as `POST /api/ml/serve` returns it and the cache keeps it. */
export interface Forecast {
  prediction_id: string;
  symbol: string;
  horizon: string;
  model_name: string;
  model_version: string;
  /** How the version was chosen (requested, pinned, canary, champion, policy, naive…): the log's `chosen_via`. */
  chosen_via: Resolution;
  /** The version's model family (`tags.family`: gbdt, ridge, naive…), null when its metadata does not say. */
  family: string | null;
  /** Close time of the last bar the features used: the forecast is "as of" this instant. */
  as_of: string;
  /** Seconds from `as_of` to the moment of this answer (a cached answer ages): how old the data behind it is. */
  data_age_seconds: number;
  /** `as_of` + horizon: when the predicted price is due. */
  target_time: string;
  last_close: number;
  predicted_log_return: number;
  predicted_price: number;
  created_at: string;
  cached: boolean;
  /**
   * Whether the serving version beats naive with significance (its one-sided walk-forward Diebold–Mariano p-value
   * below α = 0.05); false for the naive version and for a version with no walk-forward evaluation.
   */
  beats_naive: boolean;
  /** The walk-forward evidence behind `beats_naive`: p-value, span of the folds, number of folds. */
  evidence: ServingEvidence["evidence"];
  /** Central prediction interval of the price (src/forecast/interval.ts); null when the version has no calibration. */
  interval: ForecastInterval | null;
}

/**
 * A forecast as the cache keeps it: its data age is the answer's, computed when it is served, and what it says about
 * its version is read from the version's metadata then (the same version, so the same evidence).
 */
type StoredForecast = Omit<
  Forecast,
  "data_age_seconds" | "beats_naive" | "evidence" | "interval" | "chosen_via"
> & {
  /**
   * σ of the forecast's feature vector (intervalScale): the interval is computed from it when served, at the level
   * the request asks, so one cached forecast serves every level.
   */
  interval_scale: number;
};

/** What a forecast request may say beyond symbol and horizon. */
export interface ForecastOptions {
  /**
   * The instant to forecast as of (`as_of` of the request, as a date or ISO 8601 text): the forecast is the one that
   * would have been made then, from the last bar closed by it, and is logged as `replay`. Absent: a live forecast,
   * refused as `market_data_stale` when the source's last bar is too old.
   */
  asOf?: string;
  /** Who asks (`x-client-id`, else the address): a canary rollout serves a stable share of keys its challenger. */
  clientKey?: string;
  /** The interval's level (`interval_level`): one of INTERVAL_LEVELS; default the forecaster's `intervalLevel`. */
  intervalLevel?: number;
}

/** HIT: from the cache; MISS: computed (and cached); BYPASS: the cache was unreachable, computed uncached. */
export type CacheStatus = "HIT" | "MISS" | "BYPASS";

export interface ForecastResult {
  forecast: Forecast;
  cache: CacheStatus;
}

export type BatchItem =
  | { symbol: string; ok: true; forecast: Forecast; cache: CacheStatus }
  | { symbol: string; ok: false; error: { code: string; message: string; status: number } };

export interface ForecasterDeps {
  registry: Registry;
  market: MarketDataSource;
  cache: PredictionCache;
  cacheTtlMs: number;
  timeoutMs: number;
  /** Runs side effects (cache writes) off the response path: `waitUntil` on the edge. */
  defer: (work: Promise<unknown>) => void;
  warn: (message: string, error: unknown) => void;
  usage: UsageTracker;
  /** Where every forecast made is recorded, through `defer`; a cached answer is the same record, not written again. */
  predictionLog: PredictionLog;
  /** Shares concurrent identical forecasts; default this process only (src/storage/single-flight.ts). */
  flights?: SingleFlight;
  /** A shadow rollout's mirror of each forecast the champion makes (src/rollout/shadow.ts); none by default. */
  shadow?: ShadowRunner;
  /** Called (inside the deferred write) once a replay is recorded: the performance tracker resolves it at once. */
  onReplayRecorded?: (entry: PredictionEntry) => Promise<void>;
  /**
   * How long after the end of its interval a live forecast's last bar may still serve, in seconds: a bar published a
   * little after its close (Yahoo) is waited for this long before answers are refused as `market_data_stale`.
   */
  staleGraceSeconds: number;
  /** Level of the interval a request that names none gets (FORECAST_INTERVAL_LEVEL): one of INTERVAL_LEVELS, default 0.8. */
  intervalLevel?: number;
  /** Telemetry of each forecast answered or failed, and of each prediction-log write; none by default. */
  observer?: ServeObserver;
  now?: () => Date;
}

/**
 * Cache keys carry the model version and the as-of bar, so a promotion or a new bar never serves an old answer, and
 * the source the answer is logged as: a cached answer is its log record (same prediction_id), so a live request must
 * never receive a replay's record, nor a replay a live one (live figures count live records only).
 */
export const forecastCacheKey = (
  meta: Pick<VersionMetadata, "name" | "version">,
  horizon: string,
  asOf: number,
  source: Extract<PredictionSource, "live" | "replay"> = "live",
) => `forecast:v3:${meta.name}@${meta.version}:${horizon}:${asOf}:${source}`;

/** Horizons served for a symbol: the required 24h and any other that has a model. */
async function horizonsFor(registry: Registry, symbol: string): Promise<string[]> {
  const prefix = `${symbol}-`;
  const names = (await registry.listModelNames()).filter((n) => n.startsWith(prefix));
  return [...new Set([DEFAULT_HORIZON, ...names.map((n) => n.slice(prefix.length))])].filter((h) =>
    /^\d+h$/.test(h),
  );
}

/**
 * The serving evidence of a version, made once per metadata object: the registry hands out the one object it read
 * for a version while it keeps it (new metadata is a new object), and every answer, cached ones too, carries it.
 */
const evidenceMemo = new WeakMap<VersionMetadata, ServingEvidence>();
function evidenceOf(meta: VersionMetadata): ServingEvidence {
  let evidence = evidenceMemo.get(meta);
  if (evidence === undefined) {
    evidence = servingEvidence(meta);
    evidenceMemo.set(meta, evidence);
  }
  return evidence;
}

/** The version that serves a symbol's horizon, checked: a forecaster of that symbol on a feature set served here. */
async function resolveModel(
  registry: Registry,
  symbol: string,
  horizon: string,
  deadline: Deadline,
  clientKey?: string,
): Promise<{ meta: VersionMetadata; via: Resolution; rollout?: Rollout }> {
  const name = forecastModelName(symbol, horizon);
  let meta: VersionMetadata;
  let via: Resolution;
  let rollout: Rollout | undefined;
  try {
    ({ meta, via, rollout } = await registry.resolve(name, undefined, deadline, clientKey));
  } catch (error) {
    if (isEdgeMLError(error) && error.code === "model_not_found") {
      throw new EdgeMLError(
        "no_model",
        `no trained model for ${symbol} ${horizon}; run \`npm run train -- ${symbol}\` or POST /api/ml/train {"model_id":"${symbol}"}`,
      );
    }
    throw error;
  }
  const spec = meta.forecast;
  if (!spec || !meta.feature_set || spec.symbol !== symbol) {
    throw new EdgeMLError(
      "model_unavailable",
      `${name}@${meta.version} is not a ${symbol} forecaster (no forecast spec)`,
    );
  }
  if (!knownFeatureSet(meta.feature_set.name, meta.feature_set.version)) {
    throw new EdgeMLError(
      "model_unavailable",
      `${name}@${meta.version} was trained on feature set ${meta.feature_set.name} v${meta.feature_set.version}, which this server does not compute; retrain it or promote another version`,
    );
  }
  return { meta, via, rollout };
}

/** The log's record of a forecast served now, chosen by `via`. */
const entryOf = (
  forecast: StoredForecast,
  via: Resolution,
  servedAt: Date,
  source: PredictionSource,
): PredictionEntry => ({
  prediction_id: forecast.prediction_id,
  model: forecast.model_name,
  version: forecast.model_version,
  symbol: forecast.symbol,
  horizon: forecast.horizon,
  as_of: forecast.as_of,
  target_time: forecast.target_time,
  last_close: forecast.last_close,
  predicted_price: forecast.predicted_price,
  predicted_log_return: forecast.predicted_log_return,
  served_at: servedAt.toISOString(),
  chosen_via: via,
  source,
});

/** The registry name a failed request was for, as well as it can be told (telemetry bounds it by the registry). */
function modelNameOf(symbol: string, horizon: string): string {
  let name = symbol.trim().toUpperCase();
  try {
    name = resolveSymbol(symbol);
  } catch {
    // An unknown symbol: the raw name, which the telemetry labels "other".
  }
  const hours = horizonHours(horizon);
  return forecastModelName(name, hours === undefined ? horizon : `${hours}h`);
}

/**
 * Records a served forecast off the response path: a log outage never changes an answer; it is warned about once,
 * then counted until the log answers again.
 */
function predictionRecorder(
  deps: Pick<ForecasterDeps, "predictionLog" | "defer" | "warn" | "observer" | "onReplayRecorded">,
  now: () => Date,
): (forecast: StoredForecast, via: Resolution, source: PredictionSource) => PredictionEntry {
  const outage = outageReporter(
    deps.warn,
    `prediction log (${deps.predictionLog.kind})`,
    "forecasts are served but not recorded",
  );
  return (forecast, via, source) => {
    const entry = entryOf(forecast, via, now(), source);
    deps.defer(
      deps.predictionLog.record([entry]).then(
        () => {
          outage.succeeded();
          deps.observer?.predictionLogged(forecast.model_name, true);
          // A replay (a past as_of) is due at once: resolved now, off the response path like the write.
          if (source === "replay") return deps.onReplayRecorded?.(entry);
        },
        (error: unknown) => {
          outage.failed(error);
          deps.observer?.predictionLogged(forecast.model_name, false);
        },
      ),
    );
    return entry;
  };
}

/**
 * The model's bars up to the as-of bar `asOfBar` (a close time), checked: enough of them for the features, and no
 * gap. A requested as-of must be served by exactly its bar: a source that ends earlier is not the forecast asked for.
 */
async function barsFor(
  market: MarketDataSource,
  meta: VersionMetadata,
  asOfBar: number,
  requested: boolean,
): Promise<Bar[]> {
  const spec = meta.forecast as NonNullable<VersionMetadata["forecast"]>;
  const step = INTERVAL_MS[spec.interval];
  const bars = await market.getBars(spec.symbol, spec.interval, {
    end: new Date(asOfBar),
    limit: MIN_HISTORY,
  });
  if (bars.length < MIN_HISTORY) {
    // Fewer bars than asked for: the source has none before the first one returned, which dates the earliest
    // forecast it can make.
    const first = bars[0];
    const earliest = first
      ? `; its first bar closes at ${isoTime(first.time + step)}, so the earliest as_of it can serve is ${asOfText(first.time + MIN_HISTORY * step)}`
      : "";
    throw new EdgeMLError(
      "market_data_unavailable",
      `${market.name} has ${bars.length} ${spec.interval} bars of ${spec.symbol} closed by ${isoTime(asOfBar)}; a forecast needs ${MIN_HISTORY}${earliest}`,
      { details: { as_of: isoTime(asOfBar), bars: bars.length, needed: MIN_HISTORY } },
    );
  }
  // The features' windows count bars; a missing bar (Yahoo drops null bars) would silently stretch them.
  const gap = firstBreak(bars, spec.interval);
  if (gap > 0) {
    throw new EdgeMLError(
      "market_data_unavailable",
      `${market.name} has a gap in the ${spec.interval} bars of ${spec.symbol} before ${new Date((bars[gap] as Bar).time).toISOString()}; the features need ${MIN_HISTORY} consecutive bars`,
    );
  }
  const lastClose = (bars.at(-1) as Bar).time + step;
  if (requested && lastClose !== asOfBar) {
    throw new EdgeMLError(
      "market_data_unavailable",
      `${market.name} has no ${spec.interval} bar of ${spec.symbol} closing at ${isoTime(asOfBar)} (the requested as_of's bar): its last bar by then closes at ${isoTime(lastClose)}; ask for an as_of at or before ${asOfText(lastClose)}`,
      { details: { as_of: isoTime(asOfBar), last_bar_close: isoTime(lastClose) } },
    );
  }
  return bars;
}

/** Runs the version on the features of `bars` (the trainer's own code): the forecast as of `asOf` (ms), made at `at`. */
async function computeForecast(
  registry: Registry,
  meta: VersionMetadata,
  bars: Bar[],
  asOf: number,
  horizon: string,
  deadline: Deadline,
  at: Date,
): Promise<StoredForecast> {
  const spec = meta.forecast as NonNullable<VersionMetadata["forecast"]>;
  const features = computeFeatures(bars, bars.length - 1);
  const input = meta.signature.inputs[0];
  const output = meta.signature.outputs[0];
  if (!input || !output || input.shape.at(-1) !== FEATURE_NAMES.length) {
    throw new EdgeMLError(
      "model_unavailable",
      `${meta.name}@${meta.version} does not take ${FEATURE_NAMES.length} features`,
    );
  }
  const outputs = await registry.infer(
    meta,
    { [input.name]: new Tensor("float64", features, [1, FEATURE_NAMES.length]) },
    [output.name],
    deadline,
  );
  const logReturn = Number(outputs[output.name]?.data[0]);
  if (!Number.isFinite(logReturn)) {
    throw new EdgeMLError("model_unavailable", `${meta.name}@${meta.version} returned ${logReturn}`);
  }
  const last = bars[bars.length - 1] as Bar;
  return {
    prediction_id: crypto.randomUUID(),
    symbol: spec.symbol,
    horizon,
    model_name: meta.name,
    model_version: meta.version,
    family: meta.tags.family ?? null,
    as_of: new Date(asOf).toISOString(),
    target_time: new Date(asOf + spec.horizon_bars * INTERVAL_MS[spec.interval]).toISOString(),
    last_close: last.close,
    predicted_log_return: logReturn,
    predicted_price: last.close * Math.exp(logReturn),
    created_at: at.toISOString(),
    cached: false,
    // From the very vector the model ran on: the interval's σ is the one calibration scored.
    interval_scale: intervalScale(features, spec.horizon_bars),
  };
}

/** A batch item of one symbol's settled forecast: the forecast, or its error as the API reports it. */
function batchItemOf(
  symbol: string,
  result: PromiseSettledResult<ForecastResult>,
  warn: ForecasterDeps["warn"],
): BatchItem {
  if (result.status === "fulfilled") return { symbol, ok: true, ...result.value };
  const error = asEdgeMLError(result.reason);
  if (error) {
    return { symbol, ok: false, error: { code: error.code, message: error.message, status: error.status } };
  }
  warn(`batch forecast of ${symbol} failed`, result.reason);
  return { symbol, ok: false, error: { code: "internal", message: "edgeml: unexpected error", status: 500 } };
}

/**
 * Forecasts for the users' symbols: resolve the version, fetch bars, compute the features with the trainer's own
 * code, run the model, cache the answer. Concurrent identical requests share one run (single flight).
 *
 * Live (no `asOf`): from the last bar closed now, refused as `market_data_stale` when the source's last bar closed
 * more than one interval plus `staleGraceSeconds` ago. Replay (`asOf`): from the last bar closed by that instant,
 * exactly as a live forecast made then (same features, same model), logged as `replay`.
 */
export function createForecaster(deps: ForecasterDeps) {
  const { registry, market, cache } = deps;
  const now = deps.now ?? (() => new Date());
  const graceMs = deps.staleGraceSeconds * 1000;
  // Checked here, at construction: a level no calibration stores fails at start, not on every request.
  const defaultLevel = intervalLevelOf(deps.intervalLevel, DEFAULT_INTERVAL_LEVEL);
  // A cache outage is warned about once, with the count of failed calls when it ends: not once per request.
  const cacheOutage = outageReporter(deps.warn, `prediction cache (${cache.kind})`, "serving uncached");
  const recordServed = predictionRecorder(deps, now);
  // Concurrent identical requests share one run (in this process, or across `npm start`'s workers through their
  // primary); answers are kept by the prediction cache (a port, shared by instances), not here.
  const flights = deps.flights ?? createLocalSingleFlight();

  const forecastOnce = async (
    symbolInput: string,
    horizonInput: string,
    requested: number | undefined,
    deadline: Deadline,
    level: IntervalLevel,
    clientKey?: string,
  ): Promise<ForecastResult> => {
    const symbol = resolveSymbol(symbolInput);
    const horizon = normaliseHorizon(horizonInput, await horizonsFor(registry, symbol));
    const { meta, via, rollout } = await resolveModel(registry, symbol, horizon, deadline, clientKey);
    const spec = meta.forecast as NonNullable<VersionMetadata["forecast"]>;
    const source = requested === undefined ? "live" : "replay";
    const answer = ({ interval_scale, ...stored }: StoredForecast, cached: boolean): Forecast => ({
      ...stored,
      chosen_via: via,
      ...evidenceOf(meta),
      cached,
      data_age_seconds: ageSeconds(stored.as_of, now().getTime()),
      interval: forecastInterval(
        meta.calibration,
        level,
        stored.last_close,
        stored.predicted_log_return,
        interval_scale,
      ),
    });
    // The as-of bar from the clock (or the requested instant) alone: bars sit on the interval's UTC grid, so the
    // last one closed by then closes at that instant rounded down to the grid. The cache is read with it before any
    // bar is fetched: a hit costs no market call. A live source that lags (a bar Yahoo has not published yet) yields
    // an older `as_of` inside the forecast, which serves under this key only while it is within the grace.
    const asOfBar = lastCloseBy(requested ?? now().getTime(), spec.interval);
    const key = forecastCacheKey(meta, horizon, asOfBar, source);

    let cacheUp = true;
    try {
      const hit = await cache.get<StoredForecast>(key);
      cacheOutage.succeeded();
      // A live answer cached while the source lagged is not served past the grace, whatever the TTL: it is
      // recomputed, which either finds the new bar or answers market_data_stale.
      const usable =
        hit && (source === "replay" || !isStale(hit.as_of, spec.interval, now().getTime(), graceMs));
      if (usable) return { forecast: answer(hit, true), cache: "HIT" };
    } catch (error) {
      // Fail open: a cache outage costs latency, never an answer.
      cacheUp = false;
      cacheOutage.failed(error);
    }
    // The single flight covers the bars too: concurrent misses cost one market call and one model run.
    const stored = await flights.run(key, async (): Promise<StoredForecast> => {
      // A flight that ended between the read above and this one (another worker's, shared through the primary)
      // cached its answer before it ended: that answer is this bar's, and computing again would log a second record.
      const landed = cacheUp ? await cache.get<StoredForecast>(key).catch(() => undefined) : undefined;
      if (landed && (source === "replay" || !isStale(landed.as_of, spec.interval, now().getTime(), graceMs)))
        return landed;
      const bars = await barsFor(market, meta, asOfBar, source === "replay");
      const dataAsOf = (bars.at(-1) as Bar).time + INTERVAL_MS[spec.interval];
      // Checked before the model runs: a stale answer is never computed, recorded nor cached.
      if (source === "live" && isStale(isoTime(dataAsOf), spec.interval, now().getTime(), graceMs)) {
        throw staleError(
          market.name,
          meta,
          horizon,
          isoTime(dataAsOf),
          now().getTime(),
          deps.staleGraceSeconds,
        );
      }
      // A shared flight runs under the deadline of the request that started it; each caller waits under its own.
      const computed = await computeForecast(registry, meta, bars, dataAsOf, horizon, deadline, now());
      // Recorded where it is made, once: cached answers and the callers sharing this flight carry its
      // prediction_id and are the same record, so they cost the log nothing.
      const entry = recordServed(computed, via, source);
      // A shadow rollout's challenger runs on these same bars, after the answer (src/rollout/shadow.ts).
      deps.shadow?.mirror(rollout, entry, (challenger, shadowDeadline) =>
        computeForecast(registry, challenger, bars, dataAsOf, horizon, shadowDeadline, now()),
      );
      if (cacheUp) {
        deps.defer(
          cache.set(key, computed, deps.cacheTtlMs).catch((error: unknown) => cacheOutage.failed(error)),
        );
      }
      return computed;
    });
    return { forecast: answer(stored, false), cache: cacheUp ? "MISS" : "BYPASS" };
  };

  const forecast = async (symbol: string, horizon: string, options: ForecastOptions = {}) => {
    const requested = requestedInstant(options.asOf, now().getTime());
    const level = intervalLevelOf(options.intervalLevel, defaultLevel);
    // One deadline per request, started here: its signal bounds resolution, bars, features and the run below.
    const deadline = deadlineIn(deps.timeoutMs);
    const started = performance.now();
    const result = await withinDeadline(
      forecastOnce(symbol, horizon, requested, deadline, level, options.clientKey),
      deadline,
      `the ${symbol} ${horizon} forecast`,
    ).catch((error: unknown) => {
      const seconds = (performance.now() - started) / 1000;
      deps.observer?.failed(modelNameOf(symbol, horizon), undefined, seconds, error);
      throw error;
    });
    const { model_name, model_version } = result.forecast;
    deps.observer?.served(model_name, model_version, (performance.now() - started) / 1000);
    deps.usage.record(model_name, model_version, {
      forecasts: 1,
      [`cache_${result.cache.toLowerCase()}`]: 1,
    });
    return result;
  };

  return {
    forecast,
    /**
     * One forecast per distinct symbol, in parallel; a failing symbol (stale, too early, no model) is reported beside
     * the others. A malformed or future `asOf` concerns the whole request: it throws.
     */
    async batch(
      symbols: readonly string[],
      horizon: string,
      options: ForecastOptions = {},
    ): Promise<BatchItem[]> {
      requestedInstant(options.asOf, now().getTime());
      intervalLevelOf(options.intervalLevel, defaultLevel);
      const distinct = [...new Set(symbols.map((s) => s.trim().toUpperCase()))];
      const settled = await Promise.allSettled(distinct.map((s) => forecast(s, horizon, options)));
      return settled.map((result, i) => batchItemOf(distinct[i] as string, result, deps.warn));
    },
    supportedSymbols: Object.keys(SUPPORTED_SYMBOLS),
  };
}

export type Forecaster = ReturnType<typeof createForecaster>;
