import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type BlobEmulatorHandle, startBlobEmulator } from "../../scripts/dev/blob-emulator";
import { asEdgeMLError, EdgeMLError } from "../../src/errors.js";
import {
  type BlobClient,
  createBlobArtifactStore,
  vercelBlobClient,
} from "../../src/storage/blob-artifacts.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { tempDir } from "../support/paths.js";
import { artifactStoreContract, versionFiles } from "./artifact-store.contract.js";

let blob: BlobEmulatorHandle;
beforeAll(async () => {
  blob = await startBlobEmulator();
  // The real client reads both on every call. No retries: a fault must show at once, not after ten backoffs.
  process.env.VERCEL_BLOB_API_URL = blob.apiUrl;
  process.env.VERCEL_BLOB_RETRIES = "0";
});
afterAll(async () => {
  await blob?.close();
});

/** Each store gets a folder of its own in the one emulated Blob store. */
const freshPrefix = () => `test-${crypto.randomUUID().slice(0, 8)}/models/`;

artifactStoreContract("files under a directory (embedded)", async () => {
  const dir = await tempDir();
  return { store: createFsArtifactStore(join(dir.path, "models")), cleanup: dir.cleanup };
});

artifactStoreContract("Vercel Blob (@vercel/blob against the local Blob emulator)", async () => ({
  store: createBlobArtifactStore({ token: blob.token, prefix: freshPrefix() }),
}));

artifactStoreContract("Vercel Blob with private access", async () => ({
  store: createBlobArtifactStore({ token: blob.token, prefix: freshPrefix(), access: "private" }),
}));

