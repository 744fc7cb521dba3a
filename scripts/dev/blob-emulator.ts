/**
 * A local Vercel Blob store: the Blob API as `@vercel/blob` 2.x calls it, plus the blob URLs themselves, backed by
 * memory.
 *
 *   npx tsx scripts/dev/blob-emulator.ts --port 8077
 *   VERCEL_BLOB_API_URL=http://127.0.0.1:8077/api/blob BLOB_READ_WRITE_TOKEN=vercel_blob_rw_edgemldev_devsecret
 *
 * Protocol (from the client's source; it reads VERCEL_BLOB_API_URL and VERCEL_BLOB_RETRIES on every call, and
 * appends the route to the base URL as a plain string, e.g. `${base}/?pathname=` and `${base}?url=`):
 * - `PUT  {api}/?pathname=P` body = bytes → put. Headers: `x-vercel-blob-access`, `x-content-type`,
 *   `x-add-random-suffix` ("1"/"0", default off), `x-allow-overwrite` ("1"/"0", default off),
 *   `x-cache-control-max-age` (seconds, default 30 days), `x-if-match` (ETag precondition).
 * - `PUT  {api}/?pathname=P&fromUrl=U` → copy;  `POST {api}/rename?pathname=P&fromUrl=U` → rename.
 * - `GET  {api}?url=U` → head (U is a blob URL or a pathname);  `GET {api}?prefix&cursor&limit&mode` → list.
 * - `POST {api}/delete` body `{"urls":[...]}` → delete (missing blobs are ignored).
 * - `Authorization: Bearer vercel_blob_rw_<storeId>_<secret>`, `x-api-version` (12 for @vercel/blob 2.8).
 * - Errors are `{"error":{"code","message"}}`; the client maps the code to its error class (`forbidden` →
 *   BlobAccessError, `not_found` → BlobNotFoundError, `bad_request` → BlobError(message), `precondition_failed` →
 *   BlobPreconditionFailedError) and *retries* `unknown_error`, `service_unavailable`, `internal_server_error` and
 *   network errors VERCEL_BLOB_RETRIES times (default 10, async-retry backoff from 1 s doubling): set
 *   VERCEL_BLOB_RETRIES=0 in tests that provoke faults, or they take minutes.
 *
 * Blob URLs are `http://127.0.0.1:PORT/<pathname>`: served by this emulator, so `fetch(blob.url)` downloads the
 * bytes, and `new URL(url).pathname.slice(1)` is the blob pathname as in production
 * (`https://<store>.public.blob.vercel-storage.com/<pathname>`). Private blobs need the Bearer token to download.
 * `get()` from @vercel/blob cannot be used: it only accepts *.blob.vercel-storage.com hosts.
 */
import { createHash, randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { type Context, Hono } from "hono";
import { failCli, isMain, parsePort, runUntilSignal } from "./lib/cli";
import { bearerToken, json, RestartableServer } from "./lib/http";

/** The client's own limit on pathnames; the API enforces the same. */
const MAX_PATHNAME_LENGTH = 950;
/** Vercel Blob's default cache lifetime for a blob: one month. */
const DEFAULT_CACHE_CONTROL_MAX_AGE = 30 * 24 * 60 * 60;
/** `list()` returns at most this many entries per page, Vercel's default and maximum. */
const MAX_LIST_LIMIT = 1000;
/** Length of the random suffix Vercel appends with addRandomSuffix (e.g. `model-Ab3…xyz.onnx`). */
const RANDOM_SUFFIX_LENGTH = 30;
/** Requests kept for `requests()`; enough for any one test, bounded for a long-running dev server. */
const REQUEST_LOG_SIZE = 500;

const ALREADY_EXISTS_MESSAGE =
  "This blob already exists, use `allowOverwrite: true` if you want to overwrite it. Or `addRandomSuffix: true` to generate a unique filename.";

export type BlobAccess = "public" | "private";
export type BlobFault = "500" | "503";

export interface BlobEmulatorOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Read-write token, `vercel_blob_rw_<storeId>_<secret>`; default `vercel_blob_rw_edgemldev_devsecret`. */
  token?: string;
}

