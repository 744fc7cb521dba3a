import { Tensor } from "onnxruntime-web/wasm";
import { createAsyncCache } from "../cache/async-cache.js";
import { asEdgeMLError, EdgeMLError, isEdgeMLError } from "../errors.js";
import { computeFeatures, FEATURE_NAMES, knownFeatureSet, MIN_HISTORY } from "../features/index.js";
import { outageReporter } from "../logger.js";
import { firstBreak, INTERVAL_MS, resolveSymbol, SUPPORTED_SYMBOLS } from "../market/symbols.js";
import type { Bar, MarketDataSource } from "../market/types.js";
import type { VersionMetadata } from "../registry/metadata.js";
import {
  type Deadline,
  deadlineIn,
  type Registry,
  type Resolution,
  withinDeadline,
} from "../registry/registry.js";
import type { PredictionCache } from "../storage/cache.js";
import type { PredictionEntry, PredictionLog } from "../storage/prediction-log.js";
import type { UsageTracker } from "../tracking/usage.js";
import { DEFAULT_HORIZON, forecastModelName, normaliseHorizon } from "./horizon.js";

/** One forecast, as `POST /api/ml/serve` returns it and the cache keeps it. */
export interface Forecast {
  prediction_id: string;
  symbol: string;
  horizon: string;
  model_name: string;
  model_version: string;
  /** Close time of the last bar the features used: the forecast is "as of" this instant. */
  as_of: string;
  /** `as_of` + horizon: when the predicted price is due. */
  target_time: string;
  last_close: number;
  predicted_log_return: number;
  predicted_price: number;
  created_at: string;
  cached: boolean;
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
  now?: () => Date;
}

/** Cache keys carry the model version and the as-of bar, so a promotion or a new bar never serves an old answer. */
export const forecastCacheKey = (
  meta: Pick<VersionMetadata, "name" | "version">,
  horizon: string,
  asOf: number,
) => `forecast:v1:${meta.name}@${meta.version}:${horizon}:${asOf}`;

/** Horizons served for a symbol: the required 24h and any other that has a model. */
async function horizonsFor(registry: Registry, symbol: string): Promise<string[]> {
  const prefix = `${symbol}-`;
  const names = (await registry.listModelNames()).filter((n) => n.startsWith(prefix));
  return [...new Set([DEFAULT_HORIZON, ...names.map((n) => n.slice(prefix.length))])].filter((h) =>
    /^\d+h$/.test(h),
  );
}

