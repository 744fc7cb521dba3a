import type { Tensor } from "onnxruntime-web/wasm";
import type { AppConfig } from "../config.js";
import { EdgeMLError } from "../errors.js";
import type { InferenceEngine } from "../inference/engine.js";
import { createSelection, type SelectionOutcome, type SelectOptions } from "../selection/select.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import type { AuditEntry, ModelPointers, PointerStore, Rollout } from "../storage/pointers.js";
import { type Deadline, deadlineIn, deadlinePassed, engineBound, withinDeadline } from "./deadline.js";
import { pointersUnavailable } from "./failures.js";
import { createListing } from "./listing.js";
import type { RegistrationInput, VersionMetadata } from "./metadata.js";
import { createMetadataReads, sessionKey, type UnreadableVersion } from "./metadata-reads.js";
import { createPointerOps } from "./pointer-ops.js";
import { createRegistering, type Registration } from "./registering.js";
import { type Resolution, resolveVersion } from "./resolution.js";
import {
  type ArchivedListing,
  archivedList,
  archiveOf,
  everyVersionArchived,
  versionArchived,
} from "./retention.js";
import { createVerification } from "./verification.js";

export { type Deadline, deadlineIn, withinDeadline } from "./deadline.js";
export { sessionKey, type UnreadableVersion } from "./metadata-reads.js";
export type { Registration } from "./registering.js";
export type { Resolution } from "./resolution.js";

export interface Resolved {
  meta: VersionMetadata;
  via: Resolution;
  /** The model's running rollout, as the pointers read for this resolution hold it (shadow runs beside the answer). */
  rollout?: Rollout;
}

export interface ModelSummary {
  name: string;
  versions: string[];
  pointers: ModelPointers;
  serving: { version: string; via: Resolution } | null;
  /** Versions listed by the store whose metadata cannot be read: they never serve until repaired. */
  unreadable: UnreadableVersion[];
  /** Versions retention archived, with when and why: listed, never served until restored. */
  archived: ArchivedListing[];
}

export interface InferResult {
  outputs: Record<string, Tensor>;
}

/**
 * The model registry: registers versions after validating them, resolves which version serves, verifies a version
 * (sha256 and golden rows) before it first serves in this process, and moves the champion and pin pointers.
 */
export interface Registry {
  /** Which version serves (to `clientKey`: a canary may choose it); a stalled store read answers 504 at the deadline. */
  resolve(name: string, requested?: string, deadline?: Deadline, clientKey?: string): Promise<Resolved>;
  metadata(name: string, version: string): Promise<VersionMetadata>;
  /** Loads the version's session and checks its sha256 and golden rows, once per process. */
  prepare(meta: VersionMetadata): Promise<void>;
  history(name: string): Promise<AuditEntry[]>;
  /**
   * Whether the model store answers, from the cached listing: a readiness probe costs the store at most one list
   * call per `registryListTtlMs`, however often it is asked. Not ready while the last refresh failed.
   */
  ready(): Promise<boolean>;
  /** Registers a version, or answers the one it equals (`duplicate_of`); then applies retention (registering.ts). */
  register(name: string, bytes: Uint8Array, input?: RegistrationInput): Promise<Registration>;
  /** A model's version numbers, ascending, from the cached listing: no metadata read (public metadata route). */
  versionNames(name: string): Promise<string[]>;
  /** Names of the registered models (from the cached listing). */
  listModelNames(): Promise<string[]>;
  listModels(): Promise<ModelSummary[]>;
  getModel(name: string): Promise<ModelSummary>;
  /** The metadata of every readable version (`getModel` reports the unreadable ones). */
  versions(name: string): Promise<VersionMetadata[]>;
  /**
   * Runs a version, verifying it first if needed. The deadline (a request's, started before resolution; or a
   * number of ms from now) covers loading, verification and the run.
   */
  infer(
    meta: VersionMetadata,
    feeds: Record<string, Tensor>,
    outputs: string[],
    deadline?: Deadline | number,
  ): Promise<Record<string, Tensor>>;
  promote(name: string, version: string, reason?: string): Promise<AuditEntry>;
  /** Runs the selection policy and writes its champion (src/selection/select.ts): after training, or `promote --auto`. */
  select(name: string, options?: SelectOptions): Promise<SelectionOutcome>;
  rollback(name: string, options?: { to?: string; reason?: string }): Promise<AuditEntry>;
  pin(name: string, version: string | null, reason?: string): Promise<AuditEntry>;
  /** Brings an archived version back; retention keeps it from then on. */
  restore(name: string, version: string, reason?: string): Promise<AuditEntry>;
  /**
   * Forgets the cached listing, so the next read lists the store: for a process told that another registered a
   * version (`npm start`'s workers, src/runtime/node/cluster.ts). Absent on wrappers that keep no listing.
   */
  refreshListing?(): void;
}

export interface RegistryDeps {
  artifacts: ArtifactStore;
  pointers: PointerStore;
  engine: InferenceEngine;
  config: Pick<
    AppConfig,
    "registryListTtlMs" | "bestMetric" | "bestMetricHigherIsBetter" | "inferTimeoutMs"
  > &
    Partial<Pick<AppConfig, "retainVersions" | "selectionPolicy">>;
  now?: () => Date;
}

/**
 * Builds the registry from its parts: the cached listing, metadata reads, the pure resolution, verification at
 * load, registration and pointer operations. Unauthenticated requests cost the store nothing per request: the
 * listing is cached (stale-while-revalidate), metadata once read is kept (versions are immutable), and a name or
 * version the store does not have is remembered as missing for `registryListTtlMs` (forgotten at once when this
 * process registers a version).
 */
