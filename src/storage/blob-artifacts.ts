import {
  BlobAccessError,
  BlobStoreNotFoundError,
  BlobStoreSuspendedError,
  del,
  list,
  put,
} from "@vercel/blob";
import { z } from "zod";
import { EdgeMLError } from "../errors.js";
import { sha256Hex } from "../util/hash.js";
import type { ArtifactStore } from "./artifacts.js";
import { StoreError } from "./errors.js";
import { withTimeout } from "./timeout.js";

/** A blob as the Blob API lists it: what the store needs of it. */
export interface BlobEntry {
  pathname: string;
  url: string;
}

/**
 * All the store needs from `@vercel/blob` (the functions of the package satisfy it): a fake or a wrapper only has
 * to provide these. The client reads `VERCEL_BLOB_API_URL` (the API's base URL) and `VERCEL_BLOB_RETRIES` from the
 * environment on every call; the token is always passed explicitly.
 */
export interface BlobClient {
  put(
    pathname: string,
    body: string | ArrayBuffer,
    options: {
      access: "public" | "private";
      token: string;
      allowOverwrite: boolean;
      addRandomSuffix: boolean;
      contentType: string;
      abortSignal?: AbortSignal;
    },
  ): Promise<BlobEntry>;
  list(options: {
    prefix: string;
    cursor?: string;
    token: string;
    abortSignal?: AbortSignal;
  }): Promise<{ blobs: BlobEntry[]; hasMore: boolean; cursor?: string }>;
  del(urls: string[], options: { token: string; abortSignal?: AbortSignal }): Promise<void>;
}

export const vercelBlobClient: BlobClient = { put, list, del };

/** Defaults of the Blob artifact store, each with why. */
export const BLOB_DEFAULTS = {
  /** Everything lives under this folder of the store, so the store can hold other things too. */
  prefix: "models/",
  /**
   * Public blobs work on every store; a private store (models are the team's IP) needs `access: "private"`, and
   * downloads then send the token, as `@vercel/blob`'s own `get()` does.
   */
  access: "public",
  /**
   * One API call (list, put of metadata), retries by the client included. The registry lists on the request path
   * when its listing expires, so an outage must cost a bounded wait before it serves its last listing.
   */
  apiTimeoutMs: 10_000,
  /** Uploading or downloading model bytes: models of tens of MB on a slow link. */
  transferTimeoutMs: 120_000,
} as const;

export interface BlobArtifactStoreOptions {
  /** A read-write token, `vercel_blob_rw_<storeId>_<secret>` (`BLOB_READ_WRITE_TOKEN`). */
  token: string;
  /** Folder of the store holding the registry; default `models/`. Ends with `/`. */
  prefix?: string;
  access?: "public" | "private";
  apiTimeoutMs?: number;
  transferTimeoutMs?: number;
  client?: BlobClient;
  fetch?: typeof fetch;
}

const METADATA_FILE = "metadata.json";
const SHA256 = /^[0-9a-f]{64}$/;
const MetadataDigestSchema = z.object({ sha256: z.string().regex(SHA256) });

