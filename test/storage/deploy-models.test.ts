import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeployReport, deployModels } from "../../scripts/deploy_models";
import { type BlobEmulatorHandle, startBlobEmulator } from "../../scripts/dev/blob-emulator";
import {
  type EdgeConfigEmulatorHandle,
  startEdgeConfigEmulator,
} from "../../scripts/dev/edge-config-emulator";
import { createRegistry } from "../../src/registry/registry.js";
import { createUpstashAuditLog } from "../../src/storage/audit-log.js";
import { createBlobArtifactStore } from "../../src/storage/blob-artifacts.js";
import { createEdgeConfigPointerStore } from "../../src/storage/edge-config-pointers.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { testEngine } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";
import { REPO_ROOT, tempDir } from "../support/paths.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "./support/upstash.js";

/** The audit log of pointer changes lives in Upstash Redis beside Edge Config's pointers, as in production. */
const upstash = useLocalUpstash();

let blob: BlobEmulatorHandle;
let edge: EdgeConfigEmulatorHandle;
let models: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  blob = await startBlobEmulator();
  edge = await startEdgeConfigEmulator();
  process.env.VERCEL_BLOB_API_URL = blob.apiUrl;
  process.env.VERCEL_BLOB_RETRIES = "0";
  // An embedded registry as `npm run train` leaves it: versions on disk and a pointers file with its audit log.
  models = await tempDir("edgeml-deploy-");
  const registry = createRegistry({
    artifacts: createFsArtifactStore(models.path),
    pointers: createJsonFilePointerStore(join(models.path, "pointers.json")),
    engine: testEngine(),
    config: {
      registryListTtlMs: 0,
      bestMetric: "skill",
      bestMetricHigherIsBetter: true,
      inferTimeoutMs: 30_000,
    },
  });
  const add = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
  const mul = elementwiseModel({ op: "Mul", elem: "FP64", shape: ["batch", 1] });
  await registry.register("add", add, { metrics: { skill: 0.1 } });
  await registry.register("add", mul, { metrics: { skill: 0.2 } });
  await registry.register("sk.gbr", add);
  await registry.promote("add", "1");
  await registry.promote("add", "2");
  await registry.pin("sk.gbr", "1");
});
afterAll(async () => {
  await blob?.close();
  await edge?.close();
  await models?.cleanup();
});

function target() {
  const namespace = `t${crypto.randomUUID().slice(0, 8)}`;
  const env = {
    BLOB_READ_WRITE_TOKEN: blob.token,
    BLOB_PREFIX: `${namespace}/models/`,
    EDGE_CONFIG: edge.connectionString,
    EDGE_CONFIG_KEY_PREFIX: namespace,
    VERCEL_API_TOKEN: edge.apiToken,
    VERCEL_API_URL: edge.url,
    UPSTASH_REDIS_REST_URL: upstash.bridge.url,
    UPSTASH_REDIS_REST_TOKEN: "test-token",
    UPSTASH_KEY_PREFIX: `${namespace}:`,
    UPSTASH_TIMEOUT_MS: String(TEST_STORE_TIMEOUT_MS),
  };
  return {
    env,
    namespace,
    blobs: () => blob.blobs().filter((b) => b.pathname.startsWith(`${namespace}/`)),
    artifacts: createBlobArtifactStore({ token: blob.token, prefix: env.BLOB_PREFIX }),
    pointers: createEdgeConfigPointerStore({
      connectionString: edge.connectionString,
      keyPrefix: namespace,
      cacheTtlMs: 0,
      audit: createUpstashAuditLog(upstash.client(), {
        prefix: `${namespace}:`,
        timeoutMs: TEST_STORE_TIMEOUT_MS,
      }),
    }),
  };
}

const deploy = async (env: Record<string, string>, dryRun = false) => {
  const lines: string[] = [];
  const report = await deployModels({ modelsDir: models.path, env, dryRun, log: (l) => lines.push(l) });
  return { report, lines };
};

const counts = (r: DeployReport) => ({
  uploaded: r.uploaded.length,
  skipped: r.skipped.length,
  conflicts: r.conflicts.length,
  pointersChanged: r.pointersChanged.length,
  pointersUnchanged: r.pointersUnchanged.length,
  errors: r.errors.length,
});

