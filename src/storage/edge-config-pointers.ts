import { createClient } from "@vercel/edge-config";
import { z } from "zod";
import { createAsyncCache } from "../cache/async-cache.js";
import { EdgeMLError } from "../errors.js";
import { consoleLogger } from "../logger.js";
import { sha256Hex } from "../util/hash.js";
import { type AuditLog, createMemoryAuditLog } from "./audit-log.js";
import { StoreError } from "./errors.js";
import { createKeyedLock } from "./keyed-lock.js";
import {
  AuditEntrySchema,
  frozenPointers,
  type ModelPointers,
  ModelPointersSchema,
  type PointerChange,
  type PointerStore,
} from "./pointers.js";
import { withTimeout } from "./timeout.js";

/** Defaults of the Edge Config pointer store, each with why. */
export const EDGE_CONFIG_DEFAULTS = {
  /** Key namespace: `<keyPrefix>_pointers_<model>`. Lets one Edge Config hold several deployments. */
  keyPrefix: "edgeml",
  /**
   * Reads are served from process memory this long. Version resolution reads the pointers on every request; Edge
   * Config reads are cheap but not free (and billed), and a promotion reaching every instance within a few seconds
   * is what Edge Config's own propagation offers anyway. The instance that writes sees its write at once.
   */
  cacheTtlMs: 5_000,
  /** Edge Config reads are served from the region; past this, the last known pointers serve. */
  readTimeoutMs: 2_000,
  /** A write goes to the Vercel API (one region, with propagation): slower, and rare. */
  writeTimeoutMs: 10_000,
  apiBase: "https://api.vercel.com",
} as const;

/** Vercel's rule for Edge Config item keys. */
const KEY_PATTERN = /^[\w-]+$/;
const MAX_KEY_LENGTH = 256;

export interface EdgeConfigWriteTarget {
  /** `ecfg_…`: the Edge Config's id (the read connection string carries it too). */
  id: string;
  /** A Vercel REST API token allowed to write the Edge Config. */
  token: string;
  /** The team that owns the Edge Config, when it is not the token's personal account. */
  teamId?: string;
  /** Default `https://api.vercel.com`; the local emulator serves the same API at its own URL. */
  apiBase?: string;
}

export interface EdgeConfigPointerStoreOptions {
  /** The read connection string (`EDGE_CONFIG`): `https://edge-config.vercel.com/ecfg_…?token=…`. */
  connectionString: string;
  /** Where writes go; without it the store is read-only and `set` fails with a message saying what is missing. */
  write?: EdgeConfigWriteTarget;
  /** Key namespace (`[\w-]+`); default `edgeml`. */
  keyPrefix?: string;
  /** How long a read is reused; default 5 s. 0 reads Edge Config on every call (still falling back when down). */
  cacheTtlMs?: number;
  /**
   * Where the audit log goes: Edge Config holds only the small pointers (a Hobby plan's Edge Config is 8 KB in all,
   * Pro's 64 KB), one item per model. Default: process memory (lost on restart); production wires Upstash Redis.
   */
  audit?: AuditLog;
  /** Where an audit entry that could not be recorded is reported; default the console logger. */
  warn?: (message: string, error: unknown) => void;
  readTimeoutMs?: number;
  writeTimeoutMs?: number;
  /** The fetch of REST writes; reads use `@vercel/edge-config`'s own. */
  fetch?: typeof fetch;
  /** Clock of the read cache, in ms. */
  now?: () => number;
}

const OptionsSchema = z.object({
  connectionString: z.string().min(1, "EDGE_CONFIG (the read connection string) is required"),
  keyPrefix: z
    .string()
    .regex(KEY_PATTERN, "keyPrefix must match ^[\\w-]+$ (Edge Config's rule for keys)")
    .max(64),
  cacheTtlMs: z.number().int().nonnegative(),
  readTimeoutMs: z.number().int().positive(),
  writeTimeoutMs: z.number().int().positive(),
  write: z
    .object({
      id: z.string().regex(/^ecfg_[\w-]+$/, "the Edge Config id starts with ecfg_"),
      token: z.string().min(1, "a Vercel API token is required to write"),
      teamId: z.string().min(1).optional(),
      apiBase: z.string().url().optional(),
    })
    .optional(),
});

