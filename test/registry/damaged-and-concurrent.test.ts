import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRegistry, type Deadline } from "../../src/registry/registry.js";
import type { ArtifactStore } from "../../src/storage/artifacts.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import {
  appOverFiles,
  onEmbeddedAdapters,
  postJson,
  type TestApp,
  testApp,
  testEngine,
  upload,
} from "../support/app.js";
import { elementwiseModel, variantOf } from "../support/onnx-models.js";
import { REPO_ROOT, tempDir } from "../support/paths.js";

const add = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
const mul = elementwiseModel({ op: "Mul", elem: "FP64", shape: ["batch", 1] });

/** An app over `artifacts` (default: files in `dir/models`) with pointers in `dir/pointers.json`. */
function appOver(dir: string, options: { artifacts?: ArtifactStore; inferTimeoutMs?: number } = {}) {
  return appOverFiles(
    { modelsDir: join(dir, "models"), pointersFile: join(dir, "pointers.json") },
    {
      ...(options.artifacts && { artifacts: options.artifacts }),
      config: options.inferTimeoutMs !== undefined ? { inferTimeoutMs: options.inferTimeoutMs } : {},
    },
  );
}

const inferBody = { inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [3] }] };

// Damaged files, stalled and failing stores: built on the files of the embedded adapters, so run once.
describe.runIf(onEmbeddedAdapters)("a version whose metadata.json is damaged is skipped and reported", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    dir = await tempDir();
    const s = appOver(dir.path);
    // v1 is the best by metric and the champion; then its metadata is cut short, as by a crash mid-write.
    expect((await upload(s, "m", add, { metrics: { skill: 0.9 } })).status).toBe(201);
    expect((await upload(s, "m", mul, { metrics: { skill: 0.1 } })).status).toBe(201);
    expect((await s.adminPost("/api/ml/models/m/promote", { version: "1" })).status).toBe(200);
    const file = join(dir.path, "models", "m", "1", "metadata.json");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.slice(0, text.length / 2));
  });
  afterEach(() => dir.cleanup());

  it("the default version serves: the readable one, since the champion cannot be read", async () => {
    const s = appOver(dir.path);
    const res = await postJson(s, "/v2/models/m/infer", inferBody);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-model-version")).toBe("2");
    expect((await s.request("/v2/models/m")).status).toBe(200);
  });

  it("the admin listing names it with the reason; the model's page lists the readable versions", async () => {
    const s = appOver(dir.path);
    const listed = await (await s.admin("/api/ml/models")).json();
    expect(listed.models).toEqual([
      expect.objectContaining({
        name: "m",
        versions: ["1", "2"],
        serving: { version: "2", via: "best" },
        unreadable: [{ version: "1", reason: expect.stringMatching(/metadata\.json is not valid JSON/) }],
      }),
    ]);
    const page = await (await s.admin("/api/ml/models/m")).json();
    expect(page.metadata.map((m: { version: string }) => m.version)).toEqual(["2"]);
  });

  it("asking for it by number is a 503 that says what to do, without file paths", async () => {
    const s = appOver(dir.path);
    for (const res of [
      await s.request("/v2/models/m/versions/1"),
      await postJson(s, "/v2/models/m/versions/1/infer", inferBody),
      await s.adminPost("/api/ml/models/m/promote", { version: "1" }),
    ]) {
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.code).toBe("model_unavailable");
      expect(body.error).toMatch(
        /m@1 cannot be read .*; it will not serve: re-register the model, or promote another version/,
      );
      expect(body.error).not.toContain(dir.path);
    }
  });

  it("a metadata.json of another model (a copied folder) is unreadable too", async () => {
    const other = join(dir.path, "models", "m", "2", "metadata.json");
    await writeFile(other, (await readFile(other, "utf8")).replace('"name": "m"', '"name": "x"'));
    const s = appOver(dir.path);
    const res = await postJson(s, "/v2/models/m/infer", inferBody);
    expect(res.status).toBe(503);
    expect((await res.json()).error).toMatch(/no version of 'm' can be read .*describes x@2/);
  });
});