describe("npm run deploy:models", () => {
  it("uploads every version and sets the pointers; a second run uploads nothing and changes nothing", async () => {
    const t = target();
    const first = await deploy(t.env);
    expect(first.report).toMatchObject({
      uploaded: ["add@1", "add@2", "sk.gbr@1"],
      pointersChanged: ["add", "sk.gbr"],
    });
    expect(counts(first.report)).toMatchObject({ conflicts: 0, errors: 0 });
    expect(first.lines.at(-1)).toBe(
      "done: 3 uploaded, 0 already in Blob, 2 pointer changes, 0 conflicts, 0 errors",
    );
    // What production now serves is exactly the embedded registry.
    const local = createFsArtifactStore(models.path);
    for (const [name, version] of [
      ["add", "1"],
      ["add", "2"],
      ["sk.gbr", "1"],
    ] as const) {
      expect(await t.artifacts.getMetadata(name, version)).toBe(await local.getMetadata(name, version));
    }
    expect(await t.pointers.get("add")).toEqual({ champion: "2" });
    expect(await t.pointers.get("sk.gbr")).toEqual({ pinned: "1" });
    expect(await t.pointers.history("add")).toEqual([
      expect.objectContaining({
        action: "promote",
        from: null,
        to: "2",
        reason: expect.stringMatching(/deploy:models/),
      }),
    ]);

    const writes = () =>
      [...blob.requests(), ...edge.requests()].filter((r) => r.method === "PUT" || r.method === "PATCH");
    const before = writes().length;
    const blobsBefore = t.blobs();
    const second = await deploy(t.env);
    expect(counts(second.report)).toEqual({
      uploaded: 0,
      skipped: 3,
      conflicts: 0,
      pointersChanged: 0,
      pointersUnchanged: 2,
      errors: 0,
    });
    expect(writes().length).toBe(before);
    expect(t.blobs()).toEqual(blobsBefore);
  });

  it("--dry-run prints the plan and writes nothing", async () => {
    const t = target();
    const { report, lines } = await deploy(t.env, true);
    expect(counts(report)).toMatchObject({ uploaded: 3, pointersChanged: 2, errors: 0 });
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}upload {4}add@1 /));
    expect(lines).toContainEqual("  would set pointers of add: champion - → champion 2");
    expect(lines.at(-1)).toBe(
      "plan: 3 to upload, 0 already in Blob, 2 pointer changes to make, 0 conflicts, 0 errors",
    );
    expect(t.blobs()).toEqual([]);
    expect(Object.keys(edge.items()).filter((k) => k.startsWith(t.namespace))).toEqual([]);
  });

  it("reports a version that Blob holds with other bytes as a conflict and leaves it alone", async () => {
    const t = target();
    await deploy(t.env);
    // Blob's add@1 replaced behind the deploy's back by other (valid) files.
    const other = await tempDir();
    try {
      const registry = createRegistry({
        artifacts: createFsArtifactStore(other.path),
        pointers: createJsonFilePointerStore(join(other.path, "pointers.json")),
        engine: testEngine(),
        config: {
          registryListTtlMs: 0,
          bestMetric: "skill",
          bestMetricHigherIsBetter: true,
          inferTimeoutMs: 30_000,
        },
      });
      await registry.register("add", elementwiseModel({ op: "Mul", elem: "FP32", shape: ["batch", 2] }));
      await registry.register("add", elementwiseModel({ op: "Mul", elem: "FP32", shape: ["batch", 3] }));
      await registry.register("add", elementwiseModel({ op: "Mul", elem: "FP32", shape: ["batch", 4] }));
      const fresh = target();
      await deployModels({ modelsDir: other.path, env: fresh.env, log: () => {} });
      const { report, lines } = await deploy(fresh.env);
      expect(report.conflicts).toEqual(["add@1", "add@2"]);
      expect(lines).toContainEqual(expect.stringMatching(/CONFLICT {2}add@1 .*versions are immutable/));
      // sk.gbr@1 was new there; add's pointer names add@2, which conflicted, so it is not set.
      expect(report.uploaded).toEqual(["sk.gbr@1"]);
      expect(report.errors).toEqual(["add"]);
      expect(await fresh.pointers.get("add")).toEqual({});
    } finally {
      await other.cleanup();
    }
  });

  it("names the variable that is missing", async () => {
    const t = target();
    const { BLOB_READ_WRITE_TOKEN: _b, ...noBlob } = t.env;
    await expect(deploy(noBlob)).rejects.toThrow(/BLOB_READ_WRITE_TOKEN is required to deploy/);
    const { VERCEL_API_TOKEN: _v, ...noApiToken } = t.env;
    await expect(deploy(noApiToken)).rejects.toThrow(/VERCEL_API_TOKEN/);
    // A dry run only reads, so it needs no API token.
    await expect(deploy(noApiToken, true)).resolves.toMatchObject({ report: { errors: [] } });
  });

  it("runs as a command: prints the plan, exit code 0", async () => {
    const t = target();
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, "node_modules/.bin/tsx"),
      ["scripts/deploy_models.ts", "--dry-run", "--models-dir", models.path],
      { cwd: REPO_ROOT, env: { ...process.env, ...t.env } },
    );
    expect(stdout).toContain("plan: 3 to upload");
  });
});
