import { z } from "zod";
import { EdgeMLError } from "../errors.js";

/**
 * The prediction log: every forecast served, then what happened. Adapters: process memory (tests, the edge without a
 * store), Node's built-in SQLite (`npm start`, src/storage/node/sqlite-prediction-log.ts) and Upstash Redis
 * (production, src/storage/upstash-prediction-log.ts). The contract suite test/storage/prediction-log.contract.ts
 * holds every adapter to the same behaviour.
 */

/**
 * Where a forecast came from. Only `live` is evidence of how a version performs in production: `replay` (a forecast
 * asked for a past `as_of`, resolvable at once), `backfill` (replayed over history, out of sample) and `shadow`
 * (computed beside a served forecast, never served) are kept apart by every figure built on the log.
 */
export const PredictionSourceSchema = z.enum(["live", "replay", "backfill", "shadow"]);
export type PredictionSource = z.infer<typeof PredictionSourceSchema>;

/**
 * How the served version was chosen. Open on purpose: the rollout issue adds ways (experiments, mirrors) and an old
 * record must stay readable; these are the ones known today.
 */
export const KNOWN_CHOSEN_VIA = [
  "requested",
  "pinned",
  "champion",
  "best",
  "latest",
  "canary",
  "naive",
] as const;
export const ChosenViaSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, "a lower-case word such as champion, pinned or canary");

/**
 * Prediction ids and versions are restricted to ASCII without spaces so that `"<prediction_id> <version>"` sorts,
 * byte by byte, exactly as the pair does: every adapter breaks ties on `target_time` by that string (Redis orders
 * equal scores by member bytes, SQLite's BINARY collation is memcmp), and pages stay identical across adapters.
 */
const PREDICTION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const VERSION = /^[A-Za-z0-9._-]{1,64}$/;
const utc = z.iso.datetime();
const price = z.number().positive().finite();

/** A forecast as served: what `record` takes. Fields are the issue's (#10), in its words. */
export const PredictionEntrySchema = z
  .object({
    prediction_id: z.string().regex(PREDICTION_ID, "letters, digits and . _ : - (at most 128)"),
    /** Registry name, e.g. `BTC-24h`. */
    model: z.string().min(1).max(200),
    version: z.string().regex(VERSION, "letters, digits and . _ - (at most 64)"),
    symbol: z.string().min(1),
    horizon: z.string().min(1),
    /** Close time of the last bar the features used. */
    as_of: utc,
    /** When the predicted price is due: the close time of the bar the forecast is resolved against. */
    target_time: utc,
    last_close: price,
    predicted_price: price,
    predicted_log_return: z.number().finite(),
    served_at: utc,
    chosen_via: ChosenViaSchema,
    source: PredictionSourceSchema,
    /** The served forecast a shadow forecast was computed beside; present exactly on `shadow` records. */
    shadow_of: z.string().regex(PREDICTION_ID).optional(),
  })
  .strict()
  .refine((entry) => (entry.source === "shadow") === (entry.shadow_of !== undefined), {
    message: "shadow_of is required on a shadow record and only there",
    path: ["shadow_of"],
  });
export type PredictionEntry = z.infer<typeof PredictionEntrySchema>;

/**
 * What the market did, as the resolver records it. Percentages are in percent and signed,
 * `100 · (forecast − actual) / actual`, so a bias stays visible; MAPE is the mean of their absolute values.
 * `outcomeFor` computes them; adapters store what they are given.
 */
export const PredictionOutcomeSchema = z
  .object({
    /** Close of the bar that closes at `target_time`, from the market source the forecast used. */
    actual_price: price,
    /** That bar's close time (equal to `target_time` when the source has the bar). */
    actual_time: utc,
    error_pct: z.number().finite(),
    /** The naive forecast's error: the last close at `as_of`, held flat. */
    naive_error_pct: z.number().finite(),
    /** The forecast moved from the last close in the direction the market did (no move counts as a direction). */
    direction_hit: z.boolean(),
    resolved_at: utc,
  })
  .strict();
export type PredictionOutcome = z.infer<typeof PredictionOutcomeSchema>;

/**
 * A value someone reported by hand (`POST /api/ml/performance/track`). Kept beside the market outcome, never over it:
 * a manual figure that contradicts the market data must not rewrite what the market did.
 */
export const ManualTrackingSchema = z
  .object({
    predicted_value: z.number().finite(),
    actual_value: z.number().finite(),
    tracked_at: utc,
  })
  .strict();
export type ManualTracking = z.infer<typeof ManualTrackingSchema>;

/** A logged forecast: the entry, its outcome fields once resolved (all or none), and the manual report if any. */
export type PredictionRecord = PredictionEntry & Partial<PredictionOutcome> & { manual?: ManualTracking };

/** A record is identified within a model by its prediction id and the version that made it. */
export interface PredictionKey {
  prediction_id: string;
  version: string;
}

export interface PredictionResolution extends PredictionKey {
  outcome: PredictionOutcome;
}