export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. `/api/blob/?pathname=a.txt`. */
  path: string;
  status: number;
  headers: Record<string, string>;
}

export interface StoredBlobInfo {
  pathname: string;
  size: number;
  contentType: string;
  access: BlobAccess;
  etag: string;
  uploadedAt: Date;
}

export interface BlobEmulatorHandle {
  /** `http://127.0.0.1:PORT`; blob URLs are `${url}/<pathname>`. */
  readonly url: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT/api/blob`: the value for VERCEL_BLOB_API_URL. */
  readonly apiUrl: string;
  readonly token: string;
  readonly storeId: string;
  /** What is stored, for assertions (sorted by pathname). */
  blobs(): StoredBlobInfo[];
  /** Requests seen so far (newest last), for asserting headers and routes. */
  requests(): RecordedRequest[];
  /**
   * Makes requests fail with the given status (API and downloads alike) until `setFault(null)`, or only the next
   * `times` requests when given. 500 answers code `internal_server_error`, 503 `service_unavailable`: both are
   * retried by the client.
   */
  setFault(fault: BlobFault | null, options?: { times?: number }): void;
  /** Deletes every blob. */
  clear(): void;
  close(): Promise<void>;
}

interface StoredBlob {
  pathname: string;
  bytes: Buffer;
  contentType: string;
  cacheControlMaxAge: number;
  access: BlobAccess;
  etag: string;
  uploadedAt: Date;
}

/** Thrown inside handlers; becomes the Blob API's `{error:{code,message}}`. */
class BlobApiError extends Error {
  readonly status: 400 | 403 | 404 | 412 | 500 | 503;
  readonly code: string;
  constructor(status: BlobApiError["status"], code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function startBlobEmulator(options: BlobEmulatorOptions = {}): Promise<BlobEmulatorHandle> {
  const token = options.token ?? "vercel_blob_rw_edgemldev_devsecret";
  const storeId = parseStoreId(token);
  const blobs = new Map<string, StoredBlob>();
  const log: RecordedRequest[] = [];
  let fault: { status: 500 | 503; remaining: number } | undefined;
  let origin = "";

  const app = new Hono();

  app.use("*", async (c, next) => {
    if (fault && fault.remaining > 0) {
      fault.remaining--;
      const status = fault.status;
      if (fault.remaining === 0) fault = undefined;
      c.res = errorResponse(
        status === 500
          ? new BlobApiError(500, "internal_server_error", "Internal server error (fault injected)")
          : new BlobApiError(503, "service_unavailable", "The blob service is unavailable (fault injected)"),
      );
    } else {
      await next();
    }
    const url = new URL(c.req.url);
    log.push({
      method: c.req.method,
      path: url.pathname + url.search,
      status: c.res.status,
      headers: Object.fromEntries(c.req.raw.headers),
    });
    if (log.length > REQUEST_LOG_SIZE) log.shift();
  });

  // Handlers throw BlobApiError; Hono routes thrown errors here, before the logging middleware resumes.
  app.onError((error) => errorResponse(error instanceof BlobApiError ? error : internal(error)));

  const requireToken = (c: Context): void => {
    if (bearerToken(c.req.raw) !== token) {
      throw new BlobApiError(
        403,
        "forbidden",
        "Access denied, please provide a valid token for this resource.",
      );
    }
  };

  const blobUrl = (pathname: string): string =>
    `${origin}/${pathname.split("/").map(encodeURIComponent).join("/")}`;

  /** A blob URL of this emulator, or a bare pathname, → the pathname. */
  const toPathname = (urlOrPathname: string): string => {
    if (!/^https?:\/\//.test(urlOrPathname)) return urlOrPathname;
    const url = new URL(urlOrPathname);
    return decodeURIComponent(url.pathname.slice(1));
  };

  const describe = (blob: StoredBlob) => ({
    url: blobUrl(blob.pathname),
    downloadUrl: `${blobUrl(blob.pathname)}?download=1`,
    pathname: blob.pathname,
    contentType: blob.contentType,
    contentDisposition: contentDisposition("inline", blob.pathname),
    etag: blob.etag,
  });

  const headResult = (blob: StoredBlob) => ({
    ...describe(blob),
    size: blob.bytes.length,
    cacheControl: `public, max-age=${blob.cacheControlMaxAge}`,
    uploadedAt: blob.uploadedAt.toISOString(),
  });

  /** Stores bytes under `requested` honouring the put/copy headers; returns the stored blob. */
  const write = (c: Context, requested: string, bytes: Buffer, fallbackContentType?: string): StoredBlob => {
    validatePathname(requested);
    const pathname = flag(c.req.header("x-add-random-suffix")) ? withRandomSuffix(requested) : requested;
    const existing = blobs.get(pathname);
    const ifMatch = c.req.header("x-if-match");
    if (ifMatch !== undefined && (!existing || unquote(existing.etag) !== unquote(ifMatch))) {
      throw new BlobApiError(412, "precondition_failed", "Precondition failed: ETag mismatch.");
    }
    if (existing && ifMatch === undefined && !flag(c.req.header("x-allow-overwrite"))) {
      throw new BlobApiError(400, "bad_request", ALREADY_EXISTS_MESSAGE);
    }
    const maxAgeHeader = c.req.header("x-cache-control-max-age");
    const maxAge = maxAgeHeader === undefined ? DEFAULT_CACHE_CONTROL_MAX_AGE : Number(maxAgeHeader);
    if (!Number.isInteger(maxAge) || maxAge < 0) {
      throw new BlobApiError(400, "bad_request", `Invalid cacheControlMaxAge "${maxAgeHeader}"`);
    }
    const access = c.req.header("x-vercel-blob-access") === "private" ? "private" : "public";
    const blob: StoredBlob = {
      pathname,
      bytes,
      contentType: c.req.header("x-content-type") ?? fallbackContentType ?? contentTypeFor(pathname),
      cacheControlMaxAge: maxAge,
      access,
      etag: `"${createHash("sha256").update(bytes).update(String(Date.now())).digest("hex").slice(0, 32)}"`,
      uploadedAt: new Date(),
    };
    blobs.set(pathname, blob);
    return blob;
  };

  const source = (fromUrl: string | undefined): StoredBlob => {
    if (!fromUrl) throw new BlobApiError(400, "bad_request", "fromUrl is required");
    const blob = blobs.get(toPathname(fromUrl));
    if (!blob) throw new BlobApiError(404, "not_found", "The requested blob does not exist");
    return blob;
  };

  // put (with a body) and copy (with fromUrl)
  const putOrCopy = async (c: Context): Promise<Response> => {
    requireToken(c);
    const pathname = c.req.query("pathname");
    if (pathname === undefined) throw new BlobApiError(400, "bad_request", "pathname is required");
    const fromUrl = c.req.query("fromUrl");
    if (fromUrl !== undefined) {
      const from = source(fromUrl);
      return json(describe(write(c, pathname, from.bytes, from.contentType)));
    }
    const bytes = Buffer.from(await c.req.arrayBuffer());
    return json(describe(write(c, pathname, bytes)));
  };

  const headOrList = (c: Context): Response => {
    requireToken(c);
    const url = c.req.query("url");
    if (url !== undefined) {
      const blob = blobs.get(toPathname(url));
      if (!blob) throw new BlobApiError(404, "not_found", "The requested blob does not exist");
      return json(headResult(blob));
    }
    return json(listPage(c, [...blobs.values()]));
  };

  const listPage = (c: Context, all: StoredBlob[]) => {
    const prefix = c.req.query("prefix") ?? "";
    const folded = c.req.query("mode") === "folded";
    const limitParam = c.req.query("limit");
    const limit = limitParam === undefined ? MAX_LIST_LIMIT : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new BlobApiError(400, "bad_request", `limit must be an integer between 1 and ${MAX_LIST_LIMIT}`);
    }
    const cursorParam = c.req.query("cursor");
    const after = cursorParam ? Buffer.from(cursorParam, "base64url").toString("utf8") : undefined;

    // Entries sorted by name: blobs by pathname, folders (folded mode) by their "dir/" prefix.
    const entries = new Map<string, { folder: string } | { blob: StoredBlob }>();
    for (const blob of all) {
      if (!blob.pathname.startsWith(prefix)) continue;
      const slash = blob.pathname.indexOf("/", prefix.length);
      if (folded && slash !== -1) {
        const folder = blob.pathname.slice(0, slash + 1);
        entries.set(folder, { folder });
      } else {
        entries.set(blob.pathname, { blob });
      }
    }
    const names = [...entries.keys()]
      .sort(compareStrings)
      .filter((name) => after === undefined || name > after);
    const page = names.slice(0, limit);
    const hasMore = names.length > page.length;
    const last = page[page.length - 1];
    const pageEntries = page.map((name) => entries.get(name));
    return {
      blobs: pageEntries.flatMap((e) =>
        e && "blob" in e
          ? [
              {
                url: blobUrl(e.blob.pathname),
                downloadUrl: `${blobUrl(e.blob.pathname)}?download=1`,
                pathname: e.blob.pathname,
                size: e.blob.bytes.length,
                uploadedAt: e.blob.uploadedAt.toISOString(),
                etag: e.blob.etag,
              },
            ]
          : [],
      ),
      ...(folded ? { folders: pageEntries.flatMap((e) => (e && "folder" in e ? [e.folder] : [])) } : {}),
      hasMore,
      ...(hasMore && last !== undefined ? { cursor: Buffer.from(last, "utf8").toString("base64url") } : {}),
    };
  };

  for (const base of ["/api/blob", "/api/blob/"]) {
    app.put(base, putOrCopy);
    app.get(base, headOrList);
  }

  app.post("/api/blob/delete", async (c) => {
    requireToken(c);
    const body = (await c.req.json().catch(() => undefined)) as { urls?: unknown } | undefined;
    const urls = body?.urls;
    if (!Array.isArray(urls) || !urls.every((u) => typeof u === "string")) {
      throw new BlobApiError(400, "bad_request", 'body must be {"urls": string[]}');
    }
    const ifMatch = c.req.header("x-if-match");
    if (ifMatch !== undefined) {
      const blob = blobs.get(toPathname(urls[0] ?? ""));
      if (!blob || unquote(blob.etag) !== unquote(ifMatch)) {
        throw new BlobApiError(412, "precondition_failed", "Precondition failed: ETag mismatch.");
      }
    }
    for (const url of urls) blobs.delete(toPathname(url));
    return json({});
  });

  app.post("/api/blob/rename", (c) => {
    requireToken(c);
    const pathname = c.req.query("pathname");
    if (pathname === undefined) throw new BlobApiError(400, "bad_request", "pathname is required");
    const from = source(c.req.query("fromUrl"));
    const renamed = write(c, pathname, from.bytes, from.contentType);
    if (renamed.pathname !== from.pathname) blobs.delete(from.pathname);
    return json(describe(renamed));
  });

  // Routes the emulator does not implement answer a code the client does not retry.
  app.all("/api/blob/*", (c) => {
    requireToken(c);
    throw new BlobApiError(400, "bad_request", `${c.req.path} is not supported by the edgeml blob emulator`);
  });

  // Blob URLs: the bytes, as the Blob CDN serves them.
  app.on(["GET", "HEAD"], "/*", (c) => {
    const pathname = decodeURIComponent(new URL(c.req.url).pathname.slice(1));
    const blob = blobs.get(pathname);
    if (!blob || (blob.access === "private" && bearerToken(c.req.raw) !== token)) {
      return new Response("Not Found", { status: 404, headers: { "content-type": "text/plain" } });
    }
    const headers = {
      "content-type": blob.contentType,
      "content-length": String(blob.bytes.length),
      etag: blob.etag,
      "last-modified": blob.uploadedAt.toUTCString(),
      "cache-control": `public, max-age=${blob.cacheControlMaxAge}`,
      "content-disposition": contentDisposition(
        c.req.query("download") === "1" ? "attachment" : "inline",
        pathname,
      ),
    };
    if (c.req.header("if-none-match") === blob.etag) return new Response(null, { status: 304, headers });
    return new Response(c.req.method === "HEAD" ? null : new Uint8Array(blob.bytes), {
      status: 200,
      headers,
    });
  });

  const server = new RestartableServer(app.fetch, options.port ?? 0);
  await server.start();
  origin = server.origin;

  return {
    url: origin,
    port: server.port,
    apiUrl: `${origin}/api/blob`,
    token,
    storeId,
    blobs: () =>
      [...blobs.values()]
        .sort((a, b) => compareStrings(a.pathname, b.pathname))
        .map((b) => ({
          pathname: b.pathname,
          size: b.bytes.length,
          contentType: b.contentType,
          access: b.access,
          etag: b.etag,
          uploadedAt: b.uploadedAt,
        })),
    requests: () => [...log],
    setFault: (next, faultOptions) => {
      fault =
        next === null
          ? undefined
          : { status: next === "500" ? 500 : 503, remaining: faultOptions?.times ?? Infinity };
    },
    clear: () => blobs.clear(),
    close: () => server.stop(),
  };
}

/** `vercel_blob_rw_<storeId>_<secret>` → storeId, the same split the client does. */
function parseStoreId(token: string): string {
  const [vercel, blob, rw, storeId, secret] = token.split("_");
  if (vercel !== "vercel" || blob !== "blob" || rw !== "rw" || !storeId || !secret) {
    throw new Error(
      `edgeml blob-emulator: token must look like vercel_blob_rw_<storeId>_<secret>, got "${token}"`,
    );
  }
  return storeId;
}

function validatePathname(pathname: string): void {
  if (pathname === "") throw new BlobApiError(400, "bad_request", "pathname is required");
  if (pathname.length > MAX_PATHNAME_LENGTH) {
    throw new BlobApiError(
      400,
      "bad_request",
      `pathname is too long, maximum length is ${MAX_PATHNAME_LENGTH}`,
    );
  }
  if (pathname.includes("//")) {
    throw new BlobApiError(400, "bad_request", 'pathname cannot contain "//", please encode it if needed');
  }
}

function withRandomSuffix(pathname: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const suffix = Array.from(
    { length: RANDOM_SUFFIX_LENGTH },
    () => alphabet[randomInt(alphabet.length)],
  ).join("");
  const slash = pathname.lastIndexOf("/");
  const dot = pathname.lastIndexOf(".");
  return dot > slash + 1
    ? `${pathname.slice(0, dot)}-${suffix}${pathname.slice(dot)}`
    : `${pathname}-${suffix}`;
}

/** The common types by extension; Vercel infers the content type from the pathname the same way. */
const CONTENT_TYPES: Record<string, string> = {
  json: "application/json",
  txt: "text/plain",
  csv: "text/csv",
  html: "text/html",
  js: "application/javascript",
  wasm: "application/wasm",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  svg: "image/svg+xml",
  webp: "image/webp",
  pdf: "application/pdf",
  gz: "application/gzip",
};

function contentTypeFor(pathname: string): string {
  const extension = /\.([^./]+)$/.exec(pathname)?.[1]?.toLowerCase();
  return (extension && CONTENT_TYPES[extension]) ?? "application/octet-stream";
}

function contentDisposition(kind: "inline" | "attachment", pathname: string): string {
  const filename = pathname.slice(pathname.lastIndexOf("/") + 1);
  return `${kind}; filename="${filename.replace(/["\\]/g, "_")}"`;
}

function flag(header: string | undefined): boolean {
  return header === "1" || header === "true";
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errorResponse(error: BlobApiError): Response {
  return json({ error: { code: error.code, message: error.message } }, error.status);
}

function internal(error: unknown): BlobApiError {
  return new BlobApiError(
    500,
    "internal_server_error",
    error instanceof Error ? error.message : String(error),
  );
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string" }, token: { type: "string" } } });
  (async () => {
    const emulator = await startBlobEmulator({
      port: parsePort(values.port),
      ...(values.token ? { token: values.token } : {}),
    });
    console.log(`blob-emulator listening at ${emulator.url}`);
    console.log(`  VERCEL_BLOB_API_URL=${emulator.apiUrl} BLOB_READ_WRITE_TOKEN=${emulator.token}`);
    runUntilSignal("blob-emulator", () => emulator.close());
  })().catch((error: unknown) => failCli("blob-emulator", error));
}
