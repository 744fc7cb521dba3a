import { Readable } from "node:stream";
import {
  BlobAccessError,
  BlobError,
  BlobNotFoundError,
  BlobPreconditionFailedError,
  BlobServiceNotAvailable,
  BlobUnknownError,
  copy,
  del,
  head,
  list,
  put,
} from "@vercel/blob";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type BlobEmulatorHandle, startBlobEmulator } from "../../scripts/dev/blob-emulator";

let emulator: BlobEmulatorHandle;
let token: string;
const savedEnv = { api: process.env.VERCEL_BLOB_API_URL, retries: process.env.VERCEL_BLOB_RETRIES };

beforeAll(async () => {
  emulator = await startBlobEmulator();
  token = emulator.token;
  // Both are read by @vercel/blob on every call, so setting them here (after import) is enough.
  process.env.VERCEL_BLOB_API_URL = emulator.apiUrl;
  // The client retries 5xx and network errors 10 times with backoff from 1 s; the fault tests would take minutes.
  process.env.VERCEL_BLOB_RETRIES = "0";
});

afterAll(async () => {
  restoreEnv("VERCEL_BLOB_API_URL", savedEnv.api);
  restoreEnv("VERCEL_BLOB_RETRIES", savedEnv.retries);
  await emulator?.close();
});

