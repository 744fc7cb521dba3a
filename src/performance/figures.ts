import { isResolved, type PredictionRecord } from "../storage/prediction-log.js";

/**
 * The performance figures, computed from prediction-log records and nothing else: the API, the metrics gauges and the
 * dashboard all read these, and a test recomputes them from the listing.
 */

const DAY_MS = 86_400_000;

/** Rolling windows by `target_time`, back from an end instant. */
export const WINDOWS = { "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, all: Number.POSITIVE_INFINITY } as const;
export type WindowName = keyof typeof WINDOWS;
export const WINDOW_NAMES = Object.keys(WINDOWS) as WindowName[];

export interface Figures {
  window: WindowName;
  /** First instant the window counts (exclusive), ISO 8601; null for `all`. */
  from: string | null;
  /** Forecasts whose `target_time` is in the window (resolved or not; a window has no upper bound). */
  predictions: number;
  resolved: number;
  /** Mean absolute percentage error of the resolved forecasts, in percent; null with none resolved. */
  mape: number | null;
  /** The naive forecast's (last close held flat) MAPE on the same resolved forecasts, in percent. */
  naive_mape: number | null;
  /** The users' seed name for `mape`: the mean absolute percentage error, in percent. */
  avg_error_pct: number | null;
  /** 1 − mape / naive_mape, a fraction: above 0 beats naive, below 0 loses to it. Null when undefined. */
  skill: number | null;
  /** Share of resolved forecasts that moved from the last close in the direction the market did. */
  direction_accuracy: number | null;
}

/** Sums that combine by addition, so a rolling window can add and remove records. */
interface Sums {
  resolved: number;
  absError: number;
  absNaive: number;
  hits: number;
}

const emptySums = (): Sums => ({ resolved: 0, absError: 0, absNaive: 0, hits: 0 });

function add(sums: Sums, record: PredictionRecord, sign: 1 | -1): void {
  sums.resolved += sign;
  sums.absError += sign * Math.abs(record.error_pct as number);
  sums.absNaive += sign * Math.abs(record.naive_error_pct as number);
  sums.hits += sign * (record.direction_hit ? 1 : 0);
}

/** MAPE, naive MAPE and skill from sums; null where there is nothing to divide by. */
function ratios(sums: Sums) {
  if (sums.resolved === 0) {
    return { mape: null, naive_mape: null, skill: null, direction_accuracy: null };
  }
  const mape = sums.absError / sums.resolved;
  const naive = sums.absNaive / sums.resolved;
  return {
    mape,
    naive_mape: naive,
    // A naive error of exactly 0 on every forecast (flat market) leaves skill undefined, not infinite.
    skill: naive > 0 ? 1 - mape / naive : null,
    direction_accuracy: sums.hits / sums.resolved,
  };
}

/** The figures of `records` whose target time is after `end − window`. */
export function figuresOf(records: readonly PredictionRecord[], window: WindowName, end: Date): Figures {
  const fromMs = end.getTime() - WINDOWS[window];
  const sums = emptySums();
  let predictions = 0;
  for (const record of records) {
    if (!(Date.parse(record.target_time) > fromMs)) continue;
    predictions += 1;
    if (isResolved(record)) add(sums, record, 1);
  }
  const { mape, naive_mape, skill, direction_accuracy } = ratios(sums);
  return {
    window,
    from: Number.isFinite(fromMs) ? new Date(fromMs).toISOString() : null,
    predictions,
    resolved: sums.resolved,
    mape,
    naive_mape,
    avg_error_pct: mape,
    skill,
    direction_accuracy,
  };
}

/** Every window's figures of `records`. */
export const windowsOf = (records: readonly PredictionRecord[], end: Date) =>
  Object.fromEntries(WINDOW_NAMES.map((w) => [w, figuresOf(records, w, end)])) as Record<WindowName, Figures>;

export interface SkillPoint {
  version: string;
  target_time: string;
  /** Over the version's resolved forecasts with target time in the 30 days up to and including `target_time`. */
  skill: number | null;
  mape: number;
  naive_mape: number;
  resolved: number;
}

/**
 * Rolling 30-day skill of each version at each of its resolved target times (one point per distinct time), oldest
 * first: what "live skill per version over time" plots. Records must be resolved.
 */
export function rollingSkill(resolved: readonly PredictionRecord[], windowMs = WINDOWS["30d"]): SkillPoint[] {
  const byVersion = new Map<string, PredictionRecord[]>();
  for (const record of resolved) {
    const list = byVersion.get(record.version) ?? [];
    list.push(record);
    byVersion.set(record.version, list);
  }
  const points: SkillPoint[] = [];
  for (const [version, list] of byVersion) {
    const sorted = [...list].sort((a, b) => Date.parse(a.target_time) - Date.parse(b.target_time));
    const sums = emptySums();
    let tail = 0;
    for (let i = 0; i < sorted.length; i++) {
      const record = sorted[i] as PredictionRecord;
      add(sums, record, 1);
      const t = Date.parse(record.target_time);
      while (Date.parse((sorted[tail] as PredictionRecord).target_time) <= t - windowMs) {
        add(sums, sorted[tail] as PredictionRecord, -1);
        tail += 1;
      }
      // One point per time: the last record at a time carries the window that includes all of them.
      const next = sorted[i + 1];
      if (next && Date.parse(next.target_time) === t) continue;
      const { mape, naive_mape, skill } = ratios(sums);
      points.push({
        version,
        target_time: record.target_time,
        skill,
        mape: mape as number,
        naive_mape: naive_mape as number,
        resolved: sums.resolved,
      });
    }
  }
  return points.sort(
    (a, b) => Date.parse(a.target_time) - Date.parse(b.target_time) || (a.version < b.version ? -1 : 1),
  );
}
