import { LRUCache } from "lru-cache";
import { createAsyncCache } from "../cache/async-cache.js";
import type { ArtifactStore } from "../storage/artifacts.js";
import { storeUnavailable, UnreadableVersionError, versionNotFound } from "./failures.js";
import type { Listing } from "./listing.js";
import { type VersionMetadata, VersionMetadataSchema } from "./metadata.js";

/** Unreadable versions remembered at most, with their reason. */
const MAX_UNREADABLE = 10_000;

/** Versions whose metadata is kept in memory at most (metadata is small; versions are immutable). */
const MAX_METADATA = 10_000;

/** A version whose metadata cannot be read (truncated, not JSON, another model's): skipped by resolution. */
export interface UnreadableVersion {
  version: string;
  reason: string;
}

export const sessionKey = (meta: Pick<VersionMetadata, "name" | "version">) => `${meta.name}@${meta.version}`;

export interface MetadataReads {
  /** A version's metadata: 404 when the model or version does not exist, 503 when it cannot be read. */
  metadata(name: string, version: string): Promise<VersionMetadata>;
  /** The version's metadata, or null when it is unreadable (skipped); store outages still throw. */
  readable(name: string, version: string): Promise<VersionMetadata | null>;
  /** Every version's metadata, the unreadable ones reported apart. */
  survey(
    name: string,
    versions: string[],
  ): Promise<{ metas: VersionMetadata[]; unreadable: UnreadableVersion[] }>;
  /** Remembers metadata this process has just published. */
  remember(meta: VersionMetadata): void;
  /**
   * A version the store has just listed (a registration's own list call): read without consulting the cached
   * listing, which may not have it yet. Null when it cannot be read.
   */
  listed(name: string, version: string): Promise<VersionMetadata | null>;
}

/** Parses a version's metadata.json text, or says why it cannot serve. */
function parseMetadata(key: string, name: string, version: string, text: string): VersionMetadata {
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
  return parsed.data;
}

/**
 * Metadata reads: kept once read (versions are immutable), one store read per version at a time, and a version
 * that cannot be read remembered as such for `ttlMs` (so a burst of requests for it costs the store one read).
 */
export function createMetadataReads(
  artifacts: ArtifactStore,
  listing: Listing,
  ttlMs: number,
): MetadataReads {
  const unreadable =
    ttlMs > 0 ? new LRUCache<string, string>({ max: MAX_UNREADABLE, ttl: ttlMs }) : undefined;
  // Policy: memo (versions are immutable); concurrent reads of one version share one store read; failures are not
  // kept here (the unreadable ones are, above, for the TTL).
  const cache = createAsyncCache<string, VersionMetadata, { name: string; version: string }>({
    policy: { kind: "memo" },
    max: MAX_METADATA,
    load: async (key, { name, version }) => {
      const text = await artifacts
        .getMetadata(name, version)
        .catch((error: unknown) => Promise.reject(storeUnavailable(error)));
      if (text === null) {
        listing.missing.set(key);
        throw versionNotFound(name, version);
      }
      try {
        return parseMetadata(key, name, version, text);
      } catch (error) {
        if (error instanceof UnreadableVersionError) unreadable?.set(key, error.reason);
        throw error;
      }
    },
  });

  const metadata = async (name: string, version: string): Promise<VersionMetadata> => {
    const key = `${name}@${version}`;
    const cached = cache.peek(key);
    if (cached) return cached;
    const listed = await listing.versionsOf(name);
    if (!listed.includes(version) && (listing.fresh() || listing.missing.has(key))) {
      throw versionNotFound(name, version);
    }
    const known = unreadable?.get(key);
    if (known !== undefined) throw new UnreadableVersionError(key, known);
    return cache.get(key, { name, version });
  };

  const readable = (name: string, version: string): Promise<VersionMetadata | null> =>
    metadata(name, version).catch((error: unknown) => {
      if (error instanceof UnreadableVersionError) return null;
      throw error;
    });

  return {
    metadata,
    readable,
    async survey(name, versions) {
      const metas: VersionMetadata[] = [];
      const broken: UnreadableVersion[] = [];
      const results = await Promise.all(
        versions.map((version) =>
          metadata(name, version).then(
            (meta) => ({ meta }),
            (error: unknown) => {
              if (error instanceof UnreadableVersionError) return { version, reason: error.reason };
              throw error;
            },
          ),
        ),
      );
      for (const result of results) {
        if ("meta" in result) metas.push(result.meta);
        else broken.push(result);
      }
      return { metas, unreadable: broken };
    },
    remember(meta) {
      cache.set(sessionKey(meta), meta);
    },
    listed(name, version) {
      const key = `${name}@${version}`;
      const cached = cache.peek(key);
      return (cached ? Promise.resolve(cached) : cache.get(key, { name, version })).then(
        (meta) => meta,
        (error: unknown) => {
          if (error instanceof UnreadableVersionError) return null;
          throw error;
        },
      );
    },
  };
}
