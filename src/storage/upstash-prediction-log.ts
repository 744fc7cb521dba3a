import { EdgeMLError, errorMessage } from "../errors.js";
import type { PredictionLog, PredictionRecord } from "./prediction-log.js";
import * as rules from "./prediction-log.js";
import { withTimeout } from "./timeout.js";
import { type UpstashAdapterOptions, upstashSettings } from "./upstash-cache.js";

/** The `ZRANGE … BYSCORE` form the log uses: always paged, scores returned. */
export interface ZRangeByScore {
  byScore: true;
  rev?: boolean;
  withScores: true;
  offset: number;
  count: number;
}

/** All the prediction log needs from `@upstash/redis`'s `Pipeline`: every call is one pipelined request. */
export interface UpstashPredictionLogPipeline {
  eval(script: string, keys: string[], args: string[]): unknown;
  hmget(key: string, ...fields: string[]): unknown;
  hgetall(key: string): unknown;
  zcard(key: string): unknown;
  zrange(key: string, min: number, max: number, options?: ZRangeByScore): unknown;
  zrem(key: string, ...members: string[]): unknown;
  hdel(key: string, ...fields: string[]): unknown;
  exec(): Promise<unknown[]>;
}

export interface UpstashPredictionLogRedisLike {
  pipeline(): UpstashPredictionLogPipeline;
}

export interface UpstashPredictionLogOptions extends UpstashAdapterOptions {
  /** Records kept per model; past it the oldest by target time go. Default 20 000. */
  capPerModel?: number;
  /** Expiry of a prediction's hash, counted from its first record. Default a year. */
  ttlSeconds?: number;
}

/**
 * Writes a forecast unless its (prediction id, version) is there, and indexes it only then: atomic, so a retried or
 * repeated write can never re-open a resolved record in the due set. The hash gets its expiry when it is created.
 * KEYS: hash, index, due. ARGV: version, forecast JSON, target ms, member, ttl seconds.
 */
const RECORD = `
if redis.call('HSETNX', KEYS[1], 'f:' .. ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return 1`;

/** Sets the outcome of an existing record unless it has one. KEYS: hash, due. ARGV: version, outcome JSON, member. */
const RESOLVE = `
if redis.call('HEXISTS', KEYS[1], 'f:' .. ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[3])
return redis.call('HSETNX', KEYS[1], 'o:' .. ARGV[1], ARGV[2])`;

/** Stores the manual report of a prediction id that has a record. KEYS: hash. ARGV: manual JSON. */
const TRACK = `
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'f:' then
    redis.call('HSET', KEYS[1], 'manual', ARGV[1])
    return 1
  end
end
return 0`;

/** Index entries read per round trip when a listing filters: enough for a page of most filters in one. */
const SCAN_CHUNK = 200;

/** The log's keys and its round trips, shared by the operations below. */
interface LogStore {
  keys: (model: string) => { index: string; due: string; hash: (predictionId: string) => string };
  run: (what: string, build: (p: UpstashPredictionLogPipeline) => void) => Promise<unknown[]>;
  json: (value: unknown) => unknown;
  read: (model: string, members: readonly string[]) => Promise<(PredictionRecord | undefined)[]>;
  prune: (model: string, members: string[], fromIndex: boolean) => Promise<void>;
  trim: (model: string, size: number) => Promise<void>;
}

