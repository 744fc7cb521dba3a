import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { createAsyncCache } from "../cache/async-cache.js";
import { asEdgeMLError, EdgeMLError, ERROR_STATUS } from "../errors.js";
import type { InferenceEngine } from "../inference/engine.js";
import { outageReporter } from "../logger.js";
import type { ServingFigures, ServingFiguresSource } from "../performance/service.js";
import type { Registry } from "../registry/registry.js";
import type { InferenceOperations } from "../services/inference.js";
import type { Usage } from "../tracking/usage.js";
import { cacheFamily, type Family, storedFamilies } from "./exposition.js";
import { bucketOf, type HistogramCounts, percentilesMs } from "./histogram.js";
import { type Labels, METRIC, parseSeries, type Series, seriesKey } from "./series.js";
import type { MetricsStore } from "./store.js";

/** The label of anything the registry does not name (a model or version label is never free text). */
export const OTHER = "other";
/** The route label of a request no route matched: raw paths never become labels. */
export const UNMATCHED_ROUTE = "unmatched";
/** The version label of a failure that happened before a version was chosen. */
export const UNRESOLVED = "unresolved";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** What the forecaster and the OIP operations report about each request they serve. */
export interface ServeObserver {
  /** A request answered, in `seconds` (cache hits included). */
  served(model: string, version: string, seconds: number): void;
  /** A request that failed with `error`; `version` when one had been chosen. */
  failed(model: string, version: string | undefined, seconds: number, error: unknown): void;
  /** A served forecast written to the prediction log, or not (`ok` false: the log failed). */
  predictionLogged(model: string, ok: boolean): void;
}

/** The names and versions labels may take: the registry's (its cached listing, no store call per request). */
export type Catalog = Pick<Registry, "listModelNames" | "versionNames">;

export interface TelemetryDeps {
  store: MetricsStore;
  /** The registry, read lazily (the registry is built with the instrumented engine, after the telemetry). */
  catalog: () => Catalog;
  /** Forecast cache hits and misses per version: the usage tracker counts them already; read, never re-counted. */
  usage: () => {
    read(model: string, versions: readonly string[]): Promise<{ versions: Record<string, Usage> }>;
  };
  defer: (work: Promise<unknown>) => void;
  warn: (message: string, error: unknown) => void;
  now?: () => Date;
}

/** One Triton statistics entry (the statistics extension's `$model_stat`). */
export interface TritonModelStat {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<
    | "success"
    | "fail"
    | "queue"
    | "compute_input"
    | "compute_infer"
    | "compute_output"
    | "cache_hit"
    | "cache_miss",
    { count: number; ns: number }
  >;
  batch_stats: never[];
}

const elapsedSince = (started: number) => (performance.now() - started) / 1000;

const codeOf = (error: unknown): string => asEdgeMLError(error)?.code ?? "internal";

const knownCode = (code: unknown): string =>
  typeof code === "string" && Object.hasOwn(ERROR_STATUS, code) ? code : OTHER;

/**
 * The route label: the template of the route that matched (Hono's `routePath` of the last matched handler, e.g.
 * `/v2/models/:name/infer`), never the raw path; a request only middleware matched is `unmatched`.
 */
function routeOf(c: Context): string {
  const path = routePath(c, -1);
  return !path || path === "*" || path === "/*" ? UNMATCHED_ROUTE : path;
}

/**
 * One observation of a histogram: its bucket and the sum (µs: the store keeps integers). No count series: the count
 * is the buckets' total, so the exposition's `+Inf` bucket and `_count` agree even when a read lands between two
 * commands of another instance's pipeline.
 */
function histogram(metric: string, labels: Labels, seconds: number): Record<string, number> {
  return {
    [seriesKey(`${metric}_bucket`, { ...labels, le: bucketOf(seconds) })]: 1,
    [seriesKey(`${metric}_sum_us`, labels)]: Math.round(seconds * 1e6),
  };
}