/** The version that serves a symbol's horizon, checked: a forecaster of that symbol on a feature set served here. */
async function resolveModel(
  registry: Registry,
  symbol: string,
  horizon: string,
  deadline: Deadline,
): Promise<{ meta: VersionMetadata; via: Resolution }> {
  const name = forecastModelName(symbol, horizon);
  let meta: VersionMetadata;
  let via: Resolution;
  try {
    ({ meta, via } = await registry.resolve(name, undefined, deadline));
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
  return { meta, via };
}

/** The log's record of a forecast served now, chosen by `via`. */
const entryOf = (forecast: Forecast, via: Resolution, servedAt: Date): PredictionEntry => ({
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
  source: "live",
});

/**
 * Records a served forecast off the response path: a log outage never changes an answer; it is warned about once,
 * then counted until the log answers again.
 */
function predictionRecorder(
  deps: Pick<ForecasterDeps, "predictionLog" | "defer" | "warn">,
  now: () => Date,
): (forecast: Forecast, via: Resolution) => void {
  const outage = outageReporter(
    deps.warn,
    `prediction log (${deps.predictionLog.kind})`,
    "forecasts are served but not recorded",
  );
  return (forecast, via) => {
    deps.defer(
      deps.predictionLog.record([entryOf(forecast, via, now())]).then(
        () => outage.succeeded(),
        (error: unknown) => outage.failed(error),
      ),
    );
  };
}

/** The model's bars up to `asOfBar`, checked: enough of them for the features, and no gap. */
async function barsFor(market: MarketDataSource, meta: VersionMetadata, asOfBar: number): Promise<Bar[]> {
  const spec = meta.forecast as NonNullable<VersionMetadata["forecast"]>;
  const bars = await market.getBars(spec.symbol, spec.interval, {
    end: new Date(asOfBar),
    limit: MIN_HISTORY,
  });
  if (bars.length < MIN_HISTORY) {
    throw new EdgeMLError(
      "market_data_unavailable",
      `${market.name} returned ${bars.length} ${spec.interval} bars of ${spec.symbol}; a forecast needs ${MIN_HISTORY}`,
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
  return bars;
}

/**
 * Forecasts for the users' symbols: resolve the version, fetch bars, compute the features with the trainer's own
 * code, run the model, cache the answer. Concurrent identical requests share one run (single flight).
 */
export function createForecaster(deps: ForecasterDeps) {
  const { registry, market, cache } = deps;
  const now = deps.now ?? (() => new Date());
  // A cache outage is warned about once, with the count of failed calls when it ends: not once per request.
  const cacheOutage = outageReporter(deps.warn, `prediction cache (${cache.kind})`, "serving uncached");
  const recordServed = predictionRecorder(deps, now);
  // Policy: singleFlight: concurrent identical requests share one run; answers are kept by the prediction cache
  // (a port, shared by instances), not here.
  const flights = createAsyncCache<string, Forecast, () => Promise<Forecast>>({
    policy: { kind: "singleFlight" },
    load: (_key, work) => work(),
  });

  const compute = async (
    meta: VersionMetadata,
    bars: Bar[],
    asOf: number,
    horizon: string,
    deadline: Deadline,
  ): Promise<Forecast> => {
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
      as_of: new Date(asOf).toISOString(),
      target_time: new Date(asOf + spec.horizon_bars * INTERVAL_MS[spec.interval]).toISOString(),
      last_close: last.close,
      predicted_log_return: logReturn,
      predicted_price: last.close * Math.exp(logReturn),
      created_at: now().toISOString(),
      cached: false,
    };
  };

  const forecastOnce = async (
    symbolInput: string,
    horizonInput: string,
    deadline: Deadline,
  ): Promise<ForecastResult> => {
    const symbol = resolveSymbol(symbolInput);
    const horizon = normaliseHorizon(horizonInput, await horizonsFor(registry, symbol));
    const { meta, via } = await resolveModel(registry, symbol, horizon, deadline);
    const spec = meta.forecast as NonNullable<VersionMetadata["forecast"]>;
    // The as-of bar from the clock alone: bars sit on the interval's UTC grid, so the last one closed by now closes
    // at now rounded down to the grid. The cache is read with it before any bar is fetched: a hit costs no market
    // call. (A source that lags — a CSV directory, a bar Yahoo has not published yet — yields an older `as_of`
    // inside the forecast; the key still names the bar the answer serves, and the TTL bounds how long it does.)
    const step = INTERVAL_MS[spec.interval];
    const asOfBar = Math.floor(now().getTime() / step) * step;
    const key = forecastCacheKey(meta, horizon, asOfBar);

    let cacheUp = true;
    try {
      const hit = await cache.get<Forecast>(key);
      cacheOutage.succeeded();
      if (hit) return { forecast: { ...hit, cached: true }, cache: "HIT" };
    } catch (error) {
      // Fail open: a cache outage costs latency, never an answer.
      cacheUp = false;
      cacheOutage.failed(error);
    }
    // The single flight covers the bars too: concurrent misses cost one market call and one model run.
    const forecast = await flights.get(key, async () => {
      const bars = await barsFor(market, meta, asOfBar);
      // A shared flight runs under the deadline of the request that started it; each caller waits under its own.
      const computed = await compute(meta, bars, (bars.at(-1) as Bar).time + step, horizon, deadline);
      // Recorded where it is made, once: cached answers and the callers sharing this flight carry its
      // prediction_id and are the same record, so they cost the log nothing.
      recordServed(computed, via);
      if (cacheUp) {
        deps.defer(
          cache.set(key, computed, deps.cacheTtlMs).catch((error: unknown) => cacheOutage.failed(error)),
        );
      }
      return computed;
    });
    return { forecast, cache: cacheUp ? "MISS" : "BYPASS" };
  };

  const forecast = async (symbol: string, horizon: string) => {
    // One deadline per request, started here: its signal bounds resolution, bars, features and the run below.
    const deadline = deadlineIn(deps.timeoutMs);
    const result = await withinDeadline(
      forecastOnce(symbol, horizon, deadline),
      deadline,
      `the ${symbol} ${horizon} forecast`,
    );
    const { model_name, model_version } = result.forecast;
    deps.usage.record(model_name, model_version, {
      forecasts: 1,
      [`cache_${result.cache.toLowerCase()}`]: 1,
    });
    return result;
  };

  return {
    forecast,
    /** One forecast per distinct symbol, in parallel; a failing symbol is reported beside the others. */
    async batch(symbols: readonly string[], horizon: string): Promise<BatchItem[]> {
      const distinct = [...new Set(symbols.map((s) => s.trim().toUpperCase()))];
      const settled = await Promise.allSettled(distinct.map((s) => forecast(s, horizon)));
      return settled.map((result, i): BatchItem => {
        const symbol = distinct[i] as string;
        if (result.status === "fulfilled") return { symbol, ok: true, ...result.value };
        const error = asEdgeMLError(result.reason);
        if (error) {
          return {
            symbol,
            ok: false,
            error: { code: error.code, message: error.message, status: error.status },
          };
        }
        deps.warn(`batch forecast of ${symbol} failed`, error);
        return {
          symbol,
          ok: false,
          error: { code: "internal", message: "edgeml: unexpected error", status: 500 },
        };
      });
    },
    supportedSymbols: Object.keys(SUPPORTED_SYMBOLS),
  };
}

export type Forecaster = ReturnType<typeof createForecaster>;