export interface PredictionListOptions {
  version?: string;
  source?: PredictionSource;
  resolved?: boolean;
  /** Earliest `target_time` listed (inclusive), ISO 8601 UTC. */
  from?: string;
  /** Latest `target_time` listed (inclusive), ISO 8601 UTC. */
  to?: string;
  /** Page size, 1–1000; default 100. */
  limit?: number;
  /** The previous page's `next_cursor`. */
  cursor?: string;
}

export interface PredictionPage {
  /** Newest `target_time` first; ties by prediction id, then version, descending. */
  items: PredictionRecord[];
  /** Present exactly when more records match: pass it as `cursor` for the next page. */
  next_cursor?: string;
}

/**
 * The prediction log port, declared by what the performance tracker calls. Every adapter has the same semantics:
 * - `record` is idempotent per (model, prediction_id, version): the first write wins, so a cached answer served
 *   again and recorded again is counted once. It validates the whole batch before writing any of it.
 * - `resolve` is final: the first outcome of a record wins (the daily cron and a lazy resolve may race).
 * - `track` stores the manual report beside the outcome on every version of the prediction id; a later report
 *   replaces an earlier one.
 * - Each model keeps at most `capPerModel` records: past that, the oldest by `target_time` are dropped.
 * - Failures reject (an outage is an EdgeMLError `not_ready`); callers on the response path catch and count them.
 */
export interface PredictionLog {
  readonly kind: string;
  /** Writes forecasts (any models); answers how many were new. */
  record(entries: readonly PredictionEntry[]): Promise<number>;
  /** Every version's record of one prediction id, by version; [] when unknown. */
  get(model: string, predictionId: string): Promise<PredictionRecord[]>;
  /** One page of a model's log, filtered, newest `target_time` first. */
  list(model: string, options?: PredictionListOptions): Promise<PredictionPage>;
  /** Unresolved records whose `target_time` is at or before `now`, oldest first, at most `limit` (1–1000). */
  due(model: string, now: Date, limit: number): Promise<PredictionRecord[]>;
  /** Records outcomes; answers how many records were unresolved and now are (unknown keys are skipped). */
  resolve(model: string, resolutions: readonly PredictionResolution[]): Promise<number>;
  /** Stores a manual report on every version of `predictionId`; answers the updated records, [] when unknown. */
  track(model: string, predictionId: string, manual: ManualTracking): Promise<PredictionRecord[]>;
}

/** Defaults shared by the adapters, each with why. */
export const PREDICTION_LOG_DEFAULTS = {
  /**
   * About 300 forecasts a day per model (a new prediction id per cache expiry, 5 min) for two months, or a year of
   * daily backfill for several versions; a record is about 600 bytes, so 20 000 keep Upstash near 12 MB per model.
   */
  capPerModel: 20_000,
  /** Upstash only: records expire a year after they were written, so an abandoned model's log empties itself. */
  ttlSeconds: 365 * 24 * 60 * 60,
  /** Page size when none is asked for. */
  pageSize: 100,
  maxPageSize: 1_000,
} as const;

/** The outcome of `entry` given the actual close at `target_time`: the one place the error figures are computed. */
export function outcomeFor(
  entry: Pick<PredictionEntry, "last_close" | "predicted_price">,
  actual: { price: number; time: string },
  resolvedAt: Date,
): PredictionOutcome {
  const pct = (forecast: number) => (100 * (forecast - actual.price)) / actual.price;
  return {
    actual_price: actual.price,
    actual_time: actual.time,
    error_pct: pct(entry.predicted_price),
    naive_error_pct: pct(entry.last_close),
    direction_hit:
      Math.sign(entry.predicted_price - entry.last_close) === Math.sign(actual.price - entry.last_close),
    resolved_at: resolvedAt.toISOString(),
  };
}

export const isResolved = (record: PredictionRecord) => record.actual_price !== undefined;

// ---- Shared by the adapters, so that their semantics cannot drift apart. ----

/** `"<prediction_id> <version>"`: the record's identity within a model, and its tie-break order. */
export const memberOf = (key: PredictionKey) => `${key.prediction_id} ${key.version}`;

export function keyOfMember(member: string): PredictionKey {
  const space = member.indexOf(" ");
  return { prediction_id: member.slice(0, space), version: member.slice(space + 1) };
}

/** Orders by target time, then member (bytewise: the strings are ASCII). */
export function compareRecords(a: { t: number; member: string }, b: { t: number; member: string }) {
  return a.t - b.t || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0);
}

/** Validates a batch before any of it is written. */
export function parseEntries(entries: readonly unknown[]): PredictionEntry[] {
  return entries.map((entry, i) => {
    const parsed = PredictionEntrySchema.safeParse(entry);
    if (!parsed.success) {
      throw new EdgeMLError(
        "invalid_request",
        `prediction log entry ${i} is not valid: ${z.prettifyError(parsed.error)}`,
        { details: parsed.error.issues },
      );
    }
    return parsed.data;
  });
}

