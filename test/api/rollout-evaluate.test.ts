import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RegistrationInput, VersionMetadataSchema } from "../../src/registry/metadata.js";
import type { PredictionLog } from "../../src/storage/prediction-log.js";
import { dieboldMariano } from "../../src/training/diebold-mariano.js";
import { everyRecord, recompute, registerConstantForecaster } from "../rollout/support.js";
import { productionAdapters } from "../storage/support/production-adapters.js";
import { ADAPTERS, type TestApp, testApp } from "../support/app.js";
import { REPO_ROOT } from "../support/paths.js";

/**
 * Rollout decisions through the API on the app's own stores: files and memory, or (the production-adapters run) the
 * champion pointer, rollout and audit log in Edge Config and the prediction log in Upstash Redis. A canary of a
 * deliberately bad version against the naive baseline, both backfilled over the CSVs' out-of-sample range, is ended
 * by the evaluation, audited with the numbers a recomputation from the log gives.
 */
const MODEL = "BTC-24h";
const RANGE = { from: "2025-12-29", to: "2026-03-27" };

async function shipped(version: string): Promise<{ bytes: Uint8Array; input: RegistrationInput }> {
  const dir = join(REPO_ROOT, "models", MODEL, version);
  const meta = VersionMetadataSchema.parse(JSON.parse(await readFile(join(dir, "metadata.json"), "utf8")));
  const { description, tags, metrics, feature_set, feature_names, forecast, golden, report, data_cutoff } =
    meta;
  return {
    bytes: new Uint8Array(await readFile(join(dir, "model.onnx"))),
    input: { description, tags, metrics, feature_set, feature_names, forecast, golden, report, data_cutoff },
  };
}

describe(`rollout evaluation through the API (${ADAPTERS} adapters)`, () => {
  let t: TestApp;
  let log: PredictionLog;
  let bad: string;
  const adminPost = (path: string, body: unknown) =>
    t.admin(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  beforeAll(async () => {
    const overrides = ADAPTERS === "production" ? { predictionLog: productionAdapters().predictionLog } : {};
    t = await testApp({}, undefined, { pairedTest: dieboldMariano, ...overrides });
    log = t.app.services.predictionLog;
    for (const version of ["1", "2", "3"]) {
      const { bytes, input } = await shipped(version);
      await t.app.registry.register(MODEL, bytes, input);
    }
    await t.app.registry.promote(MODEL, "3", "the naive baseline, as shipped");
    bad = await registerConstantForecaster(t.app.services, 0.05);
    for (const version of ["3", bad]) {
      const res = await adminPost(`/api/ml/models/${MODEL}/backfill`, { ...RANGE, version });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    const started = await adminPost(`/api/ml/models/${MODEL}/rollout`, {
      challenger: bad,
      mode: "canary",
      weight: 0.2,
    });
    expect(started.status, await started.clone().text()).toBe(201);
  }, 180_000);
  afterAll(() => t?.cleanup());

  it("ends the canary of a clearly worse challenger; the audit log holds the recomputed numbers", async () => {
    const res = await adminPost(`/api/ml/models/${MODEL}/rollout/evaluate`, {
      source: "backfill",
      ...RANGE,
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    const expected = recompute(await everyRecord(log), {
      champion: "3",
      challenger: bad,
      source: "backfill",
      from: Date.parse("2025-12-29T00:00:00Z"),
      to: Date.parse("2026-03-27T00:00:00Z"),
    });
    expect(expected).toMatchObject({ pairs: 89, decision: "end" });
    expect(body.rollout).toMatchObject({
      action: "end",
      reason: "challenger_worse",
      evidence: {
        pairs: 89,
        mean_ape: { champion: expected.champion_mape, challenger: expected.challenger_mape },
        dm_statistic: expected.statistic,
        p_value_worse: expected.p_worse,
      },
      written: { action: "rollout_end", from: bad, to: "3" },
    });
    const detail = await (await t.admin(`/api/ml/models/${MODEL}`)).json();
    const entry = detail.history.at(-1);
    expect(entry).toMatchObject({
      action: "rollout_end",
      automatic: true,
      rollout_id: body.rollout.rollout.id,
    });
    expect(entry.rollout_evidence).toEqual(body.rollout.evidence);
    expect(detail.pointers.rollout).toBeUndefined();
    expect(detail.pointers.champion).toBe("3");
  }, 120_000);
});