/**
 * Model names (`[A-Za-z0-9][A-Za-z0-9_.-]*`) as Edge Config key parts (`[A-Za-z0-9_-]`), one to one:
 * `_` is written `__` and `.` is written `_d`; every other character is kept. So `BTC-24h` stays `BTC-24h`,
 * `sk_gbr` becomes `sk__gbr` and `sk.gbr` becomes `sk_dgbr`. A key that would pass Edge Config's 256-character limit
 * uses `_h` + the sha256 of the name instead (no escaped name contains `_h`, so the two forms cannot collide).
 */
export async function edgeConfigKeyPart(model: string, room = MAX_KEY_LENGTH): Promise<string> {
  const escaped = model.replace(/[_.]/g, (c) => (c === "_" ? "__" : "_d"));
  if (escaped.length <= room) return escaped;
  return `_h${await sha256Hex(model)}`;
}

/** The Edge Config item of a model's pointers: one item per model, so two models' writes never collide. */
export async function edgeConfigKeys(
  model: string,
  keyPrefix: string = EDGE_CONFIG_DEFAULTS.keyPrefix,
): Promise<{ pointers: string }> {
  const longest = `${keyPrefix}_pointers_`.length;
  const part = await edgeConfigKeyPart(model, MAX_KEY_LENGTH - longest);
  return { pointers: `${keyPrefix}_pointers_${part}` };
}

export type EdgeConfigItemOperation =
  | { operation: "upsert" | "create" | "update"; key: string; value: unknown }
  | { operation: "delete"; key: string };

/**
 * `PATCH {apiBase}/v1/edge-config/{id}/items[?teamId=]`: the Vercel REST API's one write of Edge Config items,
 * all-or-nothing. Rejects with the API's own error message.
 */
export async function patchEdgeConfigItems(
  target: EdgeConfigWriteTarget,
  items: EdgeConfigItemOperation[],
  options: { fetch?: typeof fetch; signal?: AbortSignal } = {},
): Promise<void> {
  const base = (target.apiBase ?? EDGE_CONFIG_DEFAULTS.apiBase).replace(/\/+$/, "");
  const url = new URL(`${base}/v1/edge-config/${encodeURIComponent(target.id)}/items`);
  if (target.teamId) url.searchParams.set("teamId", target.teamId);
  const response = await (options.fetch ?? fetch)(url, {
    method: "PATCH",
    headers: { authorization: `Bearer ${target.token}`, "content-type": "application/json" },
    body: JSON.stringify({ items }),
    signal: options.signal,
  });
  if (response.ok) {
    await response.body?.cancel();
    return;
  }
  const text = await response.text().catch(() => "");
  let message = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } };
    if (parsed.error?.message) message = parsed.error.message;
  } catch {
    // not JSON: keep the text
  }
  throw new EdgeConfigWriteError(response.status, message);
}

/** The Vercel API refused or failed a write; `status` tells a retryable outage (5xx) from a refusal (4xx). */
export class EdgeConfigWriteError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(`edgeml: the Vercel API answered ${status} to an Edge Config write: ${message}`);
    this.name = "EdgeConfigWriteError";
    this.status = status;
  }
}

