import { LRUCache } from "lru-cache";
import type { Tensor } from "onnxruntime-web/wasm";
import type { AppConfig } from "../config.js";
import { EdgeMLError } from "../errors.js";
import { type InferenceEngine, type ModelSignature, withDeadline } from "../inference/engine.js";
import { describeOnnx } from "../inference/onnx-model.js";
import { feedsFor } from "../inference/request.js";
import { flatten, fromOrtTensor } from "../inference/tensors.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import type { AuditEntry, ModelPointers, PointerStore } from "../storage/pointers.js";
import { StoreTimeoutError } from "../storage/timeout.js";
import {
  type Golden,
  ModelNameSchema,
  type RegistrationInput,
  RegistrationInputSchema,
  type VersionMetadata,
  VersionMetadataSchema,
} from "./metadata.js";

/** How a version was chosen, in the order resolution tries them. */
export type Resolution = "requested" | "pinned" | "champion" | "best" | "latest";

export interface Resolved {
  meta: VersionMetadata;
  via: Resolution;
}

/** A version whose metadata cannot be read (truncated, not JSON, another model's): skipped by resolution. */
export interface UnreadableVersion {
  version: string;
  reason: string;
}

export interface ModelSummary {
  name: string;
  versions: string[];
  pointers: ModelPointers;
  serving: { version: string; via: Resolution } | null;
  /** Versions listed by the store whose metadata cannot be read: they never serve until repaired. */
  unreadable: UnreadableVersion[];
}

export interface InferResult {
  outputs: Record<string, Tensor>;
}

/**
 * When a request must have answered: an instant and a signal aborted at it. Started when the request arrives, so
 * the deadline covers version resolution (store reads) as well as loading and running the model.
 */
export interface Deadline {
  /** Epoch ms. */
  readonly at: number;
  /** The whole budget, for messages. */
  readonly ms: number;
  readonly signal: AbortSignal;
}

/** A deadline `ms` from now. */
export function deadlineIn(ms: number): Deadline {
  return { at: Date.now() + ms, ms, signal: AbortSignal.timeout(ms) };
}

const deadlinePassed = (what: string, deadline: Deadline) =>
  new EdgeMLError("prediction_timeout", `${what} did not finish within ${deadline.ms} ms; try again`);

/**
 * Settles with `work`, or rejects with a 504 `prediction_timeout` when the deadline's signal aborts first. The work
 * is left to finish on its own (store calls have timeouts of their own); its late failure is observed, not leaked.
 */
export function withinDeadline<T>(
  work: Promise<T>,
  deadline: Deadline | undefined,
  what: string,
): Promise<T> {
  if (!deadline) return work;
  const { signal } = deadline;
  work.catch(() => {});
  const timeout = () => deadlinePassed(what, deadline);
  if (signal.aborted) return Promise.reject(timeout());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timeout());
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

export interface RegistryDeps {
  artifacts: ArtifactStore;
  pointers: PointerStore;
  engine: InferenceEngine;
  config: Pick<AppConfig, "registryListTtlMs" | "bestMetric" | "bestMetricHigherIsBetter" | "inferTimeoutMs">;
  now?: () => Date;
}

/** What a store failure may tell a client: how it failed, never where (paths), nor what was sent (commands, URLs). */
function describeFailure(error: unknown): string {
  if (error instanceof StoreTimeoutError) return error.message.replace(/^edgeml: /, "");
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return `the file system answered ${code}`;
  return "it answered an error";
}

function storeUnavailable(error: unknown, store = "model store"): EdgeMLError {
  if (error instanceof EdgeMLError) return error;
  return new EdgeMLError(
    "model_unavailable",
    `the ${store} is unreachable (${describeFailure(error)}); try again shortly`,
    {
      cause: error,
    },
  );
}

function pointersUnavailable(error: unknown): EdgeMLError {
  if (error instanceof EdgeMLError) return error;
  return new EdgeMLError(
    "registry_unavailable",
    `the version pointers cannot be read or written (${describeFailure(error)}); try again shortly`,
    { cause: error },
  );
}

/** A version's metadata that cannot be read: not an outage (retrying will not help), so resolution skips it. */
class UnreadableVersionError extends EdgeMLError {
  readonly reason: string;
  constructor(key: string, reason: string) {
    super(
      "model_unavailable",
      `${key} cannot be read (${reason}); it will not serve: re-register the model, or promote another version`,
    );
    this.reason = reason;
  }
}

