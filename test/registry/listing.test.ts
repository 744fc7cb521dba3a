import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRegistry } from "../../src/registry/registry.js";
import type { ArtifactStore } from "../../src/storage/artifacts.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { testEngine } from "../support/app.js";
import { elementwiseModel, variantOf } from "../support/onnx-models.js";
import { tempDir } from "../support/paths.js";

/** A store whose list calls can be made to hang or fail, like a Blob API in trouble. */
function troubledStore(inner: ArtifactStore) {
  let mode: "ok" | "hang" | "fail" = "ok";
  let listCalls = 0;
  const gate = <T>(work: () => Promise<T>): Promise<T> => {
    listCalls += 1;
    if (mode === "hang") return new Promise<T>(() => {});
    if (mode === "fail") return Promise.reject(new Error("blob: 500"));
    return work();
  };
  const store: ArtifactStore = {
    ...inner,
    listModels: () => gate(() => inner.listModels()),
    listVersions: (model) => gate(() => inner.listVersions(model)),
  };
  return {
    store,
    set: (next: typeof mode) => {
      mode = next;
    },
    listCalls: () => listCalls,
  };
}

const model = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });

/** A registry over `store` with pointers in `dir`; `registryListTtlMs` 0 expires every listing at once. */
function registryOver(store: ArtifactStore, dir: string, registryListTtlMs = 0) {
  return createRegistry({
    artifacts: store,
    pointers: createJsonFilePointerStore(join(dir, "pointers.json")),
    engine: testEngine(),
    config: {
      registryListTtlMs,
      bestMetric: "skill",
      bestMetricHigherIsBetter: true,
      inferTimeoutMs: 30_000,
    },
  });
}

describe("the registry's listing: stale while revalidate", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let troubled: ReturnType<typeof troubledStore>;
  let registry: ReturnType<typeof createRegistry>;
  beforeEach(async () => {
    dir = await tempDir();
    troubled = troubledStore(createFsArtifactStore(join(dir.path, "models")));
    // Every listing is expired at once: each resolution would hit the store if it waited for it.
    registry = registryOver(troubled.store, dir.path);
    await registry.register("m", model);
    await registry.resolve("m");
  });
  afterEach(() => dir.cleanup());

  it("an expired listing answers at once while the store's list call hangs", async () => {
    troubled.set("hang");
    expect((await registry.resolve("m")).meta.version).toBe("1");
    expect((await registry.resolve("m")).meta.version).toBe("1");
  });

  it("refreshes in the background, one list call at a time", async () => {
    troubled.set("hang");
    const before = troubled.listCalls();
    await Promise.all(Array.from({ length: 10 }, () => registry.resolve("m")));
    // One refresh started (listModels); the other nine resolutions joined it instead of listing again.
    expect(troubled.listCalls() - before).toBe(1);
  });

  it("a failing store keeps the last listing", async () => {
    troubled.set("fail");
    expect((await registry.resolve("m")).meta.version).toBe("1");
  });

  it("a version registered here is visible at once, even with a refresh of the old listing in flight", async () => {
    const slow = troubledStore(createFsArtifactStore(join(dir.path, "models")));
    const other = registryOver(slow.store, dir.path);
    await other.resolve("m");
    slow.set("hang");
    await other.resolve("m"); // starts a refresh that never finishes
    slow.set("ok");
    await other.register("m", variantOf(model, "v2"));
    expect((await other.resolve("m")).meta.version).toBe("2");
  });

  it("readiness answers from the listing: not ready after a failed refresh, ready again after a good one", async () => {
    // A store whose list calls answer from memory, at once or failing: its refreshes settle within promise jobs,
    // and setImmediate runs after every pending one, so each step below sees the last refresh's outcome.
    let failing = false;
    const inner = createFsArtifactStore(join(dir.path, "models"));
    const listed = (value: string[]) =>
      failing ? Promise.reject(new Error("blob: 500")) : Promise.resolve(value);
    const memory = registryOver(
      { ...inner, listModels: () => listed(["m"]), listVersions: () => listed(["1"]) },
      dir.path,
    );
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    expect(await memory.ready()).toBe(true);
    await settle();
    failing = true;
    await memory.ready(); // starts a refresh, which fails
    await settle();
    expect(await memory.ready()).toBe(false);
    await settle();
    failing = false;
    await memory.ready();
    await settle();
    expect(await memory.ready()).toBe(true);
  });

  it("with no listing yet, a store outage is a 503", async () => {
    const fresh = troubledStore(createFsArtifactStore(join(dir.path, "models")));
    fresh.set("fail");
    const cold = registryOver(fresh.store, dir.path, 5_000);
    await expect(cold.resolve("m")).rejects.toMatchObject({ code: "model_unavailable", status: 503 });
  });
});