/** The store's settings, defaults filled in, validated: a setting that cannot work fails when the store is built. */
function parseOptions(options: EdgeConfigPointerStoreOptions) {
  const parsed = OptionsSchema.safeParse({
    keyPrefix: EDGE_CONFIG_DEFAULTS.keyPrefix,
    cacheTtlMs: EDGE_CONFIG_DEFAULTS.cacheTtlMs,
    readTimeoutMs: EDGE_CONFIG_DEFAULTS.readTimeoutMs,
    writeTimeoutMs: EDGE_CONFIG_DEFAULTS.writeTimeoutMs,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    fetch: undefined,
    now: undefined,
    audit: undefined,
    warn: undefined,
  });
  if (!parsed.success) {
    throw new Error(
      `edgeml: invalid Edge Config pointer store options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}

/** A model's Edge Config item as pointers: none for a missing item, a 503 saying what to fix for an invalid one. */
function parseItem(model: string, value: unknown): ModelPointers {
  if (value === undefined || value === null) return {};
  const result = ModelPointersSchema.safeParse(value);
  if (!result.success) {
    throw new EdgeMLError(
      "registry_unavailable",
      `the Edge Config pointers of '${model}' are not valid (${result.error.issues[0]?.message ?? "bad shape"}); fix or delete the item in Edge Config`,
    );
  }
  return result.data;
}

/** Writes a model's item through the Vercel API; a refusal and an outage are told apart. */
async function writeItem(
  target: EdgeConfigWriteTarget,
  key: string,
  pointers: ModelPointers,
  options: { model: string; fetch: typeof fetch | undefined; timeoutMs: number },
): Promise<void> {
  try {
    await withTimeout(
      (signal) =>
        patchEdgeConfigItems(target, [{ operation: "upsert", key, value: pointers }], {
          fetch: options.fetch,
          signal,
        }),
      options.timeoutMs,
      "the Vercel API (Edge Config write)",
    );
  } catch (error) {
    if (error instanceof EdgeConfigWriteError && error.status < 500 && error.status !== 429) {
      // The API answered and refused (a token without write access, a deleted Edge Config): not an outage that
      // passes, a setting to fix; nothing was written.
      throw new StoreError(
        "Edge Config",
        "refused",
        `${error.message.replace(/^edgeml: /, "")}; nothing was changed: check that VERCEL_API_TOKEN (and VERCEL_TEAM_ID) may write the Edge Config EDGE_CONFIG_ID`,
        { cause: error },
      );
    }
    throw new StoreError(
      "Edge Config",
      "unavailable",
      `could not write the pointers of '${options.model}' to Edge Config (${describe(error)}); the change may not have taken effect: check the model's pointers and try again`,
      { cause: error },
    );
  }
}

/**
 * Version pointers in Vercel Edge Config: one item per model (`edgeConfigKeys`: `<prefix>_pointers_<model>`) holding
 * its ModelPointers, and nothing else, so the store stays within a Hobby plan's 8 KB for a few dozen models. The
 * audit log lives in the `audit` AuditLog (Upstash Redis in production).
 *
 * Reads go through `@vercel/edge-config` and are kept in process memory for `cacheTtlMs` (default 5 s). When Edge
 * Config cannot be reached, the last pointers this process read keep serving, however old: a promotion that cannot
 * be seen is better than an outage. A model this process never read while Edge Config is down fails with a 503.
 *
 * Writes go through the Vercel REST API (a PATCH of the model's one item) and update this process's cache, so its
 * next read sees them; other instances see them when their cache expires. An update reads the item fresh
 * (consistentRead) under a lock per model in this process, so two changes of one model here never lose each other.
 * Across instances Edge Config offers no compare-and-set: two instances changing the same model within the same
 * moment can still overwrite each other (docs/production-adapters.md says how to avoid it); two models never do.
 */