/** The histogram of `metric` summed over every series whose labels include `match`. */
export function histogramOf(series: readonly Series[], metric: string, match: Labels): HistogramCounts {
  const h: HistogramCounts = { buckets: {}, count: 0, sumSeconds: 0 };
  for (const s of series) {
    if (!matches(s.labels, match)) continue;
    if (s.metric === `${metric}_bucket`) {
      const le = s.labels.le ?? "+Inf";
      h.buckets[le] = (h.buckets[le] ?? 0) + s.value;
      h.count += s.value;
    } else if (s.metric === `${metric}_sum_us`) h.sumSeconds += s.value / 1e6;
  }
  return h;
}

const matches = (labels: Labels, match: Labels) => Object.entries(match).every(([k, v]) => labels[k] === v);

/** The sum of `metric` over every series whose labels include `match`. */
export const total = (series: readonly Series[], metric: string, match: Labels): number =>
  series.reduce((sum, s) => (s.metric === metric && matches(s.labels, match) ? sum + s.value : sum), 0);

/**
 * Telemetry of this server: what it records (requests by route and status, serve and inference latency by model
 * and version, failures by code, cold starts, prediction-log writes) into a shared metrics store, and what it reads
 * back (the /metrics exposition, Triton's statistics, the performance API's serving figures).
 *
 * Recording never touches the response path: each record is handed to `defer` (the edge's waitUntil), labels are
 * checked against the registry there, and writes are coalesced (one store write in flight at a time per instance;
 * whatever is recorded meanwhile goes in the next). A store failure is warned about once per outage and the
 * records of that write are dropped: never retried, since a pipeline that partly applied would count twice.
 */