/** The `sha256` a metadata document declares, or undefined when it declares none (or is not JSON). */
function declaredDigest(metadata: string): string | undefined {
  try {
    const parsed = MetadataDigestSchema.safeParse(JSON.parse(metadata));
    return parsed.success ? parsed.data.sha256 : undefined;
  } catch {
    return undefined;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The client reports an existing pathname as a BlobError with this text (status 400 `bad_request`). */
function isAlreadyExists(error: unknown): boolean {
  return error instanceof Error && /already exists/i.test(error.message);
}

/**
 * A refusal of the store itself (a token without access, a deleted or suspended store) as a StoreError that says
 * what to fix: retrying will not help. Other failures pass unchanged (outages, and the "already exists" the
 * publisher relies on).
 */
function blobRefusal(error: unknown): unknown {
  const why =
    error instanceof BlobAccessError
      ? "refused the token: check that BLOB_READ_WRITE_TOKEN is a read-write token of this store"
      : error instanceof BlobStoreNotFoundError
        ? "does not know this store: check BLOB_READ_WRITE_TOKEN (its store may have been deleted)"
        : error instanceof BlobStoreSuspendedError
          ? "has suspended this store: see the store in the Vercel dashboard"
          : undefined;
  return why ? new StoreError("Vercel Blob", "refused", `Vercel Blob ${why}`, { cause: error }) : error;
}

/** The client with the store's refusals named (blobRefusal); every call otherwise as the client makes it. */
function namingRefusals(client: BlobClient): BlobClient {
  const named = <T>(work: Promise<T>) => work.catch((error: unknown) => Promise.reject(blobRefusal(error)));
  return {
    put: (pathname, body, options) => named(client.put(pathname, body, options)),
    list: (options) => named(client.list(options)),
    del: (urls, options) => named(client.del(urls, options)),
  };
}

function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Every blob under a folder, across pages. */
async function listBlobs(
  client: BlobClient,
  options: { prefix: string; token: string; apiTimeoutMs: number },
): Promise<BlobEntry[]> {
  const blobs: BlobEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = await withTimeout(
      (abortSignal) => client.list({ prefix: options.prefix, cursor, token: options.token, abortSignal }),
      options.apiTimeoutMs,
      "Vercel Blob (list)",
    );
    blobs.push(...page.blobs);
    cursor = page.hasMore ? page.cursor : undefined;
  } while (cursor);
  return blobs;
}

/** A blob's bytes, or null when the store says 404; a private store's download carries the token. */
function downloadBlob(
  fetchImpl: typeof fetch,
  url: string,
  what: string,
  options: { access: "public" | "private"; token: string; transferTimeoutMs: number },
): Promise<Uint8Array | null> {
  return withTimeout(
    async (signal) => {
      const response = await fetchImpl(url, {
        signal,
        headers: options.access === "private" ? { authorization: `Bearer ${options.token}` } : {},
      });
      if (response.status === 404) {
        await response.body?.cancel();
        return null;
      }
      if (!response.ok) {
        await response.body?.cancel();
        if (response.status === 401 || response.status === 403) {
          throw new StoreError(
            "Vercel Blob",
            "refused",
            `Vercel Blob answered ${response.status} downloading ${what}: a private store needs BLOB_ACCESS=private (the token is then sent), a public one a token of that store`,
          );
        }
        throw new Error(`edgeml: Vercel Blob answered ${response.status} downloading ${what}`);
      }
      return new Uint8Array(await response.arrayBuffer());
    },
    options.transferTimeoutMs,
    `Vercel Blob (download ${what})`,
  );
}

/**
 * The registry in Vercel Blob. A version is two blobs:
 *
 *   <prefix><model>/<version>/<sha256>.onnx    the model bytes, named by their content hash, written first
 *   <prefix><model>/<version>/metadata.json    written last, never overwritten: its existence means "complete"
 *
 * Listings show only versions whose metadata.json exists, so a publish in progress (or one that died half way) is
 * never visible. Two publishers of one version race on the metadata write: Blob refuses the second
 * (`allowOverwrite: false`), whose caller gets a `conflict` and removes its now-orphaned bytes. The metadata must
 * carry the `sha256` of the bytes (the registry's metadata does): that is how a reader finds them.
 */
export function createBlobArtifactStore(options: BlobArtifactStoreOptions): ArtifactStore {
  const prefix = options.prefix ?? BLOB_DEFAULTS.prefix;
  if (prefix !== "" && !prefix.endsWith("/")) {
    throw new Error(`edgeml: the Blob prefix must be empty or end with "/", got "${prefix}"`);
  }
  if (!/^vercel_blob_rw_[^_]+_.+/.test(options.token)) {
    throw new Error(
      "edgeml: BLOB_READ_WRITE_TOKEN must be a read-write token (vercel_blob_rw_<storeId>_<secret>)",
    );
  }
  const client = namingRefusals(options.client ?? vercelBlobClient);
  const access = options.access ?? BLOB_DEFAULTS.access;
  const token = options.token;
  const apiTimeoutMs = options.apiTimeoutMs ?? BLOB_DEFAULTS.apiTimeoutMs;
  const transferTimeoutMs = options.transferTimeoutMs ?? BLOB_DEFAULTS.transferTimeoutMs;
  const fetchImpl = options.fetch ?? fetch;
  const versionFile = new RegExp(
    `^${escapeRegExp(prefix)}([^/]+)/([1-9][0-9]*)/${escapeRegExp(METADATA_FILE)}$`,
  );

  const folder = (model: string, version: string) => `${prefix}${model}/${version}/`;

  const listAll = (folderPrefix: string) => listBlobs(client, { prefix: folderPrefix, token, apiTimeoutMs });
  const download = (url: string, what: string) =>
    downloadBlob(fetchImpl, url, what, { access, token, transferTimeoutMs });

  /** The version's blobs: its metadata entry (undefined while incomplete) and the rest. */
  const versionBlobs = async (model: string, version: string) => {
    const blobs = await listAll(folder(model, version));
    const metadata = blobs.find((b) => b.pathname === `${folder(model, version)}${METADATA_FILE}`);
    return { metadata, blobs };
  };

  const readMetadata = async (entry: BlobEntry, key: string): Promise<string> => {
    const bytes = await download(entry.url, `${key}/${METADATA_FILE}`);
    // Listed a moment ago and never deleted: missing now means the store is inconsistent, not "no such version".
    if (!bytes) throw new Error(`edgeml: ${key}/${METADATA_FILE} is listed but cannot be downloaded`);
    return new TextDecoder().decode(bytes);
  };

  const removeQuietly = async (urls: string[]) => {
    if (urls.length === 0) return;
    await withTimeout(
      (abortSignal) => client.del(urls, { token, abortSignal }),
      apiTimeoutMs,
      "Vercel Blob (delete)",
    ).catch(() => {
      // An orphaned bytes blob is invisible (no metadata names it) and harmless; it costs only storage.
    });
  };

  return {
    kind: "vercel-blob",
    async listModels() {
      const models = new Set<string>();
      for (const blob of await listAll(prefix)) {
        const match = versionFile.exec(blob.pathname);
        if (match?.[1]) models.add(match[1]);
      }
      return [...models];
    },
    async listVersions(model) {
      const versions: string[] = [];
      for (const blob of await listAll(`${prefix}${model}/`)) {
        const match = versionFile.exec(blob.pathname);
        if (match?.[1] === model && match[2]) versions.push(match[2]);
      }
      return versions;
    },
    async getMetadata(model, version) {
      const { metadata } = await versionBlobs(model, version);
      return metadata ? readMetadata(metadata, `${model}/${version}`) : null;
    },
    async getModel(model, version) {
      const key = `${model}/${version}`;
      const { metadata, blobs } = await versionBlobs(model, version);
      if (!metadata) return null;
      const digest = declaredDigest(await readMetadata(metadata, key));
      if (!digest) throw new Error(`edgeml: the metadata of ${key} has no valid sha256`);
      const bytes = blobs.find((b) => b.pathname === `${folder(model, version)}${digest}.onnx`);
      return bytes ? download(bytes.url, `${key}/${digest}.onnx`) : null;
    },
    async publish(model, version, files) {
      const key = `${model}/${version}`;
      const sha256 = await sha256Hex(files.model);
      if (declaredDigest(files.metadata) !== sha256) {
        throw new Error(`edgeml: the metadata of ${key} must carry the sha256 of its bytes (${sha256})`);
      }
      const bytesPath = `${folder(model, version)}${sha256}.onnx`;
      let ownBytes: string | undefined;
      try {
        const written = await withTimeout(
          (abortSignal) =>
            client.put(bytesPath, exactBuffer(files.model), {
              access,
              token,
              allowOverwrite: false,
              addRandomSuffix: false,
              contentType: "application/octet-stream",
              abortSignal,
            }),
          transferTimeoutMs,
          `Vercel Blob (upload ${bytesPath})`,
        );
        ownBytes = written.url;
      } catch (error) {
        // Content-addressed: a blob at this path holds these very bytes (a racer with the same model wrote it).
        if (!isAlreadyExists(error)) throw error;
      }
      const metadataPath = `${folder(model, version)}${METADATA_FILE}`;
      try {
        await withTimeout(
          (abortSignal) =>
            client.put(metadataPath, files.metadata, {
              access,
              token,
              allowOverwrite: false,
              addRandomSuffix: false,
              contentType: "application/json",
              abortSignal,
            }),
          apiTimeoutMs,
          `Vercel Blob (upload ${metadataPath})`,
        );
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
        const { metadata } = await versionBlobs(model, version);
        const existing = metadata ? await readMetadata(metadata, key) : undefined;
        // A retried upload whose first attempt did land: the metadata there is ours, so we won.
        if (existing === files.metadata) return;
        // Our bytes are orphans unless the winner's are the same bytes (same content, same path).
        if (ownBytes && (existing === undefined || declaredDigest(existing) !== sha256)) {
          await removeQuietly([ownBytes]);
        }
        throw new EdgeMLError("conflict", `version ${version} of '${model}' exists already`);
      }
    },
  };
}
