import { type AppConfig, DEFAULT_RETAIN_VERSIONS } from "../config.js";
import type { InferenceEngine } from "../inference/engine.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import { createKeyedLock } from "../storage/keyed-lock.js";
import type { ModelPointers } from "../storage/pointers.js";
import type { Listing } from "./listing.js";
import type { RegistrationInput, VersionMetadata } from "./metadata.js";
import type { MetadataReads } from "./metadata-reads.js";
import type { PointerOps } from "./pointer-ops.js";
import { registerVersion } from "./registration.js";
import { versionsToArchive } from "./retention.js";
import type { Verification } from "./verification.js";

/**
 * What a registration answers: the version's metadata, and either `duplicate_of` (the registration equals that
 * existing version, bytes and calibration: nothing was written) or, for a new version, the versions retention
 * archived because of it (`archived`; `retention_error` when the pointers could not be written: the version is
 * registered all the same, and the next registration archives what this one could not).
 */
export type Registration = VersionMetadata & {
  duplicate_of?: string;
  archived?: string[];
  retention_error?: string;
};

export interface RegisteringDeps {
  artifacts: ArtifactStore;
  engine: InferenceEngine;
  verification: Verification;
  listing: Pick<Listing, "invalidate">;
  reads: Pick<MetadataReads, "listed" | "remember">;
  pointerOps: Pick<PointerOps, "read" | "archive">;
  /** `retainVersions`: versions kept beside the protected ones (default DEFAULT_RETAIN_VERSIONS). */
  config: Partial<Pick<AppConfig, "retainVersions">>;
  now: () => Date;
}

/**
 * The registry's `register`: a registration (registration.ts) that answers an existing version it equals instead of
 * writing (duplicates.ts), then archives what retention no longer keeps (retention.ts). Registrations of one model run
 * one at a time in this process: the duplicate check and the publish it guards must not interleave with another's,
 * or two identical registrations racing would both find nothing to equal.
 */
export function createRegistering(deps: RegisteringDeps) {
  const { reads, pointerOps } = deps;
  const retain = deps.config.retainVersions ?? DEFAULT_RETAIN_VERSIONS;
  const registering = createKeyedLock();

  /**
   * The readable metadata of versions the store has just listed: read past the cached listing, so a version another
   * process published since it was cached is compared (duplicates) and counted (retention) too.
   */
  const listedMetas = async (name: string, versions: string[]): Promise<VersionMetadata[]> =>
    (await Promise.all(versions.map((version) => reads.listed(name, version)))).filter(
      (meta): meta is VersionMetadata => meta !== null,
    );

  /**
   * Archives what retention no longer keeps once `registered` is published: the newest `retain` versions and every
   * protected one stay. The plan is made again from the pointers as stored now, under the model's pointer lock.
   */
  const applyRetention = async (name: string, versions: string[], registered: string): Promise<string[]> => {
    const metas = await listedMetas(name, versions);
    const plan = (pointers: ModelPointers) => versionsToArchive({ versions, pointers, metas, retain });
    if (plan(await pointerOps.read(name)).length === 0) return [];
    const done = await pointerOps.archive(
      name,
      plan,
      `retention: older than the newest ${retain} versions when ${registered} was registered`,
    );
    return done?.archived ?? [];
  };

  return (name: string, bytes: Uint8Array, input?: RegistrationInput): Promise<Registration> =>
    registering(name, async () => {
      const { artifacts, engine, verification, now } = deps;
      const outcome = await registerVersion(
        { artifacts, engine, verification, now, existing: listedMetas },
        name,
        bytes,
        input,
      );
      if (outcome.kind === "duplicate") return { ...outcome.meta, duplicate_of: outcome.meta.version };
      const { meta } = outcome;
      deps.listing.invalidate();
      reads.remember(meta);
      try {
        const archived = await applyRetention(name, outcome.versions, meta.version);
        return archived.length > 0 ? { ...meta, archived } : meta;
      } catch (error) {
        return { ...meta, retention_error: error instanceof Error ? error.message : String(error) };
      }
    });
}