export function createTelemetry(deps: TelemetryDeps) {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());
  const writes = outageReporter(
    deps.warn,
    `metrics store (${store.kind}, writes)`,
    "requests are not counted",
  );
  const inflight = new Set<Promise<void>>();

  let add = new Map<string, number>();
  let set = new Map<string, number>();
  let queued: Promise<void> | null = null;
  let last: Promise<void> = Promise.resolve();

  /** Writes what has accumulated, after the write in flight: the next write takes everything recorded until it starts. */
  const scheduleWrite = (): Promise<void> => {
    if (queued) return queued;
    const next = last.then(async () => {
      queued = null;
      const batch = { add: Object.fromEntries(add), set: Object.fromEntries(set) };
      add = new Map();
      set = new Map();
      if (Object.keys(batch.add).length === 0 && Object.keys(batch.set).length === 0) return;
      try {
        await store.write(batch);
        writes.succeeded();
      } catch (error) {
        writes.failed(error);
      }
    });
    queued = next;
    last = next;
    return next;
  };

  /** Runs `record` off the response path and merges what it returns into the next write. */
  const track = (record: () => Promise<{ add?: Record<string, number>; set?: Record<string, number> }>) => {
    const work = (async () => {
      try {
        const batch = await record();
        for (const [k, by] of Object.entries(batch.add ?? {})) add.set(k, (add.get(k) ?? 0) + by);
        for (const [k, v] of Object.entries(batch.set ?? {})) set.set(k, Math.max(set.get(k) ?? 0, v));
      } catch (error) {
        // Labelling reads only the registry's cached listing; a failure there drops one record, loudly.
        writes.failed(error);
        return;
      }
      await scheduleWrite();
    })();
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
    deps.defer(work);
  };

  /** Model and version labels bounded by the registry: a name it does not list is `other`. */
  const labelsOf = async (
    model: string,
    version: string | undefined,
  ): Promise<{ model: string; version: string }> => {
    const catalog = deps.catalog();
    const names = await catalog.listModelNames().catch(() => [] as string[]);
    if (!names.includes(model)) return { model: OTHER, version: OTHER };
    if (version === undefined) return { model, version: UNRESOLVED };
    const versions = await catalog.versionNames(model).catch(() => [] as string[]);
    return { model, version: versions.includes(version) ? version : OTHER };
  };

  /** `name@version` (the engine's session key) split at its last `@`. */
  const splitKey = (key: string): [string, string | undefined] => {
    const at = key.lastIndexOf("@");
    return at <= 0 ? [key, undefined] : [key.slice(0, at), key.slice(at + 1)];
  };

  const coldStart = (key: string) =>
    track(async () => {
      const [model, version] = splitKey(key);
      return { add: { [seriesKey(METRIC.modelLoads, await labelsOf(model, version))]: 1 } };
    });

  const observer: ServeObserver = {
    served(model, version, seconds) {
      const at = now().getTime();
      track(async () => {
        const labels = await labelsOf(model, version);
        return {
          add: histogram(METRIC.serveDuration, labels, seconds),
          set: { [seriesKey(METRIC.lastInference, labels)]: at },
        };
      });
    },
    failed(model, version, seconds, error) {
      const code = codeOf(error);
      const at = now().getTime();
      track(async () => {
        const labels = await labelsOf(model, version);
        return {
          add: {
            [seriesKey(METRIC.serveErrors, { ...labels, code: knownCode(code) })]: 1,
            [seriesKey(METRIC.serveFailedUs, labels)]: Math.round(seconds * 1e6),
          },
          set: { [seriesKey(METRIC.lastInference, labels)]: at },
        };
      });
    },
    predictionLogged(model, ok) {
      track(async () => {
        const { model: label } = await labelsOf(model, undefined);
        return {
          add: { [seriesKey(METRIC.predictionLogWrites, { model: label, result: ok ? "ok" : "failed" })]: 1 },
        };
      });
    },
  };

  /** HTTP middleware: every answer by route template, method and status; error answers by their code. */
  const middleware: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = elapsedSince(started);
    const route = routeOf(c);
    const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
    const status = c.res.status;
    // Error answers carry their code in the JSON body (`{error, code}`); read from a copy, after the response.
    const body =
      status >= 400 && c.res.headers.get("content-type")?.includes("json") ? c.res.clone() : undefined;
    track(async () => {
      const batch: Record<string, number> = {
        [seriesKey(METRIC.httpRequests, { route, method, status: String(status) })]: 1,
        ...histogram(METRIC.httpDuration, { route }, seconds),
      };
      if (status >= 400) {
        const parsed: unknown = await body?.json().catch(() => undefined);
        const code =
          typeof parsed === "object" && parsed !== null ? (parsed as { code?: unknown }).code : undefined;
        batch[seriesKey(METRIC.httpErrors, { route, code: knownCode(code) })] = 1;
      }
      return { add: batch };
    });
  };

  // Policy: singleFlight: concurrent readers (scrapes, public performance and statistics reads) share one store
  // read, so a burst of public requests costs the store one read, not one each; nothing is kept after it.
  const reads = createAsyncCache<"all", Record<string, number>>({
    policy: { kind: "singleFlight" },
    load: () => store.readAll(),
  });

  /** Every series in the store, parsed; a series whose name cannot be parsed (not ours) is skipped. */
  const read = async (): Promise<Series[]> => {
    const values = await reads.get("all");
    return Object.entries(values).flatMap(([key, value]) => {
      const parsed = parseSeries(key, value);
      return parsed ? [parsed] : [];
    });
  };

  /** Serving figures of one set of series (a version, or the whole model). */
  const figuresOf = (
    series: readonly Series[],
    match: Labels,
    cache: { hits: number; misses: number },
  ): ServingFigures => {
    const serve = histogramOf(series, METRIC.serveDuration, match);
    const errorsByCode: Record<string, number> = {};
    for (const s of series) {
      if (s.metric !== METRIC.serveErrors || !matches(s.labels, match)) continue;
      const code = s.labels.code ?? OTHER;
      errorsByCode[code] = (errorsByCode[code] ?? 0) + s.value;
    }
    const errors = Object.values(errorsByCode).reduce((a, b) => a + b, 0);
    const requests = serve.count + errors;
    const lookups = cache.hits + cache.misses;
    return {
      requests,
      errors,
      error_rate: requests > 0 ? errors / requests : null,
      errors_by_code: errorsByCode,
      latency_ms: {
        serve: percentilesMs(serve),
        infer: percentilesMs(histogramOf(series, METRIC.inferenceDuration, match)),
      },
      cache: { hits: cache.hits, misses: cache.misses, hit_rate: lookups > 0 ? cache.hits / lookups : null },
      cold_starts: total(series, METRIC.modelLoads, match),
    };
  };

  /** Cache hits and misses (a bypass is a miss: the cache failed) per version, from the usage tracker. */
  const cacheOf = async (model: string, versions: readonly string[]) => {
    const usage = await deps.usage().read(model, versions);
    return Object.fromEntries(
      versions.map((v) => {
        const u = usage.versions[v];
        return [v, { hits: u?.cache_hit ?? 0, misses: (u?.cache_miss ?? 0) + (u?.cache_bypass ?? 0) }];
      }),
    );
  };

  const servingFigures: ServingFiguresSource = async (model) => {
    let series: Series[];
    try {
      series = await read();
    } catch (error) {
      deps.warn(`could not read the metrics store (${store.kind})`, error);
      return null;
    }
    const versions = await deps
      .catalog()
      .versionNames(model)
      .catch(() => [] as string[]);
    const cache = await cacheOf(model, versions);
    const modelCache = Object.values(cache).reduce(
      (sum, c) => ({ hits: sum.hits + c.hits, misses: sum.misses + c.misses }),
      { hits: 0, misses: 0 },
    );
    return {
      model: figuresOf(series, { model }, modelCache),
      versions: Object.fromEntries(
        versions.map((v) => [
          v,
          figuresOf(series, { model, version: v }, cache[v] ?? { hits: 0, misses: 0 }),
        ]),
      ),
    };
  };

  /**
   * Triton's statistics (extension_statistics.md) of every version of `name` (every model without it), or of the
   * one version named: 404 for a name or version the registry does not have, 503 when the store cannot be read.
   */
  const modelStats = async (name?: string, version?: string): Promise<TritonModelStat[]> => {
    const catalog = deps.catalog();
    const names = name === undefined ? await catalog.listModelNames() : [name];
    const pairs: [string, string[]][] = [];
    for (const model of names) {
      const versions = await catalog.versionNames(model);
      if (version !== undefined && !versions.includes(version)) {
        throw new EdgeMLError(
          "version_not_found",
          `model '${model}' has no version '${version}'; see GET /v2/models/${model}`,
        );
      }
      pairs.push([model, version === undefined ? versions : [version]]);
    }
    let series: Series[];
    try {
      series = await read();
    } catch (error) {
      throw new EdgeMLError("store_unavailable", "the metrics store cannot be read; try again shortly", {
        cause: error,
      });
    }
    const stats: TritonModelStat[] = [];
    for (const [model, versions] of pairs) {
      const usage = await deps.usage().read(model, versions);
      for (const v of versions) {
        const labels = { model, version: v };
        const serve = histogramOf(series, METRIC.serveDuration, labels);
        const infer = histogramOf(series, METRIC.inferenceDuration, labels);
        const u = usage.versions[v];
        const duration = (count: number, seconds: number) => ({ count, ns: Math.round(seconds * 1e9) });
        stats.push({
          name: model,
          version: v,
          last_inference: total(series, METRIC.lastInference, labels),
          inference_count: total(series, METRIC.inferenceRows, labels),
          execution_count: infer.count,
          inference_stats: {
            success: duration(serve.count, serve.sumSeconds),
            fail: duration(
              total(series, METRIC.serveErrors, labels),
              total(series, METRIC.serveFailedUs, labels) / 1e6,
            ),
            // Not measured apart: one run at a time per engine, so queueing and tensor conversion are inside
            // compute_infer. Zero rather than a made-up split.
            queue: duration(0, 0),
            compute_input: duration(0, 0),
            compute_infer: duration(infer.count, infer.sumSeconds),
            compute_output: duration(0, 0),
            // The forecast cache (OIP infer is never cached); lookups are not timed.
            cache_hit: duration(u?.cache_hit ?? 0, 0),
            cache_miss: duration((u?.cache_miss ?? 0) + (u?.cache_bypass ?? 0), 0),
          },
          batch_stats: [],
        });
      }
    }
    return stats;
  };

  /**
   * The stored series as exposition families, bounded by the registry's retention: a series of a model or version
   * the registry no longer lists is left out. Throws when the store cannot be read.
   */
  const families = async (): Promise<Family[]> => {
    const series = await read();
    const catalog = deps.catalog();
    const names = await catalog.listModelNames();
    const versionsOf = new Map(
      await Promise.all(
        names.map(async (n) => [n, await catalog.versionNames(n).catch(() => [] as string[])] as const),
      ),
    );
    const kept = series.filter(({ labels: { model, version } }) => {
      if (model === undefined || model === OTHER) return true;
      const versions = versionsOf.get(model);
      if (!versions) return false;
      return (
        version === undefined || version === OTHER || version === UNRESOLVED || versions.includes(version)
      );
    });
    const cacheRows = [];
    for (const [model, versions] of versionsOf) {
      const usage = await deps.usage().read(model, versions);
      for (const version of versions) {
        const u = usage.versions[version];
        if (!u || u.cache_hit + u.cache_miss + u.cache_bypass === 0) continue;
        cacheRows.push({ model, version, hit: u.cache_hit, miss: u.cache_miss, bypass: u.cache_bypass });
      }
    }
    return [...storedFamilies(kept), cacheFamily(cacheRows)];
  };

  return {
    /** Registered before every route (src/http.ts): counts every answer, 429s and 404s included. */
    middleware,
    observer,
    /** Counts each session load (a cold start) of the engine: `load` is called only when a session is not warm. */
    instrumentEngine(engine: InferenceEngine): InferenceEngine {
      const counted = (key: string, load: () => Promise<Uint8Array>) => async () => {
        const bytes = await load();
        coldStart(key);
        return bytes;
      };
      return {
        init: () => engine.init(),
        signature: (key, load) => engine.signature(key, counted(key, load)),
        run: (request) => engine.run({ ...request, load: counted(request.key, request.load) }),
        evict: (key) => engine.evict(key),
        stats: () => engine.stats(),
      };
    },
    /** Times each model execution (`registry.infer`: forecasts that missed the cache, OIP infer) by model and version. */
    instrumentRegistry(registry: Registry): Registry {
      return {
        ...registry,
        async infer(meta, feeds, outputs, deadline) {
          const started = performance.now();
          const result = await registry.infer(meta, feeds, outputs, deadline);
          const seconds = elapsedSince(started);
          const rows = Object.values(feeds)[0]?.dims[0] ?? 1;
          track(async () => {
            const labels = await labelsOf(meta.name, meta.version);
            return {
              add: {
                ...histogram(METRIC.inferenceDuration, labels, seconds),
                [seriesKey(METRIC.inferenceRows, labels)]: rows,
              },
            };
          });
          return result;
        },
      };
    },
    /** Times each OIP infer request and counts its failures by code, by model and version. */
    instrumentInference(operations: InferenceOperations): InferenceOperations {
      return {
        ...operations,
        async infer(name, version, body) {
          const started = performance.now();
          try {
            const result = await operations.infer(name, version, body);
            observer.served(result.model_name, result.model_version, elapsedSince(started));
            return result;
          } catch (error) {
            observer.failed(name, version, elapsedSince(started), error);
            throw error;
          }
        },
      };
    },
    /** Resolves once every record made so far is written (or dropped): a scrape then includes this instance's. */
    async flush(): Promise<void> {
      while (inflight.size > 0) await Promise.all([...inflight]);
      await last;
    },
    read,
    families,
    servingFigures,
    modelStats,
  };
}

export type Telemetry = ReturnType<typeof createTelemetry>;
