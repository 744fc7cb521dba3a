import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { trainSymbol } from "../../src/forecast/training.js";
import { type Calibration, duplicateOf, sameCalibration } from "../../src/registry/duplicates.js";
import type { VersionMetadata } from "../../src/registry/metadata.js";
import { createRegistry } from "../../src/registry/registry.js";
import { protectedVersions, versionsToArchive } from "../../src/registry/retention.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import type { ModelPointers } from "../../src/storage/pointers.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { onEmbeddedAdapters, postJson, type TestApp, testApp, testEngine, upload } from "../support/app.js";
import { elementwiseModel, variantOf } from "../support/onnx-models.js";
import { tempDir } from "../support/paths.js";

/** y = x + x: every variant computes the same, with other bytes. */
const model = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
const goldenOf = (x: number) => ({
  atol: 0,
  cases: [
    {
      inputs: [{ name: "x", datatype: "FP64" as const, shape: [1, 1], data: [x] }],
      outputs: [{ name: "y", datatype: "FP64" as const, shape: [1, 1], data: [2 * x] }],
    },
  ],
});
const forecast = { symbol: "BTC", interval: "1d", horizon: "24h", horizon_bars: 1, target: "log_return" };
const featureSet = { name: "returns", version: 1 };

const infer = (t: TestApp, path: string) =>
  postJson(t, path, { inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [1] }] });
const detail = async (t: TestApp, name = "m") => (await t.admin(`/api/ml/models/${name}`)).json();
const adminPost = (t: TestApp, path: string, body: unknown = {}) =>
  t.admin(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("sameCalibration: what makes two registrations one version", () => {
  const base: Calibration = {
    sha256: "a".repeat(64),
    golden: goldenOf(1) as Calibration["golden"],
    forecast: forecast as Calibration["forecast"],
    feature_set: featureSet,
    feature_names: ["r1", "r5"],
  };
  it.each<[string, Partial<Calibration>, boolean]>([
    ["the same fields", {}, true],
    ["other bytes", { sha256: "b".repeat(64) }, false],
    ["other golden rows", { golden: goldenOf(3) as Calibration["golden"] }, false],
    ["another golden tolerance", { golden: { ...base.golden, atol: 1e-9 } as Calibration["golden"] }, false],
    [
      "another forecast horizon",
      { forecast: { ...forecast, horizon: "48h" } as Calibration["forecast"] },
      false,
    ],
    ["another feature set version", { feature_set: { name: "returns", version: 2 } }, false],
    ["other feature names", { feature_names: ["r1"] }, false],
    ["no golden rows where the other has some", { golden: undefined }, false],
    // Key order is how a client wrote the JSON, not what it means.
    [
      "the same forecast spec with its keys in another order",
      { forecast: { ...forecast } as Calibration["forecast"] },
      true,
    ],
  ])("%s → %s", (_, change, same) => {
    const other = { ...base, ...change };
    if (change.forecast)
      other.forecast = Object.fromEntries(Object.entries(change.forecast).reverse()) as never;
    expect(sameCalibration(base, other)).toBe(same);
  });

  it("a duplicate names the oldest version it equals", () => {
    const meta = (version: string) => ({ ...base, version }) as VersionMetadata;
    expect(duplicateOf(base, [meta("7"), meta("3")])?.version).toBe("3");
    expect(duplicateOf({ ...base, sha256: "c".repeat(64) }, [meta("3")])).toBeUndefined();
  });
});

describe("duplicate registrations register nothing and name the version they equal", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
    const first = await upload(t, "m", model, { golden: goldenOf(1), forecast, feature_set: featureSet });
    expect(first.status).toBe(201);
  });
  afterEach(() => t.cleanup());

  it.each<[string, () => Uint8Array, Record<string, unknown>, 200 | 201]>([
    ["same bytes, same calibration", () => model, {}, 200],
    // Metrics, tags and the description describe a run, not the model: the same model evaluated again is no version.
    [
      "same bytes and calibration, other metrics, tags and description",
      () => model,
      { metrics: { skill: 0.5 }, tags: { run: "2" }, description: "again" },
      200,
    ],
    ["same bytes, other golden rows", () => model, { golden: goldenOf(3) }, 201],
    ["same bytes, another forecast spec", () => model, { forecast: { ...forecast, horizon: "48h" } }, 201],
    ["same bytes, another feature set", () => model, { feature_set: { name: "returns", version: 2 } }, 201],
    ["other bytes, same calibration", () => variantOf(model, "retrained"), {}, 201],
  ])("%s → %s", async (_, bytes, change, status) => {
    const res = await upload(t, "m", bytes(), {
      golden: goldenOf(1),
      forecast,
      feature_set: featureSet,
      ...change,
    });
    expect(res.status).toBe(status);
    const body = await res.json();
    const page = await detail(t);
    if (status === 200) {
      expect(body).toMatchObject({ version: "1", duplicate_of: "1" });
      expect(res.headers.get("x-duplicate-of")).toBe("1");
      // Nothing written: the listing and the first version's metadata are as they were.
      expect(page.versions).toEqual(["1"]);
      expect(body.metrics).toEqual({});
    } else {
      expect(body.version).toBe("2");
      expect(body.duplicate_of).toBeUndefined();
      expect(res.headers.get("x-duplicate-of")).toBeNull();
      expect(page.versions).toEqual(["1", "2"]);
    }
  });

  it("identical registrations racing make one version; every other answer names it", async () => {
    const other = variantOf(model, "raced");
    const responses = await Promise.all(Array.from({ length: 6 }, () => upload(t, "m", other)));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 201]);
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(new Set(bodies.map((b) => b.version))).toEqual(new Set(["2"]));
    expect(bodies.filter((b) => b.duplicate_of === "2")).toHaveLength(5);
    expect((await detail(t)).versions).toEqual(["1", "2"]);
  });
});

