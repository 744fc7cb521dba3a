/** Label names to values of one series. */
export type Labels = Record<string, string>;

/** One series as read back from the store. */
export interface Series {
  metric: string;
  labels: Labels;
  value: number;
}

/**
 * The metric names the store keeps. Histograms are three series each, stored as `<name>_bucket` (one count per
 * bucket, not cumulative: an observation costs one increment, not one per bucket above it), `<name>_sum_us` (the
 * store keeps integers: microseconds) and `<name>_count`; the exposition turns them into Prometheus' shape.
 */
export const METRIC = {
  httpRequests: "edgeml_http_requests_total",
  httpErrors: "edgeml_http_errors_total",
  httpDuration: "edgeml_http_request_duration_seconds",
  serveDuration: "edgeml_serve_duration_seconds",
  serveErrors: "edgeml_serve_errors_total",
  serveFailedUs: "edgeml_serve_failed_duration_us",
  inferenceDuration: "edgeml_inference_duration_seconds",
  inferenceRows: "edgeml_inference_rows_total",
  modelLoads: "edgeml_model_loads_total",
  predictionLogWrites: "edgeml_prediction_log_writes_total",
  shadowDropped: "edgeml_shadow_dropped_total",
  lastInference: "edgeml_last_inference_ms",
} as const;

/**
 * A series' key in the store: `metric|label=value|…`, labels sorted, values URI-encoded. Not JSON on purpose: the
 * Upstash client parses every JSON-looking string it reads back (SMEMBERS included) into a value.
 */
export function seriesKey(metric: string, labels: Labels = {}): string {
  // Every request records a few series: their keys are memoised by an identity cheaper to build than the key
  // (length-prefixed, so no two label sets share one). Labels are bounded by construction (route templates, the
  // registry's names, known codes), so the memo is too; the bound below only guards against a bug that is not.
  let id = `${metric.length}:${metric}`;
  for (const k in labels) {
    const v = labels[k] as string;
    id += `${k.length}:${k}${v.length}:${v}`;
  }
  let key = keys.get(id);
  if (key === undefined) {
    const pairs = Object.keys(labels)
      .sort()
      .map((k) => `${k}=${encodeURIComponent(labels[k] as string)}`);
    key = [metric, ...pairs].join("|");
    if (keys.size >= MAX_MEMOISED_KEYS) keys.clear();
    keys.set(id, key);
  }
  return key;
}

const keys = new Map<string, string>();
const MAX_MEMOISED_KEYS = 50_000;

/** The series a key names; undefined for a key this code did not write. */
export function parseSeries(key: string, value: number): Series | undefined {
  const [metric, ...pairs] = key.split("|");
  if (!metric?.startsWith("edgeml_") || !Number.isFinite(value)) return undefined;
  const labels: Labels = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) return undefined;
    try {
      labels[pair.slice(0, at)] = decodeURIComponent(pair.slice(at + 1));
    } catch {
      return undefined;
    }
  }
  return { metric, labels, value };
}