export function parseOutcome(outcome: unknown): PredictionOutcome {
  const parsed = PredictionOutcomeSchema.safeParse(outcome);
  if (!parsed.success) {
    throw new EdgeMLError("invalid_request", `outcome is not valid: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export function parseManual(manual: unknown): ManualTracking {
  const parsed = ManualTrackingSchema.safeParse(manual);
  if (!parsed.success) {
    throw new EdgeMLError("invalid_request", `manual report is not valid: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Builds a record from its stored parts, checking them: a corrupt store is reported, never served. */
export function assembleRecord(
  forecast: unknown,
  outcome: unknown,
  manual: unknown,
  where: string,
): PredictionRecord {
  const entry = PredictionEntrySchema.safeParse(forecast);
  const resolved = outcome == null ? undefined : PredictionOutcomeSchema.safeParse(outcome);
  const reported = manual == null ? undefined : ManualTrackingSchema.safeParse(manual);
  for (const part of [entry, resolved, reported]) {
    if (part && !part.success) {
      throw new EdgeMLError(
        "internal",
        `the stored prediction record ${where} is not valid: ${part.error.message}`,
      );
    }
  }
  return {
    ...entry.data,
    ...resolved?.data,
    ...(reported?.data ? { manual: reported.data } : {}),
  } as PredictionRecord;
}

/** A list request with its bounds in milliseconds and its cursor decoded. */
export interface ListQuery {
  version?: string;
  source?: PredictionSource;
  resolved?: boolean;
  fromMs: number;
  toMs: number;
  limit: number;
  /** Only records strictly after this position (in newest-first order). */
  after?: { t: number; member: string };
}

const ListOptionsSchema = z.object({
  version: z.string().optional(),
  source: PredictionSourceSchema.optional(),
  resolved: z.boolean().optional(),
  from: utc.optional(),
  to: utc.optional(),
  limit: z.number().int().min(1).max(PREDICTION_LOG_DEFAULTS.maxPageSize).optional(),
  cursor: z.string().optional(),
});

export function parseListOptions(options: PredictionListOptions = {}): ListQuery {
  const parsed = ListOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new EdgeMLError("invalid_request", `list options are not valid: ${z.prettifyError(parsed.error)}`);
  }
  const { from, to, limit, cursor, ...filters } = parsed.data;
  return {
    ...filters,
    fromMs: from === undefined ? Number.MIN_SAFE_INTEGER : Date.parse(from),
    toMs: to === undefined ? Number.MAX_SAFE_INTEGER : Date.parse(to),
    limit: limit ?? PREDICTION_LOG_DEFAULTS.pageSize,
    ...(cursor === undefined ? {} : { after: decodeCursor(cursor) }),
  };
}

/** Whether a record passes a list's filters (not its range or cursor, which adapters apply in their queries). */
export const matchesFilters = (record: PredictionRecord, query: ListQuery) =>
  (query.version === undefined || record.version === query.version) &&
  (query.source === undefined || record.source === query.source) &&
  (query.resolved === undefined || isResolved(record) === query.resolved);

/** Whether position `p` comes after `query.after` in newest-first order. */
export const isAfterCursor = (p: { t: number; member: string }, query: ListQuery) =>
  query.after === undefined || compareRecords(p, query.after) < 0;

/** The opaque cursor: the position of the last record served. */
export function encodeCursor(record: PredictionRecord): string {
  const position = [Date.parse(record.target_time), memberOf(record)];
  return btoa(JSON.stringify(position)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeCursor(cursor: string): { t: number; member: string } {
  try {
    const json = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const [t, member] = JSON.parse(json) as unknown[];
    if (
      typeof t === "number" &&
      Number.isSafeInteger(t) &&
      typeof member === "string" &&
      member.includes(" ")
    ) {
      return { t, member };
    }
  } catch {
    // reported below, whatever the defect
  }
  throw new EdgeMLError(
    "invalid_request",
    "cursor is not one this API returned; pass a response's next_cursor unchanged, or start again without it",
  );
}

/** Turns `limit + 1` matches into a page: the extra one only says that there is a next page. */
export function pageOf(matches: PredictionRecord[], limit: number): PredictionPage {
  if (matches.length <= limit) return { items: matches };
  const items = matches.slice(0, limit);
  return { items, next_cursor: encodeCursor(items[limit - 1] as PredictionRecord) };
}

export function assertLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > PREDICTION_LOG_DEFAULTS.maxPageSize) {
    throw new EdgeMLError(
      "invalid_request",
      `limit must be an integer from 1 to ${PREDICTION_LOG_DEFAULTS.maxPageSize}`,
    );
  }
}

export function assertCap(capPerModel: number): void {
  if (!Number.isInteger(capPerModel) || capPerModel < 1) {
    throw new Error(`edgeml: prediction log capPerModel must be a positive integer, not ${capPerModel}`);
  }
}
