import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FEATURE_NAMES, FEATURE_SET } from "../../src/features/index.js";
import { trainSymbol } from "../../src/forecast/training.js";
import { createOrtEngine } from "../../src/inference/engine.js";
import type { AuditEntry } from "../../src/storage/pointers.js";
import type { TrainedForecaster, TrainForecasterInput } from "../../src/training/forecaster.js";
import { exportNaive } from "../../src/training/onnx/export.js";
import {
  forecasterBytes,
  NAIVE_MAPE,
  QUARTERS,
  registration,
  type VersionSpec,
  walkForward,
} from "../selection/support.js";
import { postJson, testApp as sharedEngineApp, type TestApp, upload } from "../support/app.js";
import { elementwiseModel, variantOf } from "../support/onnx-models.js";

const NAME = "BTC-24h";

/**
 * An app with an engine of its own: every test here registers BTC-24h@1, @2, ... with other bytes, and warm sessions
 * are keyed by name@version, so a shared engine would run another test's version.
 */
const testApp = (config: Parameters<typeof sharedEngineApp>[0] = {}) =>
  sharedEngineApp(
    config,
    createOrtEngine({
      maxSessions: 32,
      maxSessionBytes: 1 << 30,
      timeoutMs: 30_000,
      maxOutputBytes: 16 << 20,
    }),
  );
/** Inside the shipped CSVs: a forecast as it would have been made then (a live one on the CSVs is stale). */
const AS_OF = "2026-03-20";
const better = (by: number) => QUARTERS.map(() => NAIVE_MAPE - by);