function logStore(
  redis: UpstashPredictionLogRedisLike,
  settings: { prefix: string; timeoutMs: number; cap: number },
): LogStore {
  const { prefix, timeoutMs, cap } = settings;
  const keys = (model: string) => {
    const m = `${prefix}${encodeURIComponent(model)}:`;
    return { index: `${m}t`, due: `${m}due`, hash: (predictionId: string) => `${m}p:${predictionId}` };
  };

  /** Runs one pipeline within the timeout; an outage is a `not_ready` that says so. */
  const run = async (what: string, build: (p: UpstashPredictionLogPipeline) => void): Promise<unknown[]> => {
    const pipeline = redis.pipeline();
    build(pipeline);
    return withTimeout(pipeline.exec(), timeoutMs, `Upstash Redis (prediction log ${what})`).catch((error) =>
      Promise.reject(
        new EdgeMLError(
          "not_ready",
          // @upstash/redis ends its messages with the commands it sent (whole forecasts): the cause keeps them.
          `the prediction log is unavailable (${errorMessage(error).replace(/,? *command was: .*$/s, "")}); try again shortly`,
          { cause: error },
        ),
      ),
    );
  };

  /** With automatic deserialisation (the default) the client has parsed the JSON already; without, we do. */
  const json = (value: unknown) => (typeof value === "string" ? JSON.parse(value) : value);

  /** The records at `members`, undefined where the hash has expired or the record was trimmed meanwhile. */
  const read = async (model: string, members: readonly string[]) => {
    if (members.length === 0) return [];
    const k = keys(model);
    const replies = await run("read", (p) => {
      for (const member of members) {
        const { prediction_id, version } = rules.keyOfMember(member);
        p.hmget(k.hash(prediction_id), `f:${version}`, `o:${version}`, "manual");
      }
    });
    return replies.map((reply, i): PredictionRecord | undefined => {
      const fields = (reply ?? {}) as Record<string, unknown>;
      const version = rules.keyOfMember(members[i] as string).version;
      const forecast = fields[`f:${version}`];
      if (forecast == null) return undefined;
      return rules.assembleRecord(
        json(forecast),
        json(fields[`o:${version}`]),
        json(fields.manual),
        `${model} ${members[i]}`,
      );
    });
  };

  /** Drops index entries whose record is gone (expired): best effort, a later read retries. */
  const prune = async (model: string, members: string[], fromIndex: boolean) => {
    if (members.length === 0) return;
    const k = keys(model);
    await run("prune", (p) => {
      p.zrem(k.due, ...members);
      if (fromIndex) p.zrem(k.index, ...members);
    }).catch(() => {});
  };

  const trim = async (model: string, size: number) => {
    const excess = size - cap;
    if (excess <= 0) return;
    const k = keys(model);
    const [oldest] = await run("trim", (p) => p.zrange(k.index, 0, excess - 1));
    const members = ((oldest ?? []) as unknown[]).map(String);
    if (members.length === 0) return;
    await run("trim", (p) => {
      p.zrem(k.index, ...members);
      p.zrem(k.due, ...members);
      for (const member of members) {
        const { prediction_id, version } = rules.keyOfMember(member);
        p.hdel(k.hash(prediction_id), `f:${version}`, `o:${version}`);
      }
    });
  };

  return { keys, run, json, read, prune, trim };
}

/** `ZRANGE … WITHSCORES` replies alternate member and score. */
const pairs = (reply: unknown) => {
  const flat = (reply ?? []) as unknown[];
  const out: { member: string; t: number }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ member: String(flat[i]), t: Number(flat[i + 1]) });
  return out;
};

/** One page of a model's log: see PredictionLog.list. */
async function listPage(
  store: LogStore,
  model: string,
  options: Parameters<PredictionLog["list"]>[1],
): ReturnType<PredictionLog["list"]> {
  const { keys, run, read, prune } = store;
  const query = rules.parseListOptions(options);
  const k = keys(model);
  const max = Math.min(query.toMs, query.after?.t ?? Number.MAX_SAFE_INTEGER);
  const matches: PredictionRecord[] = [];
  const gone: string[] = [];
  // Unfiltered, a page and the one after it (which says whether there is a next page) is one round; filtered,
  // at least SCAN_CHUNK entries a round. Bounded either way: the index never holds more than the cap.
  const filtered = query.version !== undefined || query.source !== undefined || query.resolved !== undefined;
  const chunk = Math.max(query.limit + 1, filtered ? SCAN_CHUNK : 0);
  for (let offset = 0; matches.length <= query.limit; offset += chunk) {
    const [reply] = await run("list", (p) =>
      p.zrange(k.index, max, query.fromMs, {
        byScore: true,
        rev: true,
        withScores: true,
        offset,
        count: chunk,
      }),
    );
    const rows = pairs(reply);
    const wanted = rows.filter((row) => rules.isAfterCursor(row, query));
    const records = await read(
      model,
      wanted.map((row) => row.member),
    );
    records.forEach((record, i) => {
      if (!record) gone.push((wanted[i] as { member: string }).member);
      else if (rules.matchesFilters(record, query) && matches.length <= query.limit) matches.push(record);
    });
    if (rows.length < chunk) break;
  }
  await prune(model, gone, true);
  return rules.pageOf(matches, query.limit);
}

/** Unresolved records due by `now`: see PredictionLog.due. */
async function dueRecords(
  store: LogStore,
  model: string,
  now: Date,
  limit: number,
): Promise<PredictionRecord[]> {
  const { keys, run, read, prune } = store;
  rules.assertLimit(limit);
  const k = keys(model);
  const found: PredictionRecord[] = [];
  const stale: string[] = [];
  const gone: string[] = [];
  // Pruned after the loop, so that offsets stay valid; bounded by the due set, itself bounded by the cap.
  for (let offset = 0; found.length < limit; offset += limit) {
    const [reply] = await run("due", (p) =>
      p.zrange(k.due, Number.MIN_SAFE_INTEGER, now.getTime(), {
        byScore: true,
        withScores: true,
        offset,
        count: limit,
      }),
    );
    const rows = pairs(reply);
    const records = await read(
      model,
      rows.map((row) => row.member),
    );
    records.forEach((record, i) => {
      const member = (rows[i] as { member: string }).member;
      if (!record) gone.push(member);
      else if (rules.isResolved(record)) stale.push(member);
      else if (found.length < limit) found.push(record);
    });
    if (rows.length < limit) break;
  }
  await prune(model, gone, true);
  await prune(model, stale, false);
  return found;
}