describe("identical registrations from two processes", () => {
  // The lock is per process; across processes, the store's exclusive claim of a version number makes the loser of
  // a race re-read the versions, find the winner's and answer it.
  it.runIf(onEmbeddedAdapters)(
    "two registries on one directory make one version; every answer names it",
    async () => {
      const dir = await tempDir();
      try {
        const config = {
          registryListTtlMs: 0,
          bestMetric: "skill",
          bestMetricHigherIsBetter: true,
          inferTimeoutMs: 30_000,
        };
        const registries = [0, 1].map(() =>
          createRegistry({
            artifacts: createFsArtifactStore(`${dir.path}/models`),
            pointers: createJsonFilePointerStore(`${dir.path}/pointers.json`),
            engine: testEngine(),
            config,
          }),
        );
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            registries[i % 2]?.register("m", model, { golden: goldenOf(1) }),
          ),
        );
        expect(new Set(answers.map((a) => a?.version))).toEqual(new Set(["1"]));
        expect(answers.filter((a) => a?.duplicate_of === "1")).toHaveLength(7);
        expect(await createFsArtifactStore(`${dir.path}/models`).listVersions("m")).toEqual(["1"]);
      } finally {
        await dir.cleanup();
      }
    },
  );
});

describe("versionsToArchive: the newest N and every protected version stay", () => {
  const metas = (n: number, naive: string[] = []) =>
    Array.from({ length: n }, (_, i) => ({
      version: String(i + 1),
      tags: naive.includes(String(i + 1)) ? { family: "naive" } : { family: "gbdt" },
    }));
  const all = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));
  it.each<[string, number, ModelPointers, string[], string[]]>([
    ["fewer versions than N", 2, {}, [], []],
    ["no pointers: all but the newest 2", 5, {}, [], ["1", "2", "3"]],
    ["the champion and the pin are kept", 5, { champion: "1", pinned: "3" }, [], ["2"]],
    ["every canary is kept", 5, { canary: { "2": 0.1, "1": 0 } }, [], ["3"]],
    ["naive baselines are kept", 5, {}, ["1"], ["2", "3"]],
    ["restored versions are kept", 5, { kept: ["2"] }, [], ["1", "3"]],
    [
      "archived ones are not archived again",
      5,
      { archived: { "1": { at: "t", reason: "r" } } },
      [],
      ["2", "3"],
    ],
  ])("%s", (_, n, pointers, naive, expected) => {
    const input = { versions: all(n), pointers, metas: metas(n, naive), retain: 2 };
    expect(versionsToArchive(input)).toEqual(expected);
  });

  it("says why each protected version is kept", () => {
    const pointers: ModelPointers = { champion: "1", pinned: "2", canary: { "3": 0.2 }, kept: ["5"] };
    expect(Object.fromEntries(protectedVersions(pointers, metas(5, ["4"])))).toEqual({
      "1": "champion",
      "2": "pinned",
      "3": "canary",
      "4": "naive baseline",
      "5": "restored",
    });
  });

  it("a version whose metadata cannot be read is left alone (its family is unknown)", () => {
    expect(
      versionsToArchive({ versions: all(4), pointers: {}, metas: metas(4).slice(1), retain: 2 }),
    ).toEqual(["2"]);
  });
});