describe("concurrent pointer changes are never lost", () => {
  // The adapters of the run: the JSON file in the embedded project, Edge Config (emulated) in the production one.
  let s: TestApp & { adminPost: (path: string, body: unknown) => Promise<Response> };
  beforeEach(async () => {
    const t = await testApp();
    s = {
      ...t,
      adminPost: (path, body) =>
        t.admin(path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
    };
  });
  afterEach(() => s.cleanup());

  it("a promote and a pin at once both answer 200 and both take effect, on every model", async () => {
    const models = ["a", "b", "c", "d"];
    for (const m of models) {
      expect((await upload(s, m, add)).status).toBe(201);
      expect((await upload(s, m, mul)).status).toBe(201);
    }
    const responses = await Promise.all(
      models.flatMap((m) => [
        s.adminPost(`/api/ml/models/${m}/promote`, { version: "2" }),
        s.adminPost(`/api/ml/models/${m}/pin`, { version: "1" }),
      ]),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(models.length * 2).fill(200));
    for (const m of models) {
      const page = await (await s.admin(`/api/ml/models/${m}`)).json();
      expect(page.pointers, m).toEqual({ champion: "2", pinned: "1" });
      expect(page.history.map((e: { action: string }) => e.action).sort(), m).toEqual(["pin", "promote"]);
    }
  });

  it("a rollback racing a promote steps back from the champion it finds, not a stale one", async () => {
    for (const model of [add, mul, variantOf(add, "v3")])
      expect((await upload(s, "m", model)).status).toBe(201);
    expect((await s.adminPost("/api/ml/models/m/promote", { version: "1" })).status).toBe(200);
    expect((await s.adminPost("/api/ml/models/m/promote", { version: "2" })).status).toBe(200);
    const [promoted, rolled] = await Promise.all([
      s.adminPost("/api/ml/models/m/promote", { version: "3" }),
      s.adminPost("/api/ml/models/m/rollback", {}),
    ]);
    expect([promoted.status, rolled.status]).toEqual([200, 200]);
    const { change } = await rolled.json();
    const page = await (await s.admin("/api/ml/models/m")).json();
    // Whichever ran second saw the first's result: the log replays to the pointers exactly.
    const last = page.history.at(-1);
    expect(page.pointers.champion).toBe(last.to);
    expect(change.from).toBe(change.to === "1" ? "2" : "3");
  });
});

/** A store that answers listings but whose metadata reads never answer: a Blob download stalled forever. */
function stalledMetadata(inner: ArtifactStore): ArtifactStore {
  return { ...inner, kind: inner.kind, getMetadata: () => new Promise<string | null>(() => {}) };
}

describe.runIf(onEmbeddedAdapters)("the request's deadline covers version resolution", () => {
  it("a resolution whose store read never answers rejects with prediction_timeout when the deadline's signal aborts", async () => {
    const dir = await tempDir();
    try {
      await appOver(dir.path).registry.register("m", add);
      const registry = createRegistry({
        artifacts: stalledMetadata(createFsArtifactStore(join(dir.path, "models"))),
        pointers: createJsonFilePointerStore(join(dir.path, "pointers.json")),
        engine: testEngine(),
        config: {
          registryListTtlMs: 5_000,
          bestMetric: "skill",
          bestMetricHigherIsBetter: true,
          inferTimeoutMs: 30_000,
        },
      });
      const controller = new AbortController();
      const deadline: Deadline = { at: Date.now() + 3_600_000, ms: 3_600_000, signal: controller.signal };
      const resolving = registry.resolve("m", undefined, deadline);
      const settled = resolving.then(
        () => "resolved",
        (error: unknown) => error,
      );
      // Nothing else can end it: the store never answers, and the deadline's timer is an hour away.
      await new Promise((r) => setImmediate(r));
      controller.abort();
      expect(await settled).toMatchObject({ code: "prediction_timeout", status: 504 });
    } finally {
      await dir.cleanup();
    }
  });

  it("OIP infer answers 504 prediction_timeout when the metadata read stalls", async () => {
    const dir = await tempDir();
    try {
      await appOver(dir.path).registry.register("m", add);
      const s = appOver(dir.path, {
        artifacts: stalledMetadata(createFsArtifactStore(join(dir.path, "models"))),
        inferTimeoutMs: 200,
      });
      const res = await postJson(s, "/v2/models/m/infer", inferBody);
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({
        code: "prediction_timeout",
        error: expect.stringMatching(/resolving the version of 'm' did not finish within 200 ms; try again/),
      });
    } finally {
      await dir.cleanup();
    }
  });

  it("a forecast answers 504 prediction_timeout when the metadata read stalls", async () => {
    const dir = await tempDir();
    try {
      const s = appOver(dir.path, {
        artifacts: stalledMetadata(createFsArtifactStore(join(REPO_ROOT, "models"))),
        inferTimeoutMs: 200,
      });
      const res = await postJson(s, "/api/ml/serve", { symbol: "BTC", horizon: "24h" });
      expect(res.status).toBe(504);
      expect((await res.json()).code).toBe("prediction_timeout");
    } finally {
      await dir.cleanup();
    }
  });
});

describe.runIf(onEmbeddedAdapters)("5xx messages of store failures never show paths or commands", () => {
  it.each([
    [
      "a file system error",
      Object.assign(new Error("EACCES: permission denied, open '/srv/edgeml/models/m/1/metadata.json'"), {
        code: "EACCES",
      }),
      /the model store is unreachable \(the file system answered EACCES\); try again shortly/,
    ],
    [
      "a Redis error with its command",
      new Error('ERR wrong number of arguments, command was: ["get","edgeml:secret"]'),
      /the model store is unreachable \(it answered an error\); try again shortly/,
    ],
  ])("%s", async (_label, failure, message) => {
    const dir = await tempDir();
    try {
      await appOver(dir.path).registry.register("m", add);
      const failing: ArtifactStore = {
        ...createFsArtifactStore(join(dir.path, "models")),
        getMetadata: () => Promise.reject(failure),
      };
      const res = await appOver(dir.path, { artifacts: failing }).request("/v2/models/m");
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.error).toMatch(message);
      expect(body.error).not.toMatch(/\/srv|edgeml:secret|command was/);
    } finally {
      await dir.cleanup();
    }
  });
});