/** Negative lookups remembered at most: a scan of random names must not grow memory without bound. */
const MAX_NEGATIVE_LOOKUPS = 10_000;

/** How many times a registration re-reads the versions after losing a race for a version number. */
const PUBLISH_ATTEMPTS = 20;

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const sessionKey = (meta: Pick<VersionMetadata, "name" | "version">) => `${meta.name}@${meta.version}`;

function byVersion(a: string, b: string): number {
  return Number(a) - Number(b);
}

/** Compares golden outputs element by element; returns a description of the first mismatch, or null. */
function goldenMismatch(golden: Golden, caseIndex: number, outputs: Record<string, Tensor>): string | null {
  const expected = golden.cases[caseIndex];
  if (!expected) return null;
  for (const want of expected.outputs) {
    // Names come from the registration's golden rows: an own key only, never an Object.prototype member.
    const tensor = Object.hasOwn(outputs, want.name) ? outputs[want.name] : undefined;
    if (!tensor) return `case ${caseIndex}: the model has no output '${want.name}'`;
    const got = fromOrtTensor(want.name, tensor).data;
    const wanted = flatten(want.data);
    if (got.length !== wanted.length) {
      return `case ${caseIndex}: output '${want.name}' has ${got.length} elements, golden rows have ${wanted.length}`;
    }
    for (let i = 0; i < got.length; i++) {
      const a = got[i];
      const b = wanted[i];
      const same =
        typeof a === "number" && typeof b === "number"
          ? Math.abs(a - b) <= golden.atol || Object.is(a, b)
          : a === b;
      if (!same) {
        return `case ${caseIndex}: output '${want.name}'[${i}] is ${String(a)}, golden row says ${String(b)} (atol ${golden.atol})`;
      }
    }
  }
  return null;
}
/**
 * The model registry: registers versions after validating them, resolves which version serves, verifies a version
 * (sha256 and golden rows) before it first serves in this process, and moves the champion and pin pointers.
 *
 * Unauthenticated requests cost the store nothing per request: the listing is cached (stale-while-revalidate),
 * metadata is cached once read (versions are immutable), and a name or version the store does not have is
 * remembered as missing for `registryListTtlMs` (at most MAX_NEGATIVE_LOOKUPS of them; forgotten at once when
 * this process registers a version).
 */
