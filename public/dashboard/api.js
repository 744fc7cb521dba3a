// @ts-check
/**
 * The dashboard's view of the API: the JSON shapes of the performance routes (README, "Performance") and one fetch
 * helper. Same origin only: the page is served by the server whose API it reads.
 */

/** @typedef {"7d" | "30d" | "all"} WindowName */
/** @typedef {"live" | "backfill"} Source */
/** @typedef {{ count: number, p50: number, p90: number, p99: number }} Percentiles */
/**
 * @typedef {{
 *   requests: number, errors: number, error_rate: number | null, errors_by_code: Record<string, number>,
 *   latency_ms: { serve: Percentiles | null, infer: Percentiles | null },
 *   cache: { hits: number, misses: number, hit_rate: number | null }, cold_starts: number
 * }} ServingFigures
 */
/**
 * @typedef {{
 *   window: WindowName, from: string | null, predictions: number, resolved: number, mape: number | null,
 *   naive_mape: number | null, avg_error_pct: number | null, skill: number | null, direction_accuracy: number | null
 * }} Figures
 */
/**
 * @typedef {{
 *   model: string, source: string, generated_at: string, predictions: number, resolved: number,
 *   mape: number | null, naive_mape: number | null, skill: number | null, direction_accuracy: number | null,
 *   windows: Record<WindowName, Figures>,
 *   versions: { version: string, windows: Record<WindowName, Figures>, serving: ServingFigures | null }[],
 *   serving: ServingFigures | null,
 *   resolution?: { pending?: number, open?: number }
 * }} Summary
 */
/**
 * @typedef {{
 *   prediction_id: string, version: string, as_of: string, target_time: string, last_close: number,
 *   predicted_price: number, actual_price?: number
 * }} SeriesPoint
 */
/**
 * @typedef {{ version: string, target_time: string, skill: number | null, mape: number, naive_mape: number,
 *   resolved: number }} SkillPoint
 */
/** @typedef {{ model: string, source: string, points: SeriesPoint[], skill: SkillPoint[] }} Series */
/**
 * @typedef {SeriesPoint & { source: string, served_at?: string, error_pct?: number, naive_error_pct?: number,
 *   direction_hit?: boolean }} PredictionRecord
 */
/** @typedef {{ model: string, items: PredictionRecord[], next_cursor?: string }} PredictionPage */

/**
 * @typedef {{
 *   id: string, challenger: string, champion: string | null, mode: "canary" | "shadow", weight: number,
 *   started_at: string, min_outcomes: number, max_duration_seconds: number
 * }} Rollout
 */
/**
 * The live comparison of a rollout (src/rollout/evaluate.ts, `compareRollout`): what `POST …/rollout/evaluate` would
 * decide now, with the numbers it would write to the audit log.
 * @typedef {{
 *   action: "promote" | "end" | "continue", reason: string, summary: string,
 *   evidence: {
 *     test: string, alpha: number, source: string, pairing: "shadow_of" | "bar", champion: string, challenger: string,
 *     outcomes: { champion: number, challenger: number }, pairs: number, min_outcomes: number,
 *     mean_ape: { champion: number | null, challenger: number | null }, mean_differential: number | null,
 *     dm_statistic: number | null, p_value_better: number | null, p_value_worse: number | null,
 *     window: { from: string | null, to: string | null, first_target: string | null, last_target: string | null },
 *     elapsed_seconds: number, max_duration_seconds: number
 *   }
 * }} RolloutComparison
 */
/** @typedef {{ rollout: Rollout, comparison: RolloutComparison | null }} RolloutStatus */

/** What the API said when it refused: its stable code and message (`{ error, code }`). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {string | undefined} code
   */
  constructor(status, message, code) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * GET a JSON document of this server; the admin token, when given, as a bearer token.
 * @param {string} path
 * @param {string | null} [token]
 * @returns {Promise<any>}
 */
export async function getJson(path, token) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = typeof body?.error === "string" ? body.error : `HTTP ${response.status} for ${path}`;
    throw new ApiError(response.status, message, typeof body?.code === "string" ? body.code : undefined);
  }
  return body;
}

/** @param {string} model */
const modelPath = (model) => `/api/ml/performance/${encodeURIComponent(model)}`;

/**
 * @param {string} model
 * @param {Source} source
 * @returns {Promise<Summary>}
 */
export const fetchSummary = (model, source) => getJson(`${modelPath(model)}?source=${source}`);

/**
 * The latest resolved forecasts (the route's cap: what a chart can show) and the skill series.
 * @param {string} model
 * @param {Source} source
 * @returns {Promise<Series>}
 */
export const fetchSeries = (model, source) =>
  getJson(`${modelPath(model)}/series?source=${source}&limit=2000`);

/**
 * One page of the prediction log (admin), newest target first.
 * @param {string} model
 * @param {Source} source
 * @param {string} token
 * @param {string} [cursor]
 * @returns {Promise<PredictionPage>}
 */
export function fetchPredictions(model, source, token, cursor) {
  const query = new URLSearchParams({ source, limit: "50" });
  if (cursor) query.set("cursor", cursor);
  return getJson(`${modelPath(model)}/predictions?${query}`, token);
}

/**
 * The model names to choose from: the registry's listing with the admin token, else the public statistics listing
 * of the Open Inference Protocol (Triton's `GET /v2/models/stats`, one entry per model version).
 * @param {string | null} token
 * @returns {Promise<string[]>}
 */
export async function fetchModelNames(token) {
  if (token) {
    /** @type {{ models: { name: string }[] }} */
    const listing = await getJson("/api/ml/models", token);
    return [...new Set(listing.models.map((m) => m.name))].sort();
  }
  /** @type {{ model_stats: { name: string }[] }} */
  const stats = await getJson("/v2/models/stats");
  return [...new Set(stats.model_stats.map((m) => m.name))].sort();
}

/**
 * The model's running rollout with its live comparison (admin), or null when none runs: the model's pointers say
 * first, so a model without a rollout costs no refused request.
 * @param {string} model
 * @param {string} token
 * @returns {Promise<RolloutStatus | null>}
 */
export async function fetchRollout(model, token) {
  const path = `/api/ml/models/${encodeURIComponent(model)}`;
  /** @type {{ pointers?: { rollout?: Rollout } }} */
  const detail = await getJson(path, token);
  if (!detail.pointers?.rollout) return null;
  return getJson(`${path}/rollout`, token);
}
