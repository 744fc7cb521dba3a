import { EdgeMLError } from "../errors.js";
import type { ArchivedVersion, ModelPointers } from "../storage/pointers.js";
import type { VersionMetadata } from "./metadata.js";

/** A version's `tags.family` that marks the naive baseline: always kept, since it serves when nothing beats it. */
export const NAIVE_FAMILY = "naive";

/**
 * The versions retention never archives, each with why: the pin, the champion, every canary, a rollout's two
 * versions, every naive baseline and every version a person restored. The one place that says what is protected: a
 * new pointer kind joins here.
 */
export function protectedVersions(
  pointers: ModelPointers,
  metas: Iterable<Pick<VersionMetadata, "version" | "tags">>,
): Map<string, string> {
  const kept = new Map<string, string>();
  const keep = (version: string | undefined, why: string) => {
    if (version !== undefined && !kept.has(version)) kept.set(version, why);
  };
  keep(pointers.pinned, "pinned");
  keep(pointers.champion, "champion");
  for (const version of Object.keys(pointers.canary ?? {})) keep(version, "canary");
  keep(pointers.rollout?.challenger, `${pointers.rollout?.mode} challenger`);
  keep(pointers.rollout?.champion ?? undefined, "rollout champion");
  for (const meta of metas) if (meta.tags.family === NAIVE_FAMILY) keep(meta.version, "naive baseline");
  for (const version of pointers.kept ?? []) keep(version, "restored");
  return kept;
}

export interface RetentionInput {
  /** The versions the store lists, in any order. */
  versions: readonly string[];
  pointers: ModelPointers;
  /** The readable versions' metadata (a version without any is never archived: its family is unknown). */
  metas: readonly Pick<VersionMetadata, "version" | "tags">[];
  /** How many of the newest versions are kept whatever they are (`retainVersions`). */
  retain: number;
}

/**
 * The versions to archive now: those older than the newest `retain` that no pointer protects, are readable and are
 * not archived already. Pure, so the policy is a table of cases; ascending.
 */
export function versionsToArchive(input: RetentionInput): string[] {
  const ascending = [...input.versions].sort((a, b) => Number(a) - Number(b));
  const older = ascending.slice(0, Math.max(0, ascending.length - input.retain));
  const kept = protectedVersions(input.pointers, input.metas);
  const readable = new Set(input.metas.map((meta) => meta.version));
  const archived = input.pointers.archived ?? {};
  return older.filter((v) => !kept.has(v) && readable.has(v) && !Object.hasOwn(archived, v));
}

/** The pointers with `versions` archived at `at` for `reason`. */
export function withArchived(
  pointers: ModelPointers,
  versions: readonly string[],
  entry: ArchivedVersion,
): ModelPointers {
  const archived = { ...pointers.archived };
  for (const version of versions) archived[version] = entry;
  return { ...pointers, archived };
}

/** The pointers with `version` restored: no longer archived, and kept from then on. */
export function withRestored(pointers: ModelPointers, version: string): ModelPointers {
  const { [version]: _restored, ...archived } = pointers.archived ?? {};
  const { archived: _all, ...rest } = pointers;
  const kept = [...new Set([...(pointers.kept ?? []), version])].sort((a, b) => Number(a) - Number(b));
  return { ...rest, ...(Object.keys(archived).length > 0 && { archived }), kept };
}

/** Whether a version is archived, and since when and why. */
export function archiveOf(pointers: ModelPointers, version: string): ArchivedVersion | undefined {
  const archived = pointers.archived ?? {};
  return Object.hasOwn(archived, version) ? archived[version] : undefined;
}

/** The 410 for a version that is archived: says when, why and how to bring it back. */
export function versionArchived(name: string, version: string, entry: ArchivedVersion): EdgeMLError {
  return new EdgeMLError(
    "version_archived",
    `version ${version} of '${name}' is archived (${entry.reason}, at ${entry.at}) and does not serve; restore it with POST /api/ml/models/${name}/versions/${version}/restore or \`npm run cli -- restore ${name} ${version}\``,
    { details: { model: name, version, archived: entry } },
  );
}

/** An archived version as the listing shows it. */
export type ArchivedListing = { version: string; archived: true } & ArchivedVersion;

/** The archived versions among those the store lists, ascending, with when and why. */
export function archivedList(pointers: ModelPointers, versions: readonly string[]): ArchivedListing[] {
  return Object.entries(pointers.archived ?? {})
    .filter(([version]) => versions.includes(version))
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([version, entry]) => ({ version, archived: true as const, ...entry }));
}

/** The 503 of a model whose every version is archived: nothing can serve until one is restored. */
export function everyVersionArchived(name: string): EdgeMLError {
  return new EdgeMLError(
    "no_model",
    `every version of '${name}' is archived; restore one with POST /api/ml/models/${name}/versions/{version}/restore`,
  );
}
