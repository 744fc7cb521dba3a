import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { postJson, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel, variantOf } from "../support/onnx-models.js";

/**
 * y = x * 2 for every version; versions differ in their metrics (and, so that each is a version of its own, their
 * bytes: variants), so the served version is read from headers.
 */
const model = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
const infer = (t: TestApp, path = "/v2/models/m/infer") =>
  postJson(t, path, { inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [1] }] });
const servedVersion = async (t: TestApp, path?: string) =>
  (await infer(t, path)).headers.get("x-model-version");
const adminPost = (t: TestApp, path: string, body: unknown) =>
  t.admin(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("version resolution: requested > pinned > champion > best by metric", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
    // skill: v1 0.01, v2 0.05 (best), v3 -0.2 (worse than naive), v4 no metric.
    for (const [i, skill] of [0.01, 0.05, -0.2, undefined].entries()) {
      const bytes = variantOf(model, `v${i + 1}`);
      const res = await upload(t, "m", bytes, skill === undefined ? {} : { metrics: { skill } });
      expect(res.status).toBe(201);
    }
  });
  afterEach(() => t.cleanup());

  it("with no pointers, the best version by the configured metric serves", async () => {
    expect(await servedVersion(t)).toBe("2");
    expect((await (await t.admin("/api/ml/models/m")).json()).serving).toEqual({ version: "2", via: "best" });
  });

  it("a model without metrics serves its latest version", async () => {
    await upload(t, "plain", model);
    await upload(t, "plain", variantOf(model, "v2"));
    expect(await servedVersion(t, "/v2/models/plain/infer")).toBe("2");
  });

  it("the champion beats the best", async () => {
    expect(
      (await adminPost(t, "/api/ml/models/m/promote", { version: "1", reason: "canary passed" })).status,
    ).toBe(200);
    expect(await servedVersion(t)).toBe("1");
  });

  it("a pin beats the champion, and unpinning restores it", async () => {
    await adminPost(t, "/api/ml/models/m/promote", { version: "1" });
    expect((await adminPost(t, "/api/ml/models/m/pin", { version: "3" })).status).toBe(200);
    expect(await servedVersion(t)).toBe("3");
    await adminPost(t, "/api/ml/models/m/pin", { version: null });
    expect(await servedVersion(t)).toBe("1");
  });

  it("a version named in the request beats everything", async () => {
    await adminPost(t, "/api/ml/models/m/pin", { version: "3" });
    expect(await servedVersion(t, "/v2/models/m/versions/4/infer")).toBe("4");
  });

  it("rollback steps back through the champions, one per call", async () => {
    for (const version of ["1", "2", "3"]) await adminPost(t, "/api/ml/models/m/promote", { version });
    const first = await adminPost(t, "/api/ml/models/m/rollback", { reason: "regression" });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({
      change: { action: "rollback", from: "3", to: "2", reason: "regression" },
      serving: { version: "2", via: "champion" },
    });
    expect(await servedVersion(t)).toBe("2");
    await adminPost(t, "/api/ml/models/m/rollback", {});
    expect(await servedVersion(t)).toBe("1");
    const none = await adminPost(t, "/api/ml/models/m/rollback", {});
    expect(none.status).toBe(409);
    expect((await none.json()).error).toContain("no earlier champion");
  });

  it("rollback to a named version", async () => {
    await adminPost(t, "/api/ml/models/m/promote", { version: "4" });
    const res = await adminPost(t, "/api/ml/models/m/rollback", { to: "1" });
    expect(await res.json()).toMatchObject({ change: { from: "4", to: "1" } });
    expect(await servedVersion(t)).toBe("1");
  });

  it("every change is in the audit log: when, action, from, to, reason", async () => {
    await adminPost(t, "/api/ml/models/m/promote", { version: "1", reason: "first" });
    await adminPost(t, "/api/ml/models/m/promote", { version: "2" });
    await adminPost(t, "/api/ml/models/m/rollback", { reason: "bad" });
    await adminPost(t, "/api/ml/models/m/pin", { version: "4" });
    const { history, pointers } = await (await t.admin("/api/ml/models/m")).json();
    expect(history.map(({ at: _at, ...rest }: { at: string }) => rest)).toEqual([
      { model: "m", action: "promote", from: null, to: "1", reason: "first" },
      { model: "m", action: "promote", from: "1", to: "2" },
      { model: "m", action: "rollback", from: "2", to: "1", reason: "bad" },
      { model: "m", action: "pin", from: null, to: "4" },
    ]);
    for (const entry of history) expect(Date.parse(entry.at)).not.toBeNaN();
    expect(pointers).toEqual({ champion: "1", pinned: "4" });
  });

  it("lists models with versions and the serving one", async () => {
    const { models } = await (await t.admin("/api/ml/models")).json();
    expect(models).toEqual([
      {
        name: "m",
        versions: ["1", "2", "3", "4"],
        pointers: {},
        serving: { version: "2", via: "best" },
        unreadable: [],
        archived: [],
      },
    ]);
  });
});