beforeEach(() => {
  emulator.setFault(null);
  emulator.clear();
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

async function download(url: string, init?: RequestInit): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(url, init);
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

describe("put()", () => {
  it("stores the bytes and returns URLs that the emulator serves", async () => {
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
    const blob = await put("models/btc/v1.onnx", Buffer.from(bytes), { access: "public", token });
    expect(blob).toEqual({
      url: `${emulator.url}/models/btc/v1.onnx`,
      downloadUrl: `${emulator.url}/models/btc/v1.onnx?download=1`,
      pathname: "models/btc/v1.onnx",
      contentType: "application/octet-stream",
      contentDisposition: 'inline; filename="v1.onnx"',
      etag: expect.stringMatching(/^".+"$/),
    });
    expect(await download(blob.url)).toEqual({ status: 200, bytes });
    const res = await fetch(blob.downloadUrl);
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="v1.onnx"');
    expect(res.headers.get("etag")).toBe(blob.etag);
  });

  it("accepts a streamed body", async () => {
    const body = Readable.from([Buffer.from("chunk-1;"), Buffer.from("chunk-2")]);
    const blob = await put("streamed.bin", body, { access: "public", token });
    expect(new TextDecoder().decode((await download(blob.url)).bytes)).toBe("chunk-1;chunk-2");
  });

  it("sends the API version and the token, and the emulator checks the token", async () => {
    await put("a.txt", "a", { access: "public", token });
    const request = emulator.requests().at(-1);
    expect(request?.method).toBe("PUT");
    expect(request?.path).toBe("/api/blob/?pathname=a.txt");
    expect(request?.headers["x-api-version"]).toBe("12");
    expect(request?.headers.authorization).toBe(`Bearer ${token}`);
    expect(request?.headers["x-vercel-blob-store-id"]).toBe(emulator.storeId);
  });

  it("infers the content type from the pathname unless contentType is given", async () => {
    expect((await put("m/meta.json", "{}", { access: "public", token })).contentType).toBe(
      "application/json",
    );
    const custom = await put("m/data", "x,y", { access: "public", token, contentType: "text/csv" });
    expect(custom.contentType).toBe("text/csv");
    expect((await fetch(custom.url)).headers.get("content-type")).toBe("text/csv");
  });

  it("refuses to overwrite an existing pathname without allowOverwrite, as the real API does", async () => {
    await put("models/x.onnx", "one", { access: "public", token });
    const again = put("models/x.onnx", "two", { access: "public", token });
    await expect(again).rejects.toBeInstanceOf(BlobError);
    await expect(put("models/x.onnx", "two", { access: "public", token })).rejects.toThrow(
      "Vercel Blob: This blob already exists, use `allowOverwrite: true` if you want to overwrite it.",
    );
    const replaced = await put("models/x.onnx", "two", { access: "public", token, allowOverwrite: true });
    expect(new TextDecoder().decode((await download(replaced.url)).bytes)).toBe("two");
  });

  it("adds a random suffix before the extension with addRandomSuffix", async () => {
    const first = await put("report.txt", "1", { access: "public", token, addRandomSuffix: true });
    const second = await put("report.txt", "2", { access: "public", token, addRandomSuffix: true });
    expect(first.pathname).toMatch(/^report-[A-Za-z0-9]+\.txt$/);
    expect(second.pathname).not.toBe(first.pathname);
  });

  it("honours cacheControlMaxAge", async () => {
    await put("short.txt", "x", { access: "public", token, cacheControlMaxAge: 60 });
    expect((await head("short.txt", { token })).cacheControl).toBe("public, max-age=60");
  });

  it("writes only when ifMatch matches the current ETag", async () => {
    const v1 = await put("pointer.json", '{"v":1}', { access: "public", token });
    await expect(
      put("pointer.json", '{"v":2}', { access: "public", token, ifMatch: '"stale"' }),
    ).rejects.toBeInstanceOf(BlobPreconditionFailedError);
    const v2 = await put("pointer.json", '{"v":2}', { access: "public", token, ifMatch: v1.etag });
    expect(v2.etag).not.toBe(v1.etag);
  });

  it("serves private blobs only with the token", async () => {
    const blob = await put("private/secret.bin", "s3cret", { access: "private", token });
    expect((await download(blob.url)).status).toBe(404);
    const authorised = await download(blob.url, { headers: { authorization: `Bearer ${token}` } });
    expect(new TextDecoder().decode(authorised.bytes)).toBe("s3cret");
  });
});

describe("head()", () => {
  it("returns the blob's metadata by URL or pathname", async () => {
    const blob = await put("models/eth/v2.onnx", "abcd", { access: "public", token });
    const byUrl = await head(blob.url, { token });
    expect(byUrl).toEqual({
      url: blob.url,
      downloadUrl: blob.downloadUrl,
      pathname: "models/eth/v2.onnx",
      size: 4,
      contentType: "application/octet-stream",
      contentDisposition: 'inline; filename="v2.onnx"',
      cacheControl: "public, max-age=2592000",
      uploadedAt: expect.any(Date),
      etag: blob.etag,
    });
    expect(await head("models/eth/v2.onnx", { token })).toEqual(byUrl);
  });

  it("rejects with BlobNotFoundError for a missing blob", async () => {
    await expect(head("nope.txt", { token })).rejects.toBeInstanceOf(BlobNotFoundError);
  });
});

describe("list()", () => {
  beforeEach(async () => {
    for (const pathname of ["models/btc/v1.onnx", "models/btc/v2.onnx", "models/eth/v1.onnx", "readme.txt"]) {
      await put(pathname, pathname, { access: "public", token });
    }
  });

  it("lists every blob, sorted by pathname", async () => {
    const result = await list({ token });
    expect(result.hasMore).toBe(false);
    expect(result.cursor).toBeUndefined();
    expect(result.blobs.map((b) => b.pathname)).toEqual([
      "models/btc/v1.onnx",
      "models/btc/v2.onnx",
      "models/eth/v1.onnx",
      "readme.txt",
    ]);
    expect(result.blobs[0]).toEqual({
      url: `${emulator.url}/models/btc/v1.onnx`,
      downloadUrl: `${emulator.url}/models/btc/v1.onnx?download=1`,
      pathname: "models/btc/v1.onnx",
      size: "models/btc/v1.onnx".length,
      uploadedAt: expect.any(Date),
      etag: expect.any(String),
    });
  });

  it("filters by prefix", async () => {
    const result = await list({ token, prefix: "models/btc/" });
    expect(result.blobs.map((b) => b.pathname)).toEqual(["models/btc/v1.onnx", "models/btc/v2.onnx"]);
  });

  it("pages with limit and cursor", async () => {
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await list({ token, limit: 3, ...(cursor ? { cursor } : {}) });
      pages.push(page.blobs.map((b) => b.pathname));
      cursor = page.hasMore ? page.cursor : undefined;
    } while (cursor);
    expect(pages).toEqual([
      ["models/btc/v1.onnx", "models/btc/v2.onnx", "models/eth/v1.onnx"],
      ["readme.txt"],
    ]);
  });

  it("folds sub-folders with mode: folded", async () => {
    const root = await list({ token, mode: "folded" });
    expect(root.folders).toEqual(["models/"]);
    expect(root.blobs.map((b) => b.pathname)).toEqual(["readme.txt"]);
    const models = await list({ token, mode: "folded", prefix: "models/" });
    expect(models.folders).toEqual(["models/btc/", "models/eth/"]);
    expect(models.blobs).toEqual([]);
  });
});

describe("del()", () => {
  it("deletes one or many blobs by URL or pathname, ignoring missing ones", async () => {
    const a = await put("a.bin", "a", { access: "public", token });
    await put("b.bin", "b", { access: "public", token });
    await put("c.bin", "c", { access: "public", token });
    await del(a.url, { token });
    expect((await download(a.url)).status).toBe(404);
    await del(["b.bin", `${emulator.url}/c.bin`, "never-existed.bin"], { token });
    expect(emulator.blobs()).toEqual([]);
  });
});

describe("copy()", () => {
  it("copies the bytes and content type to a new pathname", async () => {
    const source = await put("models/btc/champion.onnx", "weights", { access: "public", token });
    const copied = await copy(source.url, "models/btc/v7.onnx", { access: "public", token });
    expect(copied.pathname).toBe("models/btc/v7.onnx");
    expect(new TextDecoder().decode((await download(copied.url)).bytes)).toBe("weights");
    await expect(copy("missing.onnx", "x.onnx", { access: "public", token })).rejects.toBeInstanceOf(
      BlobNotFoundError,
    );
  });
});

describe("authorisation", () => {
  it("rejects a wrong token with BlobAccessError", async () => {
    const wrong = "vercel_blob_rw_edgemldev_wrongsecret";
    await expect(put("x.txt", "x", { access: "public", token: wrong })).rejects.toBeInstanceOf(
      BlobAccessError,
    );
    await expect(list({ token: wrong })).rejects.toBeInstanceOf(BlobAccessError);
  });
});

describe("setFault()", () => {
  it('"500" makes every call fail with the error the client raises for a 5xx', async () => {
    const blob = await put("ok.txt", "ok", { access: "public", token });
    emulator.setFault("500");
    await expect(list({ token })).rejects.toBeInstanceOf(BlobUnknownError);
    await expect(put("y.txt", "y", { access: "public", token })).rejects.toBeInstanceOf(BlobUnknownError);
    expect((await download(blob.url)).status).toBe(500);
    emulator.setFault(null);
    expect((await list({ token })).blobs).toHaveLength(1);
  });

  it('"503" surfaces as BlobServiceNotAvailable', async () => {
    emulator.setFault("503");
    await expect(head("anything", { token })).rejects.toBeInstanceOf(BlobServiceNotAvailable);
  });

  it("fails only the next N requests with { times }, so the client's retry succeeds", async () => {
    process.env.VERCEL_BLOB_RETRIES = "1";
    try {
      emulator.setFault("500", { times: 1 });
      const blob = await put("retried.txt", "r", { access: "public", token });
      expect(blob.pathname).toBe("retried.txt");
      expect(
        emulator
          .requests()
          .slice(-2)
          .map((r) => [r.status, r.headers["x-api-blob-request-attempt"]]),
      ).toEqual([
        [500, "0"],
        [200, "1"],
      ]);
    } finally {
      process.env.VERCEL_BLOB_RETRIES = "0";
    }
  });
});