const adminPost = (t: TestApp, path: string, body: unknown) =>
  t.admin(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** Registers versions of BTC-24h in order (v1, v2, ...): real 30-feature ONNX models, metadata from the specs. */
async function register(t: TestApp, ...specs: VersionSpec[]): Promise<string[]> {
  const versions: string[] = [];
  for (const spec of specs) {
    const tilt = (await t.app.registry.versionNames(NAME).catch(() => [])).length * 1e-4;
    const meta = await t.app.registry.register(NAME, forecasterBytes(spec.family, tilt), registration(spec));
    versions.push(meta.version);
  }
  return versions;
}

const pointers = async (t: TestApp) => (await (await t.admin(`/api/ml/models/${NAME}`)).json()).pointers;
const serving = async (t: TestApp) => (await (await t.admin(`/api/ml/models/${NAME}`)).json()).serving;
const history = async (t: TestApp): Promise<AuditEntry[]> =>
  (await (await t.admin(`/api/ml/models/${NAME}`)).json()).history;

describe("the selection policy (strict) writes the champion where training runs", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(() => t.cleanup());

  it.each<[string, VersionSpec[], string, boolean]>([
    ["no version significant → naive", [{ family: "naive" }, { p: 0.3 }, { p: 0.06, skill: 0.5 }], "1", true],
    ["a significant version → it", [{ family: "naive" }, { p: 0.3 }, { p: 0.001 }], "3", false],
    // Holm across 3 candidates: 0.02, 0.03, 0.04 each pass alone; 3 × 0.02 = 0.06 does not.
    [
      "Holm across 3 candidates each below α alone → naive",
      [{ family: "naive" }, { p: 0.02 }, { p: 0.03 }, { p: 0.04 }],
      "1",
      true,
    ],
  ])("%s", async (_, specs, champion, naive) => {
    await register(t, ...specs);
    const outcome = await t.app.registry.select(NAME);
    expect(outcome.entry).toMatchObject({ action: "promote", to: champion, automatic: true });
    expect(await pointers(t)).toEqual({ champion, automatic: true });
    expect(await serving(t)).toEqual({ version: champion, via: "champion" });
    const served = await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: AS_OF });
    expect(await served.json()).toMatchObject({ model_version: champion, beats_naive: !naive });
  });

  it("the audit entry is marked automatic and carries the evidence: test, level, p-value, window, folds", async () => {
    await register(t, { family: "naive" }, { p: 0.01 });
    await t.app.registry.select(NAME);
    expect((await history(t)).at(-1)).toEqual({
      at: expect.any(String),
      model: NAME,
      action: "promote",
      from: null,
      to: "2",
      automatic: true,
      reason: expect.stringContaining("beats naive with significance"),
      evidence: {
        p_value: 0.01,
        holm_p_value: 0.01,
        test: expect.stringMatching(/one-sided Diebold–Mariano.*Holm/),
        alpha: 0.05,
        window: { from: QUARTERS[0][0], to: QUARTERS[5][1] },
        folds: 6,
      },
    });
  });

  it("a new significant version that does not beat the champion on their shared folds does not replace it", async () => {
    await register(t, { family: "naive" }, { p: 0.001, mapes: better(0.2) });
    await t.app.registry.select(NAME);
    const [worse] = await register(t, { p: 0.0001, mapes: better(0.1), wfSkill: 0.5 });
    const outcome = await t.app.registry.select(NAME, { candidates: [worse as string] });
    expect(outcome.entry).toBeUndefined();
    expect(outcome.reason).toMatch(/v2 stays/);
    expect(await pointers(t)).toEqual({ champion: "2", automatic: true });
    // One that beats it on every shared fold does.
    const [better3] = await register(t, { p: 0.0001, mapes: better(0.3) });
    const replaced = await t.app.registry.select(NAME, { candidates: [better3 as string] });
    expect(replaced.entry).toMatchObject({
      from: "2",
      to: better3,
      automatic: true,
      evidence: { compared_with: { version: "2", shared_folds: 6, wins: 6, sign_test_p_value: 1 / 64 } },
    });
  });

  it("an archived version is no candidate, however significant", async () => {
    await register(t, { family: "naive" }, { p: 0.001 });
    const at = new Date().toISOString();
    await t.deps.pointers.update(NAME, (current) => ({
      pointers: { ...current, archived: { "2": { at, reason: "test" } } },
      entry: { at, model: NAME, action: "archive", from: null, to: "2" },
    }));
    expect((await t.app.registry.select(NAME)).entry).toMatchObject({ to: "1", automatic: true });
  });

  it("nothing changed: no audit entry (a daily run that keeps the champion writes nothing)", async () => {
    await register(t, { family: "naive" }, { p: 0.3 });
    await t.app.registry.select(NAME);
    const before = (await history(t)).length;
    expect((await t.app.registry.select(NAME)).entry).toBeUndefined();
    expect(await history(t)).toHaveLength(before);
  });

  describe("a champion a person set is never overwritten until they hand the model back", () => {
    it("promote (manual) → the policy leaves it; promote --auto → the policy decides now", async () => {
      await register(t, { family: "naive" }, { p: 0.3 }, { p: 0.001 });
      expect((await adminPost(t, `/api/ml/models/${NAME}/promote`, { version: "2" })).status).toBe(200);
      expect(await pointers(t)).toEqual({ champion: "2" });

      const outcome = await t.app.registry.select(NAME);
      expect(outcome.entry).toBeUndefined();
      expect(outcome.reason).toMatch(/made champion by a person.*promote BTC-24h --auto/);
      expect(await pointers(t)).toEqual({ champion: "2" });

      const res = await adminPost(t, `/api/ml/models/${NAME}/promote`, {
        auto: true,
        reason: "back to the policy",
      });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.change).toMatchObject({
        from: "2",
        to: "3",
        automatic: true,
        evidence: { p_value: 0.001 },
      });
      expect(body.change.reason).toMatch(/^back to the policy; selection policy/);
      expect(body.serving).toEqual({ version: "3", via: "champion" });
      expect(await pointers(t)).toEqual({ champion: "3", automatic: true });
    });

    it("a person's rollback makes the champion theirs again", async () => {
      await register(t, { family: "naive" }, { p: 0.3 }, { p: 0.001 });
      await t.app.registry.select(NAME);
      expect((await adminPost(t, `/api/ml/models/${NAME}/rollback`, { to: "2" })).status).toBe(200);
      expect(await pointers(t)).toEqual({ champion: "2" });
      expect((await t.app.registry.select(NAME)).entry).toBeUndefined();
    });

    it.each([
      [{}, "give either"],
      [{ version: "1", auto: true }, "give either"],
      [{ auto: false }, "expected true"],
    ])("promote %j is a 400", async (body, message) => {
      await register(t, { family: "naive" });
      const res = await adminPost(t, `/api/ml/models/${NAME}/promote`, body);
      expect(res.status).toBe(400);
      expect(JSON.stringify(await res.json())).toContain(message);
    });
  });

  describe("models people bring keep BEST_METRIC", () => {
    const model = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
    it("the policy writes nothing; the best by metric serves; promote --auto only clears a manual champion", async () => {
      for (const [i, skill] of [0.1, 0.3, 0.2].entries()) {
        expect((await upload(t, "sk", variantOf(model, `v${i}`), { metrics: { skill } })).status).toBe(201);
      }
      const outcome = await t.app.registry.select("sk");
      expect(outcome).toMatchObject({ reason: expect.stringContaining("not a forecast model") });
      expect(outcome.entry).toBeUndefined();
      expect((await (await t.admin("/api/ml/models/sk")).json()).serving).toEqual({
        version: "2",
        via: "best",
      });
      await adminPost(t, "/api/ml/models/sk/promote", { version: "1" });
      const back = await (await adminPost(t, "/api/ml/models/sk/promote", { auto: true })).json();
      expect(back.change).toMatchObject({ from: "1", to: null, automatic: true });
      expect(back.serving).toEqual({ version: "2", via: "best" });
    });
  });

  describe("SELECTION_POLICY=best: the forecast model ranks by BEST_METRIC, as before", () => {
    it("writes no champion and serves the best test-split skill", async () => {
      const best = await testApp({ selectionPolicy: "best" });
      try {
        await register(best, { family: "naive" }, { p: 0.3, skill: 0.4 }, { p: 0.2, skill: 0.1 });
        expect((await best.app.registry.select(NAME)).entry).toBeUndefined();
        expect(await serving(best)).toEqual({ version: "2", via: "best" });
      } finally {
        await best.cleanup();
      }
    });
  });
});

