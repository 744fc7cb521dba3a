import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { trainSymbol } from "../../src/forecast/training.js";
import type { Counters } from "../../src/storage/counters.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { postJson, type TestApp, testApp, testEngine, upload } from "../support/app.js";
import { twoByTwoModel, variantOf } from "../support/onnx-models.js";
import { DATA_AS_OF } from "../support/paths.js";

/** Usage per model version: counted off the response path, read in the admin view of a model. */
describe("usage counters", () => {
  let t: TestApp;
  let pending: Promise<unknown>[];
  const settled = async () => {
    await Promise.all(pending.splice(0));
  };
  const usageOf = async (name: string) => (await (await t.admin(`/api/ml/models/${name}`)).json()).usage;

  beforeEach(async () => {
    pending = [];
    t = await testApp({}, testEngine(), { waitUntil: (work) => pending.push(work) });
  });
  afterEach(() => t.cleanup());

  it("counts infer requests and their rows per version", async () => {
    await upload(t, "two", twoByTwoModel());
    // Other bytes: the same bytes again would register nothing (a duplicate of version 1).
    await upload(t, "two", variantOf(twoByTwoModel(), "v2"));
    const rows = (n: number) => ({ datatype: "FP64", shape: [n, 2], data: Array(2 * n).fill(1) });
    await postJson(t, "/v2/models/two/infer", {
      inputs: [
        { name: "a", ...rows(3) },
        { name: "b", ...rows(3) },
      ],
    });
    await postJson(t, "/v2/models/two/versions/1/infer", {
      inputs: [
        { name: "a", ...rows(1) },
        { name: "b", ...rows(1) },
      ],
    });
    await postJson(t, "/v2/models/two/infer", {
      inputs: [
        { name: "a", ...rows(2) },
        { name: "b", ...rows(2) },
      ],
    });
    // A rejected request is not a served one.
    await postJson(t, "/v2/models/two/infer", { inputs: [{ name: "a", ...rows(2) }] });
    await settled();
    const usage = await usageOf("two");
    expect(usage.available).toBe(true);
    expect(usage.versions["1"]).toMatchObject({ inferences: 1, rows: 1 });
    expect(usage.versions["2"]).toMatchObject({ inferences: 2, rows: 5, forecasts: 0 });
  });

  it("counts forecasts with their cache outcome", async () => {
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: t.deps.market,
      registry: t.app.registry,
      plan: { families: ["ridge"] },
    });
    // The version the selection policy serves (the naive baseline unless ridge beats it significantly).
    let served = "";
    for (let i = 0; i < 3; i++) {
      const res = await postJson(t, "/api/ml/serve", { symbol: "BTC", as_of: DATA_AS_OF });
      expect(res.status).toBe(200);
      served = res.headers.get("x-model-version") ?? "";
      await settled();
    }
    const usage = await usageOf("BTC-24h");
    expect(usage.versions[served]).toMatchObject({
      forecasts: 3,
      cache_miss: 1,
      cache_hit: 2,
      cache_bypass: 0,
    });
  });

  it("a counter store that fails costs no request, and the admin view says the numbers are unavailable", async () => {
    const broken: Counters = {
      kind: "broken",
      increment: () => Promise.reject(new Error("ECONNREFUSED")),
      read: () => Promise.reject(new Error("ECONNREFUSED")),
    };
    const b = await testApp({}, testEngine(), { counters: broken, waitUntil: (work) => pending.push(work) });
    try {
      await upload(b, "two", twoByTwoModel());
      const one = { datatype: "FP64", shape: [1, 2], data: [1, 2] };
      const res = await postJson(b, "/v2/models/two/infer", {
        inputs: [
          { name: "a", ...one },
          { name: "b", ...one },
        ],
      });
      expect(res.status).toBe(200);
      await settled();
      const { usage } = await (await b.admin("/api/ml/models/two")).json();
      expect(usage).toEqual({
        available: false,
        versions: { "1": expect.objectContaining({ inferences: 0 }) },
      });
    } finally {
      await b.cleanup();
    }
  });
});
