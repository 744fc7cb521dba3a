import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createRegistry } from "../../src/registry/registry.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { onEmbeddedAdapters, testApp, testEngine, upload } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";
import { tempDir } from "../support/paths.js";

/**
 * Tests that read the versions' folders on disk run on the embedded adapters only; the production-adapters run
 * lists the blobs instead (test/storage/resilience.test.ts).
 */
const onDisk = it.runIf(onEmbeddedAdapters);

/** Distinct models, so a version's bytes tell which registration wrote it. */
const modelOf = (i: number) => elementwiseModel({ op: "Add", elem: "FP32", shape: ["batch", i + 1] });

describe("racing registrations of one name", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  onDisk("through one app: every registration gets its own complete version, numbered 1..N", async () => {
    const t = await testApp();
    cleanups.push(t.cleanup);
    const n = 12;
    const responses = await Promise.all(Array.from({ length: n }, (_, i) => upload(t, "raced", modelOf(i))));
    expect(responses.map((r) => r.status)).toEqual(Array(n).fill(201));
    const versions = (await Promise.all(responses.map((r) => r.json()))).map((m) => m.version);
    expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)));
    await expectWholeVersions(join(t.dir, "models", "raced"), n);
  });

  it("between two registries on one directory (two processes): no version is written twice or by half", async () => {
    const dir = await tempDir();
    cleanups.push(dir.cleanup);
    const config = {
      registryListTtlMs: 0,
      bestMetric: "skill",
      bestMetricHigherIsBetter: true,
      inferTimeoutMs: 30_000,
    };
    const registries = [0, 1].map(() =>
      createRegistry({
        artifacts: createFsArtifactStore(join(dir.path, "models")),
        pointers: createJsonFilePointerStore(join(dir.path, "pointers.json")),
        engine: testEngine(),
        config,
      }),
    );
    const n = 16;
    const metas = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        registries[i % 2]?.register("raced", modelOf(i), { tags: { i: String(i) } }),
      ),
    );
    const byVersion = new Map(metas.map((m) => [m?.version, m?.tags.i]));
    expect(byVersion.size).toBe(n);
    // Each version's files are the ones its registration wrote: the model's input width is i + 1.
    for (const meta of metas) {
      const read = await registries[0]?.metadata("raced", meta?.version ?? "");
      expect(read?.signature.inputs[0]?.shape).toEqual([-1, Number(meta?.tags.i) + 1]);
      expect(read?.sha256).toBe(meta?.sha256);
    }
    await expectWholeVersions(join(dir.path, "models", "raced"), n);
  });
});

async function expectWholeVersions(dir: string, n: number) {
  const entries = (await readdir(dir)).sort((a, b) => Number(a) - Number(b));
  // No staging folders left behind, no gaps, no extra versions.
  expect(entries).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)));
  for (const v of entries)
    expect((await readdir(join(dir, v))).sort()).toEqual(["metadata.json", "model.onnx"]);
}