describe("retention: RETAIN_VERSIONS=2 archives older versions as new ones register", () => {
  let t: TestApp;
  /** Registers version i of m (a variant of the model) with a skill: v1 the best, so resolution would pick it. */
  const register = async (i: number, extra: Record<string, unknown> = {}) => {
    const res = await upload(t, "m", variantOf(model, `v${i}`), {
      metrics: { skill: i === 1 ? 0.9 : 0.1 },
      ...extra,
    });
    expect(res.status).toBe(201);
    return res.json();
  };
  beforeEach(async () => {
    t = await testApp({ retainVersions: 2 });
  });
  afterEach(() => t.cleanup());

  it("the third registration archives the first: listed with when and why, in the audit log", async () => {
    await register(1);
    expect((await register(2)).archived).toBeUndefined();
    expect((await register(3)).archived).toEqual(["1"]);
    const page = await detail(t);
    expect(page.versions).toEqual(["1", "2", "3"]);
    expect(page.archived).toEqual([
      {
        version: "1",
        archived: true,
        at: expect.any(String),
        reason: "retention: older than the newest 2 versions when 3 was registered",
      },
    ]);
    expect(page.history.map((e: { action: string; to: string }) => [e.action, e.to])).toEqual([
      ["archive", "1"],
    ]);
    expect(page.history[0].reason).toContain("retention");
  });

  it("an archived version never serves: resolution skips it, a request naming it is 410 with the way back", async () => {
    for (const i of [1, 2, 3]) await register(i);
    // v1 has the best skill: without archival it would serve.
    expect((await infer(t, "/v2/models/m/infer")).headers.get("x-model-version")).toBe("3");
    const named = await infer(t, "/v2/models/m/versions/1/infer");
    expect(named.status).toBe(410);
    const error = await named.json();
    expect(error.code).toBe("version_archived");
    expect(error.error).toContain("POST /api/ml/models/m/versions/1/restore");
    expect(error.error).toContain("npm run cli -- restore m 1");
    // Still listed: its metadata reads as before.
    expect((await t.admin("/api/ml/models/m/versions/1")).status).toBe(200);
    // No pointer may name it until it is restored.
    expect((await adminPost(t, "/api/ml/models/m/promote", { version: "1" })).status).toBe(410);
    expect((await adminPost(t, "/api/ml/models/m/pin", { version: "1" })).status).toBe(410);
  });

  it("restore brings it back, and retention keeps it from then on", async () => {
    for (const i of [1, 2, 3]) await register(i);
    const restored = await adminPost(t, "/api/ml/models/m/versions/1/restore", { reason: "audit wants it" });
    expect(restored.status).toBe(200);
    expect((await restored.json()).change).toMatchObject({
      action: "restore",
      to: "1",
      reason: "audit wants it",
    });
    expect((await infer(t, "/v2/models/m/versions/1/infer")).status).toBe(200);
    // Best by skill again.
    expect((await infer(t, "/v2/models/m/infer")).headers.get("x-model-version")).toBe("1");
    expect((await register(4)).archived).toEqual(["2"]);
    const page = await detail(t);
    expect(page.archived.map((a: { version: string }) => a.version)).toEqual(["2"]);
    expect(page.pointers.kept).toEqual(["1"]);
  });

  it("restoring a version that is not archived is a 409 saying so; an unknown one a 404", async () => {
    await register(1);
    // No body at all: the reason is optional.
    const res = await t.admin("/api/ml/models/m/versions/1/restore", { method: "POST" });
    expect(res.status).toBe(409);
    expect((await res.json()).error).toContain("is not archived");
    expect((await adminPost(t, "/api/ml/models/m/versions/9/restore")).status).toBe(404);
  });

  it("the champion, the pin, a canary and the naive baseline are never archived", async () => {
    await register(1, { tags: { family: "naive" } });
    await register(2);
    expect((await adminPost(t, "/api/ml/models/m/promote", { version: "2" })).status).toBe(200);
    await register(3);
    await register(4);
    expect((await adminPost(t, "/api/ml/models/m/pin", { version: "4" })).status).toBe(200);
    await register(5);
    await t.deps.pointers.update("m", (current) => ({
      pointers: { ...current, canary: { "5": 0.1 } },
      entry: {
        at: new Date().toISOString(),
        model: "m",
        action: "pin",
        from: null,
        to: "5",
        reason: "canary",
      },
    }));
    for (const i of [6, 7, 8]) await register(i);
    // Newest two: 7, 8. Protected: 1 naive, 2 champion, 4 pinned, 5 canary. 3 went when 5 registered.
    const page = await detail(t);
    expect(page.archived.map((a: { version: string }) => a.version)).toEqual(["3", "6"]);
    expect(page.serving).toEqual({ version: "4", via: "pinned" });
  });

  it("every version archived: the model answers 503 no_model saying how to restore one", async () => {
    for (const i of [1, 2, 3]) await register(i);
    await t.deps.pointers.update("m", (current) => ({
      pointers: {
        ...current,
        archived: {
          ...current.archived,
          "2": { at: "now", reason: "test" },
          "3": { at: "now", reason: "test" },
        },
      },
      entry: { at: new Date().toISOString(), model: "m", action: "archive", from: null, to: "2,3" },
    }));
    const res = await infer(t, "/v2/models/m/infer");
    expect(res.status).toBe(503);
    expect((await res.json()).error).toContain("every version of 'm' is archived");
  });
});

describe("a retrain on unchanged data with the same seed registers nothing", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(() => t.cleanup());

  it("the second run reports the version it equals", async () => {
    const train = () =>
      trainSymbol({
        trainer: trainForecaster,
        symbol: "ETH",
        market: t.deps.market,
        registry: t.app.registry,
        plan: { families: ["ridge"], seed: 42 },
        until: new Date("2025-12-28T00:00:00Z"),
      });
    const first = await train();
    expect(first.map((v) => v.duplicate_of)).toEqual(first.map(() => undefined));
    const listed = (await detail(t, "ETH-24h")).versions;
    const second = await train();
    // Each trained model names the version of the first run it equals; the registry lists what it listed.
    expect(second.map((v) => [v.family, v.duplicate_of])).toEqual(first.map((v) => [v.family, v.version]));
    expect((await detail(t, "ETH-24h")).versions).toEqual(listed);
  });
});