describe("Vercel Blob artifacts: layout and failure modes", () => {
  it("stores a version as <prefix><model>/<version>/<sha256>.onnx plus metadata.json", async () => {
    const prefix = freshPrefix();
    const store = createBlobArtifactStore({ token: blob.token, prefix });
    const files = await versionFiles("sk.gbr", "1");
    await store.publish("sk.gbr", "1", files);
    const stored = blob.blobs().filter((b) => b.pathname.startsWith(prefix));
    expect(stored.map((b) => [b.pathname, b.size, b.access])).toEqual([
      [`${prefix}sk.gbr/1/${files.sha256}.onnx`, files.model.byteLength, "public"],
      [`${prefix}sk.gbr/1/metadata.json`, Buffer.byteLength(files.metadata), "public"],
    ]);
    // The bytes went up before the metadata that makes the version visible.
    const puts = blob
      .requests()
      .filter((r) => r.method === "PUT" && r.path.includes(encodeURIComponent(`${prefix}sk.gbr/1/`)));
    expect(puts.map((r) => decodeURIComponent(r.path).split("/").at(-1))).toEqual([
      `${files.sha256}.onnx`,
      "metadata.json",
    ]);
  });

  it("a publish whose metadata write fails leaves no version visible, and the version can be published again", async () => {
    let failMetadata = true;
    const flaky: BlobClient = {
      ...vercelBlobClient,
      put: (pathname, body, options) =>
        failMetadata && pathname.endsWith("metadata.json")
          ? Promise.reject(new Error("network down"))
          : vercelBlobClient.put(pathname, body, options),
    };
    const store = createBlobArtifactStore({ token: blob.token, prefix: freshPrefix(), client: flaky });
    const files = await versionFiles("m", "1");
    await expect(store.publish("m", "1", files)).rejects.toThrow("network down");
    expect(await store.listVersions("m")).toEqual([]);
    expect(await store.listModels()).toEqual([]);
    expect(await store.getMetadata("m", "1")).toBeNull();
    expect(await store.getModel("m", "1")).toBeNull();
    failMetadata = false;
    await store.publish("m", "1", files);
    expect(await store.getMetadata("m", "1")).toBe(files.metadata);
  });

  it("the loser of a race removes the bytes it uploaded", async () => {
    const prefix = freshPrefix();
    const store = createBlobArtifactStore({ token: blob.token, prefix });
    const winner = await versionFiles("m", "1");
    await store.publish("m", "1", winner);
    const loser = await versionFiles("m", "1");
    await expect(store.publish("m", "1", loser)).rejects.toMatchObject({ code: "conflict" });
    expect(
      blob
        .blobs()
        .filter((b) => b.pathname.startsWith(prefix))
        .map((b) => b.pathname),
    ).toEqual([`${prefix}m/1/${winner.sha256}.onnx`, `${prefix}m/1/metadata.json`]);
  });

  it("refuses metadata that does not carry the sha256 of the bytes", async () => {
    const store = createBlobArtifactStore({ token: blob.token, prefix: freshPrefix() });
    const files = await versionFiles("m", "1");
    await expect(
      store.publish("m", "1", { model: files.model, metadata: JSON.stringify({ sha256: "0".repeat(64) }) }),
    ).rejects.toThrow(/must carry the sha256 of its bytes/);
    expect(await store.listVersions("m")).toEqual([]);
  });

  it("Blob answering 500 fails the call (the registry turns that into a 503), and it works again after", async () => {
    const store = createBlobArtifactStore({ token: blob.token, prefix: freshPrefix() });
    await store.publish("m", "1", await versionFiles("m", "1"));
    blob.setFault("500");
    try {
      await expect(store.listVersions("m")).rejects.toThrow();
      await expect(store.getModel("m", "1")).rejects.toThrow();
    } finally {
      blob.setFault(null);
    }
    expect(await store.listVersions("m")).toEqual(["1"]);
  });

  it("a Blob API that never answers fails after the configured timeout instead of hanging", async () => {
    const hanging: BlobClient = { ...vercelBlobClient, list: () => new Promise(() => {}) };
    const store = createBlobArtifactStore({
      token: blob.token,
      prefix: freshPrefix(),
      client: hanging,
      apiTimeoutMs: 50,
    });
    await expect(store.listModels()).rejects.toThrow(/did not answer within 50 ms/);
  });

  it("a token the store refuses is a refusal: 503 store_unavailable naming BLOB_READ_WRITE_TOKEN, not a 500", async () => {
    const store = createBlobArtifactStore({
      token: "vercel_blob_rw_edgemldev_wrongsecret",
      prefix: freshPrefix(),
    });
    for (const call of [
      () => store.listModels(),
      async () => store.publish("m", "1", await versionFiles("m", "1")),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toMatchObject({ store: "Vercel Blob", failure: "refused" });
      expect(asEdgeMLError(error)).toMatchObject({
        code: "store_unavailable",
        status: 503,
        message: expect.stringMatching(/Vercel Blob refused the token: check that BLOB_READ_WRITE_TOKEN/),
      });
    }
  });

  it("rejects a token that is not a read-write Blob token when it is built", () => {
    expect(() => createBlobArtifactStore({ token: "vercel_blob_ro_x" })).toThrow(/read-write token/);
    expect(() => createBlobArtifactStore({ token: blob.token, prefix: "models" })).toThrow(/end with "\/"/);
  });

  it("reports a conflict as the registry's EdgeMLError", async () => {
    const store = createBlobArtifactStore({ token: blob.token, prefix: freshPrefix() });
    await store.publish("m", "1", await versionFiles("m", "1"));
    const error = await store.publish("m", "1", await versionFiles("m", "1")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EdgeMLError);
    expect((error as EdgeMLError).status).toBe(409);
  });
});

describe("embedded artifacts: durability", () => {
  it("flushes both files and both folders to the disk (fsync) around the rename that publishes a version", async () => {
    const dir = await tempDir();
    const probe = await open(join(dir.path, "probe"), "w");
    const handles = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const sync = vi.spyOn(handles, "sync");
    try {
      const store = createFsArtifactStore(join(dir.path, "models"));
      const files = await versionFiles("m", "1");
      await store.publish("m", "1", files);
      // model.onnx, metadata.json, the staging folder (before the rename) and the model's folder (after it).
      expect(sync).toHaveBeenCalledTimes(4);
      expect(await store.getMetadata("m", "1")).toBe(files.metadata);
    } finally {
      sync.mockRestore();
      await dir.cleanup();
    }
  });
});
