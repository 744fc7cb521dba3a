import type { Tensor } from "onnxruntime-web/wasm";
import type { AppConfig } from "../config.js";
import { EdgeMLError } from "../errors.js";
import { type InferenceEngine, type ModelSignature, withDeadline } from "../inference/engine.js";
import { describeOnnx } from "../inference/onnx-model.js";
import { feedsFor } from "../inference/request.js";
import { flatten, fromOrtTensor } from "../inference/tensors.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import type { AuditEntry, ModelPointers, PointerStore } from "../storage/pointers.js";
import {
  type Golden,
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

export interface ModelSummary {
  name: string;
  versions: string[];
  pointers: ModelPointers;
  serving: { version: string; via: Resolution } | null;
}

export interface InferResult {
  outputs: Record<string, Tensor>;
}

export interface RegistryDeps {
  artifacts: ArtifactStore;
  pointers: PointerStore;
  engine: InferenceEngine;
  config: Pick<AppConfig, "registryListTtlMs" | "bestMetric" | "bestMetricHigherIsBetter" | "inferTimeoutMs">;
  now?: () => Date;
}

function storeUnavailable(error: unknown): EdgeMLError {
  if (error instanceof EdgeMLError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new EdgeMLError(
    "model_unavailable",
    `the model store is unreachable (${reason}); try again shortly`,
    {
      cause: error,
    },
  );
}

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
    const tensor = outputs[want.name];
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
 */
export function createRegistry(deps: RegistryDeps) {
  const { artifacts, pointers, engine, config } = deps;
  const now = deps.now ?? (() => new Date());
  const metadataCache = new Map<string, VersionMetadata>();
  const verified = new Map<string, Promise<void>>();
  let listing: { at: number; models: Map<string, string[]> } | undefined;

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
    })().finally(() => {
      if (refreshing?.models === models) refreshing = undefined;
    });
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
  };

  const versionsOf = async (name: string): Promise<string[]> => {
    const versions = (await listAll()).get(name);
    if (versions && versions.length > 0) return versions;
    // The listing may be stale (another instance registered it): ask the store before saying 404.
    const fresh = (
      await artifacts.listVersions(name).catch((error) => Promise.reject(storeUnavailable(error)))
    ).sort(byVersion);
    if (fresh.length === 0) {
      throw new EdgeMLError(
        "model_not_found",
        `no model named '${name}'; GET /api/ml/models lists the registered ones`,
      );
    }
    invalidate();
    return fresh;
  };

  const metadata = async (name: string, version: string): Promise<VersionMetadata> => {
    const key = `${name}@${version}`;
    const cached = metadataCache.get(key);
    if (cached) return cached;
    const text = await artifacts
      .getMetadata(name, version)
      .catch((error) => Promise.reject(storeUnavailable(error)));
    if (text === null) {
      await versionsOf(name);
      throw new EdgeMLError("version_not_found", `model '${name}' has no version ${version}`);
    }
    const parsed = VersionMetadataSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new EdgeMLError("model_unavailable", `metadata of ${key} is not valid: ${parsed.error.message}`);
    }
    metadataCache.set(key, parsed.data);
    return parsed.data;
  };

  const best = async (name: string, versions: string[]): Promise<Resolved> => {
    const metas = await Promise.all(versions.map((v) => metadata(name, v)));
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
    if (!latest) throw new EdgeMLError("no_model", `model '${name}' has no versions`);
    return { meta: latest, via: "latest" };
  };

  const resolve = async (name: string, requested?: string): Promise<Resolved> => {
    const versions = await versionsOf(name);
    if (requested !== undefined) return { meta: await metadata(name, requested), via: "requested" };
    const p = await pointers.get(name);
    // A pointer to a version this store does not have is skipped rather than failing every request.
    if (p.pinned && versions.includes(p.pinned))
      return { meta: await metadata(name, p.pinned), via: "pinned" };
    if (p.champion && versions.includes(p.champion))
      return { meta: await metadata(name, p.champion), via: "champion" };
    return best(name, versions);
  };

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

  const history = (name: string) => pointers.history(name);

  const changePointers = async (
    name: string,
    next: ModelPointers,
    entry: Omit<AuditEntry, "at" | "model">,
  ): Promise<AuditEntry> => {
    const full: AuditEntry = { at: now().toISOString(), model: name, ...entry };
    await pointers.set(name, next, full);
    return full;
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

  return {
    resolve,
    metadata,
    prepare,
    history,

    async register(name: string, bytes: Uint8Array, input: RegistrationInput = {}): Promise<VersionMetadata> {
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
        const existing = await artifacts.listVersions(name);
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
          throw error;
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

    /** Names of the registered models (from the cached listing). */
    async listModelNames(): Promise<string[]> {
      return [...(await listAll()).keys()].sort();
    },

    async listModels(): Promise<ModelSummary[]> {
      const all = await listAll();
      return Promise.all(
        [...all.keys()].sort().map(async (name) => {
          const summary = await this.getModel(name);
          return summary;
        }),
      );
    },

    async getModel(name: string): Promise<ModelSummary> {
      const versions = await versionsOf(name);
      const p = await pointers.get(name);
      const serving = await resolve(name).then(
        (r) => ({ version: r.meta.version, via: r.via }),
        () => null,
      );
      return { name, versions, pointers: p, serving };
    },

    async versions(name: string): Promise<VersionMetadata[]> {
      const versions = await versionsOf(name);
      return Promise.all(versions.map((v) => metadata(name, v)));
    },

    /** Runs a version, verifying it first if needed; the deadline covers loading, verification and the run. */
    infer(meta: VersionMetadata, feeds: Record<string, Tensor>, outputs: string[], timeoutMs?: number) {
      const key = sessionKey(meta);
      const deadline = timeoutMs ?? config.inferTimeoutMs;
      const work = prepare(meta).then(() =>
        engine.run({ key, load: loader(meta), feeds, outputs, timeoutMs: deadline }),
      );
      return withDeadline(work, deadline, `prediction with ${key}`);
    },

    async promote(name: string, version: string, reason?: string): Promise<AuditEntry> {
      await metadata(name, version);
      const current = await pointers.get(name);
      return changePointers(
        name,
        { ...current, champion: version },
        { action: "promote", from: current.champion ?? null, to: version, reason },
      );
    },

    async rollback(name: string, options: { to?: string; reason?: string } = {}): Promise<AuditEntry> {
      await versionsOf(name);
      const current = await pointers.get(name);
      if (!current.champion) {
        throw new EdgeMLError("conflict", `'${name}' has no champion to roll back; promote a version first`);
      }
      let target = options.to;
      if (target !== undefined) await metadata(name, target);
      else {
        const stack = championStack(await history(name));
        target = stack.at(-2);
        if (!target) {
          throw new EdgeMLError(
            "conflict",
            `'${name}' has no earlier champion to roll back to; name one with {"to": "<version>"}`,
          );
        }
      }
      return changePointers(
        name,
        { ...current, champion: target },
        { action: "rollback", from: current.champion, to: target, reason: options.reason },
      );
    },

    async pin(name: string, version: string | null, reason?: string): Promise<AuditEntry> {
      if (version !== null) await metadata(name, version);
      else await versionsOf(name);
      const current = await pointers.get(name);
      const { pinned: _previous, ...rest } = current;
      return changePointers(name, version === null ? rest : { ...current, pinned: version }, {
        action: version === null ? "unpin" : "pin",
        from: current.pinned ?? null,
        to: version,
        reason,
      });
    },
  };
}

export type Registry = ReturnType<typeof createRegistry>;
