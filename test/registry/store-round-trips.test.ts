import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.js";
import type { ArtifactStore } from "../../src/storage/artifacts.js";
import { ADMIN_TOKEN, postJson, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel, variantOf } from "../support/onnx-models.js";

/** Counts every call the registry makes to its artifact store, as a Blob API bill would. */
function counting(inner: ArtifactStore) {
  const calls = { listModels: 0, listVersions: 0, getMetadata: 0, getModel: 0, publish: 0 };
  const count = <K extends keyof typeof calls>(key: K) => {
    calls[key] += 1;
  };
  const store: ArtifactStore = {
    kind: inner.kind,
    listModels: () => {
      count("listModels");
      return inner.listModels();
    },
    listVersions: (m) => {
      count("listVersions");
      return inner.listVersions(m);
    },
    getMetadata: (m, v) => {
      count("getMetadata");
      return inner.getMetadata(m, v);
    },
    getModel: (m, v) => {
      count("getModel");
      return inner.getModel(m, v);
    },
    publish: (m, v, f) => {
      count("publish");
      return inner.publish(m, v, f);
    },
  };
  const total = () => Object.values(calls).reduce((a, b) => a + b, 0);
  return { store, calls, total };
}

const add = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
const REQUESTS = 25;

describe("unauthenticated requests cost no store round trip", () => {
  let t: TestApp;
  let counted: ReturnType<typeof counting>;
  let request: (path: string, init?: RequestInit) => Promise<Response>;
  let admin: (path: string, init?: RequestInit) => Promise<Response>;

  beforeEach(async () => {
    // The adapters of the run: files in the embedded project, Vercel Blob (emulated) in the production one.
    t = await testApp();
    counted = counting(t.deps.artifacts);
    const { app } = createApp({
      ...t.deps,
      artifacts: counted.store,
      // A listing TTL far longer than the test: only the cache's own rules decide what reaches the store.
      config: { adminToken: ADMIN_TOKEN, registryListTtlMs: 600_000 },
    });
    request = async (path, init) => app.request(path, init);
    admin = (path, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${ADMIN_TOKEN}`);
      return request(path, { ...init, headers });
    };
    expect((await upload({ admin }, "m", add)).status).toBe(201);
    // Warm: the listing and m@1's metadata are read once.
    expect((await request("/v2/models/m")).status).toBe(200);
  });
  afterEach(() => t.cleanup());

  it.each([
    ["an unknown model's metadata", "/v2/models/nope"],
    ["an unknown model's readiness", "/v2/models/nope/ready"],
    ["an unknown version's metadata", "/v2/models/m/versions/99"],
    ["an unknown version's readiness", "/v2/models/m/versions/99/ready"],
  ])("%s: the first miss asks the store, the next ones are answered from memory", async (_label, path) => {
    const before = counted.total();
    for (let i = 0; i < REQUESTS; i++) expect((await request(path)).status).toBe(404);
    expect(counted.total() - before).toBeLessThanOrEqual(1);
  });

  it("an unknown model's infer requests: one store call at most", async () => {
    const before = counted.total();
    for (let i = 0; i < REQUESTS; i++) {
      const res = await postJson({ request }, "/v2/models/nope/infer", {
        inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [1] }],
      });
      expect(res.status).toBe(404);
    }
    expect(counted.total() - before).toBeLessThanOrEqual(1);
  });

  it("a scan of distinct unknown names and versions costs the store nothing while the listing is fresh", async () => {
    const before = counted.total();
    for (let i = 0; i < REQUESTS; i++) {
      expect((await request(`/v2/models/scan-${i}`)).status).toBe(404);
      expect((await request(`/v2/models/m/versions/${100 + i}`)).status).toBe(404);
    }
    expect(counted.total() - before).toBe(0);
  });

  it("readiness probes are answered from the cached listing", async () => {
    const before = counted.total();
    for (let i = 0; i < REQUESTS; i++) expect((await request("/v2/health/ready")).status).toBe(200);
    expect(counted.total() - before).toBe(0);
  });

  it("a registration in this process forgets the misses: the new model serves at once", async () => {
    expect((await request("/v2/models/late")).status).toBe(404);
    expect((await upload({ admin }, "late", add)).status).toBe(201);
    expect((await request("/v2/models/late")).status).toBe(200);
    expect((await upload({ admin }, "m", variantOf(add, "v2"))).status).toBe(201);
    expect((await request("/v2/models/m/versions/2")).status).toBe(200);
  });

  it("a burst of requests for an uncached version reads its metadata once", async () => {
    expect((await upload({ admin }, "m", variantOf(add, "v2"))).status).toBe(201);
    const fresh = createApp({ ...t.deps, artifacts: counted.store, config: { registryListTtlMs: 600_000 } });
    await fresh.registry.listModelNames();
    const before = counted.calls.getMetadata;
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => fresh.app.request("/v2/models/m/versions/1")),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(counted.calls.getMetadata - before).toBe(1);
  });
});
