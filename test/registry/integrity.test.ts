import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.js";
import { createOrtEngine, type InferenceEngine } from "../../src/inference/engine.js";
import { onEmbeddedAdapters, postJson, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";

const add = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
const mul = elementwiseModel({ op: "Mul", elem: "FP64", shape: ["batch", 1] });
const golden = {
  cases: [
    {
      inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [3] }],
      outputs: [{ name: "y", datatype: "FP64", shape: [1, 1], data: [6] }],
    },
  ],
};
/**
 * Tests that tamper with the files on disk run on the embedded adapters only; the production-adapters run tampers
 * with the blob instead (test/storage/resilience.test.ts).
 */
const onDisk = it.runIf(onEmbeddedAdapters);

const infer = (t: Pick<TestApp, "request">) =>
  postJson(t, "/v2/models/m/infer", { inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [3] }] });

/** A fresh app (and process-level caches) over the same directory: what a restart or another instance sees. */
function reopen(t: TestApp, engine?: InferenceEngine) {
  const { app } = createApp({ ...t.deps, ...(engine && { engine }) });
  return { request: async (path: string, init?: RequestInit) => app.request(path, init) };
}

describe("a version serves only while it verifies", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
    expect((await upload(t, "m", add, { golden })).status).toBe(201);
  });
  afterEach(() => t.cleanup());

  onDisk("bytes that no longer match the sha256 in the metadata are never served", async () => {
    await writeFile(join(t.dir, "models/m/1/model.onnx"), mul);
    const res = await infer(reopen(t, freshEngine()));
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.code).toBe("model_unavailable");
    expect(body.error).toContain("failed its integrity check");
  });

  onDisk("a version whose golden rows no longer reproduce is never served", async () => {
    // Rewrite bytes and sha256 consistently: only the golden rows can notice.
    const path = join(t.dir, "models/m/1/metadata.json");
    const meta = JSON.parse(await readFile(path, "utf8"));
    const digest = await crypto.subtle.digest("SHA-256", mul as Uint8Array<ArrayBuffer>);
    meta.sha256 = Buffer.from(digest).toString("hex");
    meta.size_bytes = mul.byteLength;
    await writeFile(path, JSON.stringify(meta));
    await writeFile(join(t.dir, "models/m/1/model.onnx"), mul);
    const res = await infer(reopen(t, freshEngine()));
    expect(res.status).toBe(503);
    expect((await res.json()).error).toContain("no longer reproduces its golden rows");
  });

  it("an intact version verifies and serves", async () => {
    const res = await infer(reopen(t, freshEngine()));
    expect(res.status).toBe(200);
    expect((await res.json()).outputs[0].data).toEqual([6]);
  });

  onDisk("the model readiness endpoint reports a version that fails verification as 503", async () => {
    await writeFile(join(t.dir, "models/m/1/model.onnx"), mul);
    expect((await reopen(t, freshEngine()).request("/v2/models/m/ready")).status).toBe(503);
  });
});

/** A new engine: no warm session of the version survives from before the tampering. */
function freshEngine(): InferenceEngine {
  return createOrtEngine({ maxSessions: 4, maxSessionBytes: 1 << 20, timeoutMs: 30_000 });
}