export function createRegistry(deps: RegistryDeps) {
  const { artifacts, pointers, engine, config } = deps;
  const now = deps.now ?? (() => new Date());
  const metadataCache = new Map<string, VersionMetadata>();
  const metadataReads = new Map<string, Promise<VersionMetadata>>();
  const verified = new Map<string, Promise<void>>();
  const negativeTtlMs = config.registryListTtlMs;
  /** `name` or `name@version` that the store said it does not have, and unreadable versions with their reason. */
  const missing =
    negativeTtlMs > 0
      ? new LRUCache<string, true>({ max: MAX_NEGATIVE_LOOKUPS, ttl: negativeTtlMs })
      : undefined;
  const unreadable =
    negativeTtlMs > 0
      ? new LRUCache<string, string>({ max: MAX_NEGATIVE_LOOKUPS, ttl: negativeTtlMs })
      : undefined;
  let listing: { at: number; models: Map<string, string[]> } | undefined;
  /** The last listing refresh's failure, until one succeeds: readiness reports it. */
  let listingError: unknown;

  /** Bumped by every local write: a listing read before it is neither stored nor handed out after it. */
  let generation = 0;
  let refreshing: { generation: number; models: Promise<Map<string, string[]>> } | undefined;
  const refresh = (): Promise<Map<string, string[]>> => {
    if (refreshing?.generation === generation) return refreshing.models;
    const startedAt = generation;
    const models = (async () => {
      const names = await artifacts.listModels();
      const entries = await Promise.all(
        names.map(async (name) => [name, (await artifacts.listVersions(name)).sort(byVersion)] as const),
      );
      const fresh = new Map(entries);
      if (startedAt === generation) listing = { at: Date.now(), models: fresh };
      return fresh;
    })().then(
      (fresh) => {
        listingError = undefined;
        return fresh;
      },
      (error: unknown) => {
        listingError = error;
        throw error;
      },
    );
    models
      .finally(() => {
        if (refreshing?.models === models) refreshing = undefined;
      })
      .catch(() => {});
    refreshing = { generation: startedAt, models };
    return models;
  };

  /**
   * The registry's listing, stale-while-revalidate: an expired listing answers at once while one refresh runs in
   * the background, so no request waits on the store's list call (a slow Blob list would otherwise stall a request
   * every few seconds). A failed refresh keeps the last listing: versions are immutable, so it is still true, only
   * perhaps incomplete. With no listing at all, the request waits, and an outage shows.
   */
  const listAll = async (): Promise<Map<string, string[]>> => {
    if (listing) {
      if (Date.now() - listing.at >= config.registryListTtlMs) refresh().catch(() => {});
      return listing.models;
    }
    try {
      return await refresh();
    } catch (error) {
      throw storeUnavailable(error);
    }
  };
  const invalidate = () => {
    generation += 1;
    listing = undefined;
    missing?.clear();
  };

  const modelNotFound = (name: string) =>
    new EdgeMLError(
      "model_not_found",
      `no model named '${name}'; GET /api/ml/models lists the registered ones`,
    );

  const listingFresh = () => listing !== undefined && Date.now() - listing.at < config.registryListTtlMs;

  const versionsOf = async (name: string): Promise<string[]> => {
    const versions = (await listAll()).get(name);
    if (versions && versions.length > 0) return versions;
    // A listing younger than its TTL is as good as a negative lookup: a scan of random names costs the store
    // nothing. A model another instance registered shows here when the listing next refreshes.
    if (listingFresh() || missing?.has(name)) throw modelNotFound(name);
    // The listing may be stale (another instance registered it): ask the store before saying 404.
    const fresh = (
      await artifacts.listVersions(name).catch((error) => Promise.reject(storeUnavailable(error)))
    ).sort(byVersion);
    if (fresh.length === 0) {
      missing?.set(name, true);
      throw modelNotFound(name);
    }
    invalidate();
    return fresh;
  };

  const readMetadata = async (name: string, version: string): Promise<VersionMetadata> => {
    const key = `${name}@${version}`;
    const text = await artifacts
      .getMetadata(name, version)
      .catch((error) => Promise.reject(storeUnavailable(error)));
    if (text === null) {
      missing?.set(key, true);
      throw new EdgeMLError("version_not_found", `model '${name}' has no version ${version}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UnreadableVersionError(
        key,
        "its metadata.json is not valid JSON; perhaps a write was cut short",
      );
    }
    const parsed = VersionMetadataSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new UnreadableVersionError(
        key,
        `its metadata.json is not valid: ${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "bad shape"}`,
      );
    }
    if (parsed.data.name !== name || parsed.data.version !== version) {
      throw new UnreadableVersionError(
        key,
        `its metadata.json describes ${parsed.data.name}@${parsed.data.version}; a copied folder?`,
      );
    }
    metadataCache.set(key, parsed.data);
    return parsed.data;
  };

  const metadata = async (name: string, version: string): Promise<VersionMetadata> => {
    const key = `${name}@${version}`;
    const cached = metadataCache.get(key);
    if (cached) return cached;
    const listed = await versionsOf(name);
    if (!listed.includes(version) && (listingFresh() || missing?.has(key))) {
      throw new EdgeMLError("version_not_found", `model '${name}' has no version ${version}`);
    }
    const known = unreadable?.get(key);
    if (known !== undefined) throw new UnreadableVersionError(key, known);
    // One read per version at a time: a burst of requests for a version not yet cached costs the store one read.
    let pending = metadataReads.get(key);
    if (!pending) {
      pending = readMetadata(name, version);
      metadataReads.set(key, pending);
      pending
        .catch((error: unknown) => {
          if (error instanceof UnreadableVersionError) unreadable?.set(key, error.reason);
        })
        .finally(() => metadataReads.delete(key));
    }
    return pending;
  };

  /** The version's metadata, or null when it is unreadable (skipped); store outages still throw. */
  const readable = (name: string, version: string): Promise<VersionMetadata | null> =>
    metadata(name, version).catch((error: unknown) => {
      if (error instanceof UnreadableVersionError) return null;
      throw error;
    });

  /** Every version's metadata, the unreadable ones reported apart. */
  const survey = async (name: string, versions: string[]) => {
    const readableMetas: VersionMetadata[] = [];
    const broken: UnreadableVersion[] = [];
    const results = await Promise.all(
      versions.map((v) =>
        metadata(name, v).then(
          (meta) => ({ meta }),
          (error: unknown) => {
            if (error instanceof UnreadableVersionError) return { version: v, reason: error.reason };
            throw error;
          },
        ),
      ),
    );
    for (const result of results) {
      if ("meta" in result) readableMetas.push(result.meta);
      else broken.push(result);
    }
    return { metas: readableMetas, unreadable: broken };
  };

  const best = async (name: string, versions: string[]): Promise<Resolved> => {
    const { metas, unreadable: broken } = await survey(name, versions);
    const metric = config.bestMetric;
    const sign = config.bestMetricHigherIsBetter ? 1 : -1;
    let winner: VersionMetadata | undefined;
    for (const meta of metas) {
      const value = meta.metrics[metric];
      if (value === undefined || !Number.isFinite(value)) continue;
      const current = winner?.metrics[metric];
      // Ties go to the newer version: metas are in ascending version order.
      if (current === undefined || sign * value >= sign * current) winner = meta;
    }
    if (winner) return { meta: winner, via: "best" };
    const latest = metas.at(-1);
    if (latest) return { meta: latest, via: "latest" };
    if (broken.length > 0) {
      throw new EdgeMLError(
        "model_unavailable",
        `no version of '${name}' can be read (${broken.map((b) => `${b.version}: ${b.reason}`).join("; ")}); re-register the model`,
      );
    }
    throw new EdgeMLError("no_model", `model '${name}' has no versions`);
  };

  const readPointers = (name: string) =>
    pointers.get(name).catch((error: unknown) => Promise.reject(pointersUnavailable(error)));

  const resolveNow = async (name: string, requested?: string): Promise<Resolved> => {
    const versions = await versionsOf(name);
    if (requested !== undefined) return { meta: await metadata(name, requested), via: "requested" };
    const p = await readPointers(name);
    // A pointer to a version this store does not have, or cannot read, is skipped rather than failing every request.
    if (p.pinned && versions.includes(p.pinned)) {
      const meta = await readable(name, p.pinned);
      if (meta) return { meta, via: "pinned" };
    }
    if (p.champion && versions.includes(p.champion)) {
      const meta = await readable(name, p.champion);
      if (meta) return { meta, via: "champion" };
    }
    return best(name, versions);
  };

  /** Which version serves; with a deadline, a stalled store read answers 504 when it passes. */
  const resolve = (name: string, requested?: string, deadline?: Deadline): Promise<Resolved> =>
    withinDeadline(resolveNow(name, requested), deadline, `resolving the version of '${name}'`);

  const loader = (meta: VersionMetadata) => async (): Promise<Uint8Array> => {
    const bytes = await artifacts
      .getModel(meta.name, meta.version)
      .catch((error) => Promise.reject(storeUnavailable(error)));
    if (!bytes)
      throw new EdgeMLError(
        "model_unavailable",
        `the bytes of ${sessionKey(meta)} are missing from the store`,
      );
    const digest = await sha256Hex(bytes);
    if (digest !== meta.sha256) {
      throw new EdgeMLError(
        "model_unavailable",
        `${sessionKey(meta)} failed its integrity check (sha256 ${digest} ≠ ${meta.sha256}); it will not serve. Re-register the model or promote another version`,
      );
    }
    return bytes;
  };

  const runGolden = async (
    key: string,
    load: () => Promise<Uint8Array>,
    signature: ModelSignature,
    golden: Golden,
  ): Promise<string | null> => {
    for (let i = 0; i < golden.cases.length; i++) {
      const testCase = golden.cases[i];
      if (!testCase) continue;
      const feeds = feedsFor(signature, testCase.inputs);
      const outputs = await engine.run({
        key,
        load,
        feeds,
        outputs: testCase.outputs.map((o) => o.name),
        timeoutMs: config.inferTimeoutMs,
      });
      const mismatch = goldenMismatch(golden, i, outputs);
      if (mismatch) return mismatch;
    }
    return null;
  };

  /** Loads the version's session and checks its golden rows, once per process. */
  const prepare = (meta: VersionMetadata): Promise<void> => {
    const key = sessionKey(meta);
    let pending = verified.get(key);
    if (!pending) {
      pending = (async () => {
        const load = loader(meta);
        await engine.signature(key, load);
        if (!meta.golden) return;
        const mismatch = await runGolden(key, load, meta.signature, meta.golden);
        if (mismatch) {
          engine.evict(key);
          throw new EdgeMLError(
            "model_unavailable",
            `${key} no longer reproduces its golden rows (${mismatch}); it will not serve. Promote another version`,
          );
        }
      })();
      verified.set(key, pending);
      // A failure is not cached: a transient store error must not disable a version for the life of the process.
      pending.catch(() => verified.delete(key));
    }
    return pending;
  };

  const history = (name: string) =>
    pointers.history(name).catch((error: unknown) => Promise.reject(pointersUnavailable(error)));

  /**
   * Moves a model's pointers: `decide` sees the pointers as stored now, under the store's lock for the model, so
   * two changes at once (a promote and a pin) both land, one after the other, and neither is lost.
   */
  const changePointers = async (
    name: string,
    decide: (
      current: ModelPointers,
    ) => Promise<{ next: ModelPointers; entry: Omit<AuditEntry, "at" | "model"> }>,
  ): Promise<AuditEntry> => {
    try {
      const { entry } = await pointers.update(name, async (current) => {
        const { next, entry } = await decide(current);
        return { pointers: next, entry: { at: now().toISOString(), model: name, ...entry } };
      });
      return entry;
    } catch (error) {
      throw pointersUnavailable(error);
    }
  };

  /** The champions in effect over time, replayed from the audit log; rollback steps back through it. */
  const championStack = (log: AuditEntry[]): string[] => {
    const stack: string[] = [];
    for (const entry of log) {
      if (entry.action === "promote" && entry.to) stack.push(entry.to);
      if (entry.action === "rollback" && entry.to) {
        const at = stack.lastIndexOf(entry.to);
        if (at >= 0) stack.length = at + 1;
        else stack.splice(0, stack.length, entry.to);
      }
    }
    return stack;
  };

  const summary = async (name: string): Promise<ModelSummary> => {
    const versions = await versionsOf(name);
    const [p, surveyed] = await Promise.all([readPointers(name), survey(name, versions)]);
    const serving = await resolveNow(name).then(
      (r) => ({ version: r.meta.version, via: r.via }),
      () => null,
    );
    return { name, versions, pointers: p, serving, unreadable: surveyed.unreadable };
  };

  return {
    resolve,
    metadata,
    prepare,
    history,

    /**
     * Whether the model store answers, from the cached listing: a readiness probe costs the store at most one list
     * call per `registryListTtlMs`, however often it is asked. Not ready while the last refresh failed.
     */
    async ready(): Promise<boolean> {
      try {
        await listAll();
      } catch {
        return false;
      }
      return listingError === undefined;
    },

    async register(name: string, bytes: Uint8Array, input: RegistrationInput = {}): Promise<VersionMetadata> {
      const validName = ModelNameSchema.safeParse(name);
      if (!validName.success) {
        throw new EdgeMLError("invalid_request", validName.error.issues[0]?.message ?? "invalid model name", {
          details: validName.error.issues,
        });
      }
      const extra = RegistrationInputSchema.parse(input);
      const onnx = describeOnnx(bytes);
      const sha256 = await sha256Hex(bytes);
      // The candidate gets a session of its own, dropped once validated: it serves only after it is published.
      const key = `registration:${sha256}:${crypto.randomUUID()}`;
      const load = async () => bytes;
      let signature: ModelSignature;
      try {
        signature = await engine.signature(key, load);
        const mismatch = extra.golden && (await runGolden(key, load, signature, extra.golden));
        if (mismatch) {
          throw new EdgeMLError(
            "golden_mismatch",
            `the model does not reproduce its golden rows: ${mismatch}`,
            {
              details: { mismatch },
            },
          );
        }
      } finally {
        engine.evict(key);
      }
      for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
        const existing = await artifacts
          .listVersions(name)
          .catch((error) => Promise.reject(storeUnavailable(error)));
        const version = String(existing.reduce((max, v) => Math.max(max, Number(v)), 0) + 1);
        const meta: VersionMetadata = VersionMetadataSchema.parse({
          ...extra,
          name,
          version,
          created_at: now().toISOString(),
          sha256,
          size_bytes: bytes.byteLength,
          platform: "onnxruntime_onnx",
          signature,
          producer: onnx.producer,
          onnx: { ir_version: onnx.irVersion, opsets: onnx.opsets },
        });
        try {
          await artifacts.publish(name, version, {
            model: bytes,
            metadata: `${JSON.stringify(meta, null, 2)}\n`,
          });
        } catch (error) {
          if (error instanceof EdgeMLError && error.code === "conflict") continue;
          throw storeUnavailable(error);
        }
        invalidate();
        metadataCache.set(sessionKey(meta), meta);
        return meta;
      }
      throw new EdgeMLError(
        "conflict",
        `could not claim a version number for '${name}' under contention; try again`,
      );
    },

    /** A model's version numbers, ascending, from the cached listing: no metadata read (public metadata route). */
    versionNames: versionsOf,

    /** Names of the registered models (from the cached listing). */
    async listModelNames(): Promise<string[]> {
      return [...(await listAll()).keys()].sort();
    },

    async listModels(): Promise<ModelSummary[]> {
      const all = await listAll();
      return Promise.all([...all.keys()].sort().map((name) => summary(name)));
    },

    getModel: summary,

    /** The metadata of every readable version (`getModel` reports the unreadable ones). */
    async versions(name: string): Promise<VersionMetadata[]> {
      return (await survey(name, await versionsOf(name))).metas;
    },

    /**
     * Runs a version, verifying it first if needed. The deadline (a request's, started before resolution; or a
     * number of ms from now) covers loading, verification and the run.
     */
    infer(
      meta: VersionMetadata,
      feeds: Record<string, Tensor>,
      outputs: string[],
      deadline?: Deadline | number,
    ) {
      const key = sessionKey(meta);
      const timeoutMs =
        typeof deadline === "number"
          ? deadline
          : deadline
            ? Math.max(1, deadline.at - Date.now())
            : config.inferTimeoutMs;
      const work = prepare(meta).then(() =>
        engine.run({ key, load: loader(meta), feeds, outputs, timeoutMs }),
      );
      const what = `prediction with ${key}`;
      const bounded = withDeadline(work, timeoutMs, what);
      if (typeof deadline !== "object") return bounded;
      // The engine's own timer (the remaining time) and the request's signal end at the same instant: whichever
      // fires first, the client reads one message, with the request's whole budget.
      return withinDeadline(bounded, deadline, what).catch((error: unknown) => {
        if (error instanceof EdgeMLError && error.code === "prediction_timeout")
          throw deadlinePassed(what, deadline);
        throw error;
      });
    },

    async promote(name: string, version: string, reason?: string): Promise<AuditEntry> {
      await metadata(name, version);
      return changePointers(name, async (current) => ({
        next: { ...current, champion: version },
        entry: { action: "promote", from: current.champion ?? null, to: version, reason },
      }));
    },

    async rollback(name: string, options: { to?: string; reason?: string } = {}): Promise<AuditEntry> {
      await versionsOf(name);
      if (options.to !== undefined) await metadata(name, options.to);
      return changePointers(name, async (current) => {
        if (!current.champion) {
          throw new EdgeMLError(
            "conflict",
            `'${name}' has no champion to roll back; promote a version first`,
          );
        }
        let target = options.to;
        if (target === undefined) {
          target = championStack(await history(name)).at(-2);
          if (!target) {
            throw new EdgeMLError(
              "conflict",
              `'${name}' has no earlier champion to roll back to; name one with {"to": "<version>"}`,
            );
          }
        }
        return {
          next: { ...current, champion: target },
          entry: { action: "rollback", from: current.champion, to: target, reason: options.reason },
        };
      });
    },

    async pin(name: string, version: string | null, reason?: string): Promise<AuditEntry> {
      if (version !== null) await metadata(name, version);
      else await versionsOf(name);
      return changePointers(name, async (current) => {
        const { pinned: _previous, ...rest } = current;
        return {
          next: version === null ? rest : { ...current, pinned: version },
          entry: {
            action: version === null ? "unpin" : "pin",
            from: current.pinned ?? null,
            to: version,
            reason,
          },
        };
      });
    },
  };
}

export type Registry = ReturnType<typeof createRegistry>;