describe("resolution with no champion yet applies the same rule from the versions' metadata", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(() => t.cleanup());

  it.each<[string, VersionSpec[], { version: string; via: string }]>([
    [
      "nothing significant → naive",
      [{ family: "naive" }, { p: 0.3, skill: 0.5 }],
      { version: "1", via: "naive" },
    ],
    [
      "a significant one → it",
      [{ family: "naive" }, { p: 0.01 }, { p: 0.3, skill: 0.9 }],
      { version: "2", via: "policy" },
    ],
    [
      "no naive version → the best by metric, said to be unvetted",
      [
        { p: 0.3, skill: 0.1 },
        { p: 0.3, skill: 0.2 },
      ],
      { version: "2", via: "best_unvetted" },
    ],
  ])("%s", async (_, specs, expected) => {
    await register(t, ...specs);
    expect(await serving(t)).toEqual(expected);
  });
});

describe("forecast responses say whether their version beats naive, with the evidence", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(() => t.cleanup());

  it.each<[string, VersionSpec[], boolean, number | null]>([
    ["naive serving", [{ family: "naive" }, { p: 0.3 }], false, 1],
    ["a significant version serving", [{ family: "naive" }, { p: 0.004 }], true, 0.004],
  ])("serve and batch: %s", async (_, specs, beats, p) => {
    await register(t, ...specs);
    const evidence = { p_value: p, window: { from: QUARTERS[0][0], to: QUARTERS[5][1] }, folds: 6 };
    const one = await (await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: AS_OF })).json();
    expect(one).toMatchObject({ beats_naive: beats, evidence });
    // The cached answer says the same.
    const again = await (await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: AS_OF })).json();
    expect(again).toMatchObject({ cached: true, beats_naive: beats, evidence });
    const batch = await (await postJson(t, "/api/ml/batch", { symbols: ["BTC"], as_of: AS_OF })).json();
    expect(batch.results[0].forecast).toMatchObject({ beats_naive: beats, evidence });
  });

  it("a version with no walk-forward evaluation: beats_naive false, no evidence", async () => {
    await register(t, { skill: 0.9 });
    const body = await (await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: AS_OF })).json();
    expect(body).toMatchObject({ beats_naive: false, evidence: { p_value: null, window: null, folds: 0 } });
  });
});