export function createEdgeConfigPointerStore(options: EdgeConfigPointerStoreOptions): PointerStore {
  const config = parseOptions(options);
  const now = options.now ?? Date.now;
  const audit = options.audit ?? createMemoryAuditLog();
  const warn = options.warn ?? consoleLogger.warn;
  // Any options object turns off the client's default week-long stale-if-error: staleness is decided here, where
  // it is visible and bounded to what this process itself read. No development SWR cache either: reads are fresh.
  const client = createClient(options.connectionString, {
    staleIfError: false,
    disableDevelopmentCache: true,
    cache: "no-store",
  });
  const locked = createKeyedLock();

  const unreachable = (error: unknown, what: string) =>
    new EdgeMLError(
      "model_unavailable",
      `Edge Config is unreachable and ${what} was never read by this instance (${describe(error)}); try again shortly`,
      { cause: error },
    );

  const fetchItem = (key: string, consistent = false): Promise<unknown> =>
    withTimeout(
      client.get(key, consistent ? { consistentRead: true } : undefined),
      config.readTimeoutMs,
      `Edge Config (read ${key})`,
    );

  // Policy: ttl (`cacheTtlMs`) with staleOnError: one read per item at a time (a burst of requests after expiry
  // costs Edge Config one call), and when Edge Config cannot be reached, the last pointers read keep serving. An
  // item that is not valid pointers is an answer, kept for the TTL like any other, and fails every read of it.
  const cache = createAsyncCache<
    string,
    { ok: true; pointers: ModelPointers } | { ok: false; error: unknown },
    string
  >({
    policy: { kind: "ttl", ttlMs: config.cacheTtlMs, staleOnError: true },
    now,
    load: async (key, model) => {
      const value = await fetchItem(key);
      try {
        return { ok: true, pointers: parseItem(model, value) };
      } catch (error) {
        return { ok: false, error };
      }
    },
  });

  /** The item, from memory while fresh; from Edge Config otherwise, falling back to the last value read. */
  const read = async (model: string): Promise<ModelPointers> => {
    const key = (await edgeConfigKeys(model, config.keyPrefix)).pointers;
    const item = await cache
      .get(key, model)
      .catch((error: unknown) => Promise.reject(unreachable(error, `the pointers of '${model}'`)));
    if (!item.ok) throw item.error;
    return item.pointers;
  };

  const update: PointerStore["update"] = (model, change) =>
    locked(model, async (): Promise<PointerChange> => {
      const target = config.write;
      if (!target) {
        throw new StoreError(
          "Edge Config",
          "read_only",
          "Edge Config pointers are read-only here: set EDGE_CONFIG_ID and VERCEL_API_TOKEN to promote, roll back or pin",
        );
      }
      const key = (await edgeConfigKeys(model, config.keyPrefix)).pointers;
      let current: ModelPointers;
      try {
        // consistentRead bypasses Edge Config's caches: the change applies to what is stored now.
        current = parseItem(model, await fetchItem(key, true));
      } catch (error) {
        if (error instanceof EdgeMLError) throw error;
        throw new StoreError(
          "Edge Config",
          "unavailable",
          `could not read the pointers of '${model}' from Edge Config (${describe(error)}); nothing was changed: try again shortly`,
          { cause: error },
        );
      }
      const next = await change(structuredClone(current));
      const result: PointerChange = {
        pointers: ModelPointersSchema.parse(next.pointers),
        entry: AuditEntrySchema.parse(next.entry),
      };
      await writeItem(target, key, result.pointers, {
        model,
        fetch: options.fetch,
        timeoutMs: config.writeTimeoutMs,
      });
      cache.set(key, { ok: true, pointers: result.pointers });
      // The change is in effect: a failure to record it is reported, not turned into a failed change that a client
      // would retry (and so apply twice).
      await audit
        .append(result.entry)
        .catch((error) =>
          warn(
            `the pointers of '${model}' changed, but the audit log (${audit.kind}) could not record it`,
            error,
          ),
        );
      return structuredClone(result);
    });

  return {
    kind: "edge-config",
    async get(model) {
      return frozenPointers(await read(model));
    },
    async history(model) {
      try {
        return await audit.history(model);
      } catch (error) {
        throw new EdgeMLError(
          "registry_unavailable",
          `the audit log (${audit.kind}) of '${model}' cannot be read (${describe(error)}); try again shortly`,
          { cause: error },
        );
      }
    },
    update,
    async set(model, pointers, entry) {
      await update(model, () => ({ pointers, entry }));
    },
  };
}

/** A failure as a client may read it: timeouts and HTTP statuses, never URLs (they carry the read token). */
function describe(error: unknown): string {
  if (error instanceof EdgeConfigWriteError) return `the Vercel API answered ${error.status}`;
  if (error instanceof Error && error.name === "StoreTimeoutError")
    return error.message.replace(/^edgeml: /, "");
  return "the request failed";
}
