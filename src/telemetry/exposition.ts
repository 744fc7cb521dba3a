import type { PerformanceSummary } from "../performance/service.js";
import { cumulative, type HistogramCounts } from "./histogram.js";
import { type Labels, METRIC, type Series, seriesKey } from "./series.js";

/**
 * The Prometheus text exposition format 0.0.4, written by hand: prom-client (the Node library) keeps its own
 * in-process registry and imports Node's cluster, v8 and perf_hooks modules, so it can neither run on the edge
 * nor expose counters that live in a shared store. The format is a few lines per family.
 */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface Sample {
  /** `_bucket`, `_sum`, `_count` for a histogram's samples; none otherwise. */
  suffix?: string;
  labels: Labels;
  value: number;
}

export interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  samples: Sample[];
}

const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return pairs.length > 0 ? `{${pairs.join(",")}}` : "";
}

/** The families as exposition text: HELP and TYPE, then each sample on its own line; families without samples are left out. */
export function serialize(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const s of family.samples) {
      lines.push(`${family.name}${s.suffix ?? ""}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

const COUNTERS: { metric: string; help: string; scale?: number; name?: string }[] = [
  {
    metric: METRIC.httpRequests,
    help: "HTTP requests answered, by route template (never the raw path), method and status code.",
  },
  {
    metric: METRIC.httpErrors,
    help: "HTTP error answers (status 400 and above) by route template and the error's stable code.",
  },
  {
    metric: METRIC.serveErrors,
    help: 'Failed forecast and OIP infer requests by model, version ("unresolved" before one was chosen) and error code.',
  },
  {
    metric: METRIC.serveFailedUs,
    name: "edgeml_serve_failed_duration_seconds_total",
    scale: 1e-6,
    help: "Time spent on failed forecast and OIP infer requests, in seconds.",
  },
  {
    metric: METRIC.inferenceRows,
    help: "Rows (first input dimension) run through the model, by model and version; cache hits run nothing.",
  },
  {
    metric: METRIC.modelLoads,
    help: "Model sessions created (cold starts: a version's bytes loaded into the engine), by model and version.",
  },
  {
    metric: METRIC.predictionLogWrites,
    help: 'Served forecasts written to the prediction log, by model and result ("ok" or "failed").',
  },
  {
    metric: METRIC.shadowDropped,
    help: 'Shadow forecasts of a rollout not logged, by model and reason ("queue_depth": the engine was busier than SHADOW_MAX_QUEUE_DEPTH; "failed": the challenger or the log failed).',
  },
];

const HISTOGRAMS: { metric: string; help: string }[] = [
  { metric: METRIC.httpDuration, help: "HTTP request duration in seconds, by route template." },
  {
    metric: METRIC.serveDuration,
    help: "Duration of successful forecast and OIP infer requests in seconds (cache hits included), by model and version.",
  },
  {
    metric: METRIC.inferenceDuration,
    help: "Duration of model executions in seconds (session load and verification on a cold start included), by model and version.",
  },
];

function histogramSamples(series: readonly Series[], metric: string): Sample[] {
  const groups = new Map<string, { labels: Labels; h: HistogramCounts }>();
  for (const s of series) {
    const isBucket = s.metric === `${metric}_bucket`;
    if (!isBucket && s.metric !== `${metric}_sum_us`) continue;
    const { le, ...labels } = s.labels;
    const key = seriesKey("", labels);
    const group = groups.get(key) ?? { labels, h: { buckets: {}, count: 0, sumSeconds: 0 } };
    groups.set(key, group);
    if (isBucket) {
      const bound = le ?? "+Inf";
      group.h.buckets[bound] = (group.h.buckets[bound] ?? 0) + s.value;
      group.h.count += s.value;
    } else group.h.sumSeconds += s.value / 1e6;
  }
  return [...groups.values()].flatMap(({ labels, h }) => [
    ...cumulative(h).map(({ le, count }) => ({ suffix: "_bucket", labels: { ...labels, le }, value: count })),
    { suffix: "_sum", labels, value: h.sumSeconds },
    { suffix: "_count", labels, value: h.count },
  ]);
}

/** The stored series as families: counters, histograms (cumulative buckets, +Inf equal to the count) and gauges. */
export function storedFamilies(series: readonly Series[]): Family[] {
  const counters = COUNTERS.map(({ metric, help, scale, name }) => ({
    name: name ?? metric,
    type: "counter" as const,
    help,
    samples: series
      .filter((s) => s.metric === metric)
      .map((s) => ({ labels: s.labels, value: scale ? s.value * scale : s.value })),
  }));
  const histograms = HISTOGRAMS.map(({ metric, help }) => ({
    name: metric,
    type: "histogram" as const,
    help,
    samples: histogramSamples(series, metric),
  }));
  const last: Family = {
    name: "edgeml_last_inference_timestamp_seconds",
    type: "gauge",
    help: "When the last forecast or OIP infer request for the model version was answered, as Unix time in seconds.",
    samples: series
      .filter((s) => s.metric === METRIC.lastInference)
      .map((s) => ({ labels: s.labels, value: s.value / 1e3 })),
  };
  return [...counters, ...histograms, last];
}

/** Forecast cache lookups per version, from the usage tracker's counters (read, never counted twice). */
export function cacheFamily(
  rows: readonly { model: string; version: string; hit: number; miss: number; bypass: number }[],
): Family {
  return {
    name: "edgeml_forecast_cache_requests_total",
    type: "counter",
    help: 'Forecast cache lookups by model, version and result: "hit", "miss", or "bypass" (the cache was unreachable).',
    samples: rows.flatMap(({ model, version, hit, miss, bypass }) =>
      (
        [
          ["hit", hit],
          ["miss", miss],
          ["bypass", bypass],
        ] as const
      ).map(([result, value]) => ({ labels: { model, version, result }, value })),
    ),
  };
}

/**
 * Live performance gauges per model version and window (7d, 30d, all), from the performance service's summary
 * of `live` forecasts: skill (1 − MAPE / naive MAPE), MAPE and naive MAPE as ratios (Prometheus' base unit: the
 * API's percents divided by 100), and the resolved forecasts they rest on. A model whose summary fails is left out
 * (reported to `warn`); a figure with no resolved forecast has no sample.
 */
export async function liveGauges(
  models: readonly string[],
  summary: (model: string) => Promise<PerformanceSummary>,
  warn: (message: string, error: unknown) => void,
): Promise<Family[]> {
  const skill: Sample[] = [];
  const mape: Sample[] = [];
  const naive: Sample[] = [];
  const resolved: Sample[] = [];
  for (const model of models) {
    let result: PerformanceSummary;
    try {
      result = await summary(model);
    } catch (error) {
      warn(`live performance gauges of ${model} left out`, error);
      continue;
    }
    for (const { version, windows } of result.versions) {
      for (const [window, figures] of Object.entries(windows)) {
        const labels = { model, version, window };
        if (figures.skill !== null) skill.push({ labels, value: figures.skill });
        if (figures.mape !== null) mape.push({ labels, value: figures.mape / 100 });
        if (figures.naive_mape !== null) naive.push({ labels, value: figures.naive_mape / 100 });
        resolved.push({ labels, value: figures.resolved });
      }
    }
  }
  return [
    {
      name: "edgeml_live_skill",
      type: "gauge",
      help: "Live skill of a model version over a window: 1 - MAPE / naive MAPE on its resolved live forecasts (above 0 beats no-change).",
      samples: skill,
    },
    {
      name: "edgeml_live_mape_ratio",
      type: "gauge",
      help: "Live mean absolute percentage error of a model version over a window, as a ratio (0.02 is 2 %).",
      samples: mape,
    },
    {
      name: "edgeml_live_naive_mape_ratio",
      type: "gauge",
      help: "MAPE of the naive no-change forecast on the same resolved live forecasts, as a ratio.",
      samples: naive,
    },
    {
      name: "edgeml_live_resolved_predictions",
      type: "gauge",
      help: "Resolved live forecasts of a model version in a window: what the live figures rest on.",
      samples: resolved,
    },
  ];
}