describe("trainSymbol registers the naive baseline once per forecast model and runs the policy", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(() => t.cleanup());

  /** A trainer whose versions are real ONNX models with hand-written reports (the real one is slow and seeded). */
  let runs = 0;
  const fakeTrainer = Object.assign(
    async (input: TrainForecasterInput): Promise<TrainedForecaster> => {
      runs += 1;
      const row = new Array(FEATURE_NAMES.length).fill(0.01);
      const tilt = runs * 1e-4;
      return {
        onnx: forecasterBytes("ridge", tilt),
        sha256: "",
        report: {
          symbol: input.symbol,
          interval: input.interval,
          horizonBars: input.horizonBars,
          family: input.family,
          data: {
            bars: input.bars.length,
            first: "2020-01-01T00:00:00.000Z",
            last: "2025-12-31T00:00:00.000Z",
          },
          test: {
            skill: 0.1,
            mape: 1.8,
            naiveMape: 2,
            r2LogReturn: 0,
            directionAccuracy: 0.5,
            r2Price: 0.99,
            rows: 90,
          },
          walk_forward: { ...walkForward({ p: 0.4 }), std_skill: 0, naive_mape: NAIVE_MAPE },
        } as unknown as TrainedForecaster["report"],
        golden: { inputs: [row], outputs: [tilt] },
        featureSet: FEATURE_SET,
        featureNames: FEATURE_NAMES,
      } as TrainedForecaster;
    },
    { exportNaive },
  );

  it("twice: one naive version, skill 0 and a walk-forward saying so; the policy serves it (nothing significant)", async () => {
    const train = () =>
      trainSymbol({ symbol: "BTC", trainer: fakeTrainer, market: t.deps.market, registry: t.app.registry });
    await train();
    await train();
    const metas = await t.app.registry.versions(NAME);
    const naive = metas.filter((m) => m.tags.family === "naive");
    expect(naive.map((m) => m.version)).toEqual(["3"]);
    expect(naive[0]).toMatchObject({
      metrics: { skill: 0, wf_skill: 0, dm_p_value: 1 },
      signature: {
        inputs: [{ name: "features", datatype: "FP64", shape: [-1, FEATURE_NAMES.length] }],
        outputs: [{ name: "log_return", datatype: "FP64", shape: [-1, 1] }],
      },
      forecast: { symbol: "BTC", horizon: "24h", target: "log_return" },
      feature_set: FEATURE_SET,
      golden: { cases: [{ outputs: [{ data: [0] }] }] },
      report: { family: "naive", walk_forward: { dm_p_value: 1, mean_skill: 0 } },
    });
    expect(
      (naive[0]?.report?.walk_forward as { folds: { skill: number; mape: number }[] } | undefined)?.folds.map(
        (f) => [f.skill, f.mape],
      ),
    ).toEqual(QUARTERS.map(() => [0, NAIVE_MAPE]));
    expect(await pointers(t)).toEqual({ champion: "3", automatic: true });
    const body = await (await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: AS_OF })).json();
    expect(body).toMatchObject({
      model_version: "3",
      family: "naive",
      beats_naive: false,
      predicted_log_return: 0,
    });
    expect(body.predicted_price).toBe(body.last_close);
  });
});