/**
 * The prediction log on Upstash Redis, bounded three ways. Per model `m` (URI-encoded in keys):
 * - `<prefix>plog:<m>:p:<prediction_id>`: a hash per prediction id, fields `f:<version>` (the forecast JSON),
 *   `o:<version>` (its outcome JSON) and `manual` (the manual report, beside the outcomes). It expires `ttlSeconds`
 *   after its first record.
 * - `<prefix>plog:<m>:t`: a sorted set of every record, member `"<prediction_id> <version>"`, scored by target time
 *   (ms). Listings page through it newest first; past `capPerModel` members the oldest are dropped with their fields.
 * - `<prefix>plog:<m>:due`: the same for unresolved records only, so finding what is due reads no resolved record.
 * Writes, resolutions and reports are small Lua scripts (atomic first-write-wins without a read round trip), sent in
 * one pipeline per call. Members whose hash has expired are dropped from both sets when a read meets them, and count
 * against the cap until then: the sets never exceed the cap however old the log. A listing that filters reads at
 * most the cap's entries. Every request is bounded by the adapter's timeout; a failure is a 503 `not_ready`.
 */
export function createUpstashPredictionLog(
  redis: UpstashPredictionLogRedisLike,
  options: UpstashPredictionLogOptions = {},
): PredictionLog {
  const { prefix, timeoutMs } = upstashSettings(options, "plog");
  const cap = options.capPerModel ?? rules.PREDICTION_LOG_DEFAULTS.capPerModel;
  const ttl = options.ttlSeconds ?? rules.PREDICTION_LOG_DEFAULTS.ttlSeconds;
  rules.assertCap(cap);
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new Error(`edgeml: prediction log ttlSeconds must be a positive integer, not ${ttl}`);
  }
  const store = logStore(redis, { prefix, timeoutMs, cap });
  const { keys, run, json, trim } = store;
  const log: PredictionLog = {
    kind: "upstash",
    async record(entries) {
      const parsed = rules.parseEntries(entries);
      if (parsed.length === 0) return 0;
      const models = [...new Set(parsed.map((entry) => entry.model))];
      const replies = await run("record", (p) => {
        for (const entry of parsed) {
          const k = keys(entry.model);
          p.eval(
            RECORD,
            [k.hash(entry.prediction_id), k.index, k.due],
            [
              entry.version,
              JSON.stringify(entry),
              String(Date.parse(entry.target_time)),
              rules.memberOf(entry),
              String(ttl),
            ],
          );
        }
        for (const model of models) p.zcard(keys(model).index);
      });
      const sizes = replies.slice(parsed.length).map(Number);
      await Promise.all(models.map((model, i) => trim(model, sizes[i] ?? 0)));
      return replies.slice(0, parsed.length).filter((reply) => Number(reply) === 1).length;
    },
    async get(model, predictionId) {
      const [reply] = await run("get", (p) => p.hgetall(keys(model).hash(predictionId)));
      const fields = (reply ?? {}) as Record<string, unknown>;
      return Object.keys(fields)
        .filter((field) => field.startsWith("f:"))
        .map((field) => field.slice(2))
        .sort()
        .map((version) =>
          rules.assembleRecord(
            json(fields[`f:${version}`]),
            json(fields[`o:${version}`]),
            json(fields.manual),
            `${model} ${predictionId} ${version}`,
          ),
        );
    },
    list: (model, options) => listPage(store, model, options),
    due: (model, now, limit) => dueRecords(store, model, now, limit),
    async resolve(model, resolutions) {
      const checked = resolutions.map((r) => ({ ...r, outcome: rules.parseOutcome(r.outcome) }));
      if (checked.length === 0) return 0;
      const k = keys(model);
      const replies = await run("resolve", (p) => {
        for (const r of checked) {
          p.eval(
            RESOLVE,
            [k.hash(r.prediction_id), k.due],
            [r.version, JSON.stringify(r.outcome), rules.memberOf(r)],
          );
        }
      });
      return replies.filter((reply) => Number(reply) === 1).length;
    },
    async track(model, predictionId, manual) {
      const report = rules.parseManual(manual);
      await run("track", (p) => p.eval(TRACK, [keys(model).hash(predictionId)], [JSON.stringify(report)]));
      return log.get(model, predictionId);
    },
  };
  return log;
}