export function createRegistry(deps: RegistryDeps): Registry {
  const { artifacts, engine, config } = deps;
  const now = deps.now ?? (() => new Date());
  const listing = createListing(artifacts, config.registryListTtlMs);
  const reads = createMetadataReads(artifacts, listing, config.registryListTtlMs);
  const verification = createVerification({ artifacts, engine, inferTimeoutMs: config.inferTimeoutMs });
  const pointerOps = createPointerOps(
    deps.pointers,
    { versionsOf: listing.versionsOf, metadata: reads.metadata },
    now,
  );

  /**
   * Runs the pure resolution, reading the metadata it asks for (at most twice: the pointers', then all). Archived
   * versions are not there for it: never chosen, and a request naming one is a 410 saying how to restore it.
   */
  const resolveNow = async (name: string, requested?: string, clientKey?: string): Promise<Resolved> => {
    const listed = await listing.versionsOf(name);
    if (requested !== undefined) {
      const meta = await reads.metadata(name, requested);
      // Fails open: with the pointers unreadable, a named version serves (an archived one is a valid model).
      const archived = archiveOf(await pointerOps.read(name).catch(() => ({})), requested);
      if (archived) throw versionArchived(name, requested, archived);
      return { meta, via: "requested" };
    }
    const pointers = await pointerOps.read(name);
    const versions = listed.filter((version) => !archiveOf(pointers, version));
    const metadata = new Map<string, VersionMetadata | null>();
    for (;;) {
      const outcome = resolveVersion({
        pointers,
        versions,
        metadata,
        metric: config.bestMetric,
        higherIsBetter: config.bestMetricHigherIsBetter,
        policy: config.selectionPolicy,
        clientKey,
      });
      if (outcome.kind === "chosen") {
        const meta = metadata.get(outcome.version) ?? (await reads.metadata(name, outcome.version));
        return { meta, via: outcome.via, ...(pointers.rollout && { rollout: pointers.rollout }) };
      }
      if (outcome.kind === "none") {
        if (outcome.unreadable.length === 0 && versions.length < listed.length)
          throw everyVersionArchived(name);
        if (outcome.unreadable.length === 0)
          throw new EdgeMLError("no_model", `model '${name}' has no versions`);
        const { unreadable } = await reads.survey(name, outcome.unreadable);
        throw new EdgeMLError(
          "model_unavailable",
          `no version of '${name}' can be read (${unreadable.map((b) => `${b.version}: ${b.reason}`).join("; ")}); re-register the model`,
        );
      }
      const read = await Promise.all(outcome.versions.map((version) => reads.readable(name, version)));
      for (const [i, version] of outcome.versions.entries()) metadata.set(version, read[i] ?? null);
    }
  };

  const summary = async (name: string): Promise<ModelSummary> => {
    const versions = await listing.versionsOf(name);
    const [pointers, surveyed] = await Promise.all([pointerOps.read(name), reads.survey(name, versions)]);
    const serving = await resolveNow(name).then(
      (r) => ({ version: r.meta.version, via: r.via }),
      () => null,
    );
    const archived = archivedList(pointers, versions);
    return { name, versions, pointers, serving, unreadable: surveyed.unreadable, archived };
  };

  const register = createRegistering({ ...deps, verification, listing, reads, pointerOps, now });

  return {
    resolve: (name, requested, deadline, clientKey) =>
      withinDeadline(resolveNow(name, requested, clientKey), deadline, `resolving the version of '${name}'`),
    metadata: reads.metadata,
    prepare: verification.prepare,
    history: pointerOps.history,
    ready: listing.ready,
    refreshListing: listing.invalidate,
    register,
    versionNames: listing.versionsOf,
    async listModelNames() {
      return [...(await listing.all()).keys()].sort();
    },
    async listModels() {
      const all = await listing.all();
      return Promise.all([...all.keys()].sort().map((name) => summary(name)));
    },
    getModel: summary,
    async versions(name) {
      return (await reads.survey(name, await listing.versionsOf(name))).metas;
    },
    infer(meta, feeds, outputs, deadline) {
      const key = sessionKey(meta);
      // One deadline for the whole call: the caller's (a request's, started before resolution), or one started
      // here. Its signal bounds the verification, the load and the run; nothing below arms a timer of the same
      // budget (an isolated run's worker is still killed at the remaining time).
      const bound = typeof deadline === "object" ? deadline : deadlineIn(deadline ?? config.inferTimeoutMs);
      const work = verification.prepare(meta).then(() =>
        engine.run({
          key,
          load: verification.loader(meta),
          feeds,
          outputs,
          timeoutMs: Math.max(1, bound.at - Date.now()),
          ...engineBound(bound),
        }),
      );
      const what = `prediction with ${key}`;
      // The engine answers a passed deadline in its own words; the client reads one message, with the whole budget.
      return withinDeadline(work, bound, what).catch((error: unknown) => {
        if (error instanceof EdgeMLError && error.code === "prediction_timeout")
          throw deadlinePassed(what, bound);
        throw error;
      });
    },
    promote: pointerOps.promote,
    select: createSelection({
      pointers: deps.pointers,
      versions: async (name) => (await reads.survey(name, await listing.versionsOf(name))).metas,
      policy: config.selectionPolicy ?? "strict",
      now,
      storeError: pointersUnavailable,
    }).select,
    rollback: pointerOps.rollback,
    pin: pointerOps.pin,
    restore: pointerOps.restore,
  };
}
