import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canaryBucket } from "../../src/rollout/assign.js";
import { type TestApp, testApp, upload } from "../support/app.js";
import { twoByTwoModel, variantOf } from "../support/onnx-models.js";

/**
 * A canary splits OIP infer traffic as it splits forecasts (the same hash of rollout id and client key), so a model
 * people bring can be rolled out gradually too. Its decisions stay with a person: such a model has no outcomes to
 * compare (only forecasts are resolved against the market).
 */
const MODEL = "pair";
const INFER = `/v2/models/${MODEL}/infer`;
const body = JSON.stringify({
  inputs: [
    { name: "a", shape: [1, 2], datatype: "FP64", data: [1, 2] },
    { name: "b", shape: [1, 2], datatype: "FP64", data: [3, 4] },
  ],
});

describe("a canary on OIP infer", () => {
  let t: TestApp;
  let rolloutId: string;
  const infer = (clientId?: string, path = INFER) =>
    t.request(path, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(clientId !== undefined && { "x-client-id": clientId }),
      },
      body,
    });

  beforeAll(async () => {
    t = await testApp();
    for (const doc of ["v1", "v2"]) {
      expect((await upload(t, MODEL, variantOf(twoByTwoModel(), doc))).status).toBe(201);
    }
    const promote = await t.admin(`/api/ml/models/${MODEL}/promote`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ version: "1" }),
    });
    expect(promote.status).toBe(200);
    const started = await t.admin(`/api/ml/models/${MODEL}/rollout`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ challenger: "2", mode: "canary", weight: 0.3 }),
    });
    expect(started.status).toBe(201);
    rolloutId = (await started.json()).rollout.id;
  });
  afterAll(() => t.cleanup());

  it("sends exactly the clients the hash puts under the weight to the challenger, said in x-chosen-via, sticky", async () => {
    const clients = Array.from({ length: 400 }, (_, i) => `oip-client-${i}`);
    let challenger = 0;
    for (const id of clients) {
      const expected = canaryBucket(rolloutId, id) < 3_000 ? "2" : "1";
      for (const attempt of [1, 2]) {
        const res = await infer(id);
        expect(res.status, `${id} attempt ${attempt}`).toBe(200);
        expect(res.headers.get("x-model-version")).toBe(expected);
        expect(res.headers.get("x-chosen-via")).toBe(expected === "2" ? "canary" : "champion");
        expect((await res.json()).model_version).toBe(expected);
      }
      if (expected === "2") challenger++;
    }
    // 400 draws of a fair 30 % share: within four standard errors (± 9 points) of the weight.
    expect(Math.abs(challenger / clients.length - 0.3)).toBeLessThan(0.09);
  });

  it("a named version is served as asked, whoever asks", async () => {
    const res = await infer("oip-client-0", `/v2/models/${MODEL}/versions/1/infer`);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-model-version")).toBe("1");
    expect(res.headers.get("x-chosen-via")).toBe("requested");
  });

  it("a malformed x-client-id is 400 here as on the forecast routes", async () => {
    const res = await infer("x".repeat(129));
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe("invalid_request");
  });

  it("without x-client-id every in-process request shares one key, so all get the same version", async () => {
    const versions = new Set<string | null>();
    for (let i = 0; i < 5; i++) versions.add((await infer()).headers.get("x-model-version"));
    expect(versions.size).toBe(1);
  });
});
