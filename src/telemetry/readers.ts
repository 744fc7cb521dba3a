import { EdgeMLError } from "../errors.js";
import type { ServingFigures } from "../performance/service.js";
import type { Usage } from "../tracking/usage.js";
import { cacheFamily, type Family, storedFamilies } from "./exposition.js";
import { type HistogramCounts, percentilesMs } from "./histogram.js";
import { type Catalog, OTHER, UNRESOLVED } from "./labels.js";
import { type Labels, METRIC, type Series } from "./series.js";

/** Reads the usage tracker's counters (forecast cache hits and misses per version): never counted twice. */
export type UsageReader = {
  read(model: string, versions: readonly string[]): Promise<{ versions: Record<string, Usage> }>;
};

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
  batch_stats: { batch_size: number }[];
}

const matches = (labels: Labels, match: Labels) => Object.entries(match).every(([k, v]) => labels[k] === v);

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

/** The sum of `metric` over every series whose labels include `match`. */
export const total = (series: readonly Series[], metric: string, match: Labels): number =>
  series.reduce((sum, s) => (s.metric === metric && matches(s.labels, match) ? sum + s.value : sum), 0);

type CacheCounts = { hits: number; misses: number };

/** Serving figures of one set of series (a version, or the whole model). */
function figuresOf(series: readonly Series[], match: Labels, cache: CacheCounts): ServingFigures {
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
}

/** Cache hits and misses (a bypass is a miss: the cache failed) per version. */
const cacheOf = (usage: Record<string, Usage>, version: string): CacheCounts => ({
  hits: usage[version]?.cache_hit ?? 0,
  misses: (usage[version]?.cache_miss ?? 0) + (usage[version]?.cache_bypass ?? 0),
});

/** The serving figures of a model and of each version the registry lists. */
export async function servingFiguresOf(
  series: readonly Series[],
  model: string,
  catalog: Catalog,
  usage: UsageReader,
): Promise<{ model: ServingFigures; versions: Record<string, ServingFigures> }> {
  const versions = await catalog.versionNames(model).catch(() => [] as string[]);
  const counts = (await usage.read(model, versions)).versions;
  const modelCache = versions.reduce(
    (sum, v) => ({
      hits: sum.hits + cacheOf(counts, v).hits,
      misses: sum.misses + cacheOf(counts, v).misses,
    }),
    { hits: 0, misses: 0 },
  );
  return {
    model: figuresOf(series, { model }, modelCache),
    versions: Object.fromEntries(
      versions.map((v) => [v, figuresOf(series, { model, version: v }, cacheOf(counts, v))]),
    ),
  };
}

/** Which (model, versions) a statistics request covers: 404 for a name or version the registry does not have. */
export async function statsScope(
  catalog: Catalog,
  name: string | undefined,
  version: string | undefined,
): Promise<[string, string[]][]> {
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
  return pairs;
}

const duration = (count: number, seconds: number) => ({ count, ns: Math.round(seconds * 1e9) });

/** Triton's statistics (extension_statistics.md) of one model version. */
export function tritonStat(
  series: readonly Series[],
  model: string,
  version: string,
  usage?: Usage,
): TritonModelStat {
  const labels = { model, version };
  const serve = histogramOf(series, METRIC.serveDuration, labels);
  const infer = histogramOf(series, METRIC.inferenceDuration, labels);
  return {
    name: model,
    version,
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
      cache_hit: duration(usage?.cache_hit ?? 0, 0),
      cache_miss: duration((usage?.cache_miss ?? 0) + (usage?.cache_bypass ?? 0), 0),
    },
    batch_stats: [],
  };
}

/**
 * The stored series as exposition families, bounded by the registry's retention: a series of a model or version
 * the registry no longer lists is left out. Cache lookups come from the usage tracker.
 */
export async function familiesOf(
  series: readonly Series[],
  catalog: Catalog,
  usage: UsageReader,
): Promise<Family[]> {
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
    return version === undefined || version === OTHER || version === UNRESOLVED || versions.includes(version);
  });
  const cacheRows = [];
  for (const [model, versions] of versionsOf) {
    const counts = (await usage.read(model, versions)).versions;
    for (const version of versions) {
      const u = counts[version];
      if (!u || u.cache_hit + u.cache_miss + u.cache_bypass === 0) continue;
      cacheRows.push({ model, version, hit: u.cache_hit, miss: u.cache_miss, bypass: u.cache_bypass });
    }
  }
  return [...storedFamilies(kept), cacheFamily(cacheRows)];
}
