import { cp } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { REPO_ROOT, tempDir } from "../support/paths.js";
import { MODEL, type RolloutApp, rolloutApp } from "./serving-app.js";

const path = `/api/ml/models/${MODEL}/rollout`;

describe("the rollout admin API: POST, GET, DELETE /api/ml/models/{name}/rollout", () => {
  let t: RolloutApp;
  beforeAll(async () => {
    t = await rolloutApp({ config: { rolloutMinOutcomes: 25, rolloutMaxDurationSeconds: 86_400 } });
  }, 120_000);
  afterAll(() => t.cleanup());
  afterEach(async () => {
    await t.admin(path, { method: "DELETE" });
  });

  it("start: 201 with the rollout against the serving version, defaults from the configuration", async () => {
    const res = await t.startRollout({ challenger: "2", mode: "canary", weight: 0.2 });
    expect(res.status).toBe(201);
    const { rollout, change } = await res.json();
    expect(rollout).toEqual({
      id: expect.any(String),
      challenger: "2",
      champion: "3",
      mode: "canary",
      weight: 0.2,
      started_at: expect.any(String),
      min_outcomes: 25,
      max_duration_seconds: 86_400,
    });
    expect(change).toMatchObject({ action: "rollout_start", from: "3", to: "2", rollout_id: rollout.id });
  });

  it("a body's min_outcomes and max_duration_seconds win over the defaults", async () => {
    const res = await t.startRollout({
      challenger: "1",
      mode: "shadow",
      weight: 0.5,
      min_outcomes: 40,
      max_duration_seconds: 3_600,
    });
    expect((await res.json()).rollout).toMatchObject({
      mode: "shadow",
      min_outcomes: 40,
      max_duration_seconds: 3_600,
    });
  });

  it("get: the rollout and the live comparison; delete ends it with a rollout_end audit entry", async () => {
    const started = (await (await t.startRollout({ challenger: "2", mode: "canary", weight: 0.3 })).json())
      .rollout;
    const status = await t.admin(path);
    expect(status.status).toBe(200);
    const body = await status.json();
    expect(body.rollout).toEqual(started);
    expect(body).toHaveProperty("comparison");
    const ended = await t.admin(path, { method: "DELETE" });
    expect(ended.status).toBe(200);
    expect((await ended.json()).change).toMatchObject({
      action: "rollout_end",
      from: "2",
      to: "3",
      reason: "stopped by admin",
      rollout_id: started.id,
    });
    const after = await t.admin(path);
    expect(after.status).toBe(404);
    expect((await after.json()).code).toBe("no_rollout");
    const history = await t.app.registry.history(MODEL);
    expect(history.filter((e) => e.rollout_id === started.id).map((e) => e.action)).toEqual([
      "rollout_start",
      "rollout_end",
    ]);
  });

  it("each rollout has its own id: a new one draws clients afresh", async () => {
    const a = (await (await t.startRollout({ challenger: "2", mode: "canary", weight: 0.3 })).json()).rollout
      .id;
    await t.admin(path, { method: "DELETE" });
    const b = (await (await t.startRollout({ challenger: "2", mode: "canary", weight: 0.3 })).json()).rollout
      .id;
    expect(a).not.toBe(b);
  });

  it.each<[string, unknown, number, string]>([
    [
      "the serving version as challenger",
      { challenger: "3", mode: "canary", weight: 0.2 },
      400,
      "invalid_request",
    ],
    ["a weight above 1", { challenger: "2", mode: "canary", weight: 1.5 }, 400, "invalid_request"],
    ["a negative weight", { challenger: "2", mode: "canary", weight: -0.1 }, 400, "invalid_request"],
    ["an unknown mode", { challenger: "2", mode: "blue-green", weight: 0.2 }, 400, "invalid_request"],
    ["an unknown field", { challenger: "2", mode: "canary", weight: 0.2, extra: 1 }, 400, "invalid_request"],
    [
      "a version the model does not have",
      { challenger: "9", mode: "canary", weight: 0.2 },
      404,
      "version_not_found",
    ],
  ])("refuses %s: %i %s", async (_, body, status, code) => {
    const res = await t.startRollout(body);
    expect(res.status).toBe(status);
    expect((await res.json()).code).toBe(code);
  });

  it("refuses a second rollout while one runs: 409, and the first one stays", async () => {
    const first = (await (await t.startRollout({ challenger: "2", mode: "canary", weight: 0.2 })).json())
      .rollout;
    const second = await t.startRollout({ challenger: "1", mode: "shadow", weight: 1 });
    expect(second.status).toBe(409);
    expect((await second.json()).code).toBe("conflict");
    expect((await (await t.admin(path)).json()).rollout).toEqual(first);
  });

  it("refuses a rollout while the model is pinned (the pin would serve every request): 409", async () => {
    await t.admin(`/api/ml/models/${MODEL}/pin`, { method: "POST", body: JSON.stringify({ version: "3" }) });
    const res = await t.startRollout({ challenger: "2", mode: "canary", weight: 0.2 });
    await t.admin(`/api/ml/models/${MODEL}/pin`, { method: "POST", body: JSON.stringify({ version: null }) });
    expect(res.status).toBe(409);
  });

  it("refuses an archived challenger: 410 version_archived", async () => {
    await t.pointers.update(MODEL, (current) => ({
      pointers: { ...current, archived: { "1": { at: "2026-03-01T00:00:00.000Z", reason: "test" } } },
      entry: { at: new Date().toISOString(), model: MODEL, action: "archive", from: "1", to: null },
    }));
    const res = await t.startRollout({ challenger: "1", mode: "canary", weight: 0.2 });
    expect(res.status).toBe(410);
    expect((await res.json()).code).toBe("version_archived");
  });

  it.each([
    ["POST", { method: "POST", body: "{}" }],
    ["GET", {}],
    ["DELETE", { method: "DELETE" }],
  ])("%s needs the admin token: 401 without it", async (_, init) => {
    const res = await t.request(path, init as RequestInit);
    expect(res.status).toBe(401);
  });

  it("the routes are in the OpenAPI document", async () => {
    const doc = await (await t.request("/openapi.json")).json();
    expect(Object.keys(doc.paths["/api/ml/models/{name}/rollout"]).sort()).toEqual(["delete", "get", "post"]);
  });

  it("DELETE with no rollout running: 404 no_rollout", async () => {
    const res = await t.admin(path, { method: "DELETE" });
    expect(res.status).toBe(404);
    expect((await res.json()).code).toBe("no_rollout");
  });
});

describe("npm run cli -- rollout start|status|stop <model>", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
    await cp(join(REPO_ROOT, "models"), dir.path, { recursive: true });
    process.env.MODELS_DIR = dir.path;
    process.env.POINTERS_FILE = join(dir.path, "pointers.json");
    delete process.env.EDGEML_URL;
  });
  afterAll(async () => {
    delete process.env.MODELS_DIR;
    delete process.env.POINTERS_FILE;
    await dir.cleanup();
  });

  it("starts, shows and stops a rollout on the local registry", async () => {
    const started = await runCli(
      "rollout",
      "start",
      MODEL,
      "--challenger",
      "2",
      "--mode",
      "canary",
      "--weight",
      "0.1",
      "--max-duration",
      "7d",
    );
    expect(started).toMatch(/started the canary rollout \S+: v2 against v3 at weight 0\.1, .* at most 7 d/);
    expect(await runCli("rollout", "status", MODEL)).toContain("canary rollout");
    await expect(
      runCli("rollout", "start", MODEL, "--challenger", "1", "--mode", "shadow", "--weight", "1"),
    ).rejects.toThrow(/\[conflict\]/);
    expect(await runCli("rollout", "stop", MODEL)).toMatch(/ended the canary rollout \S+ of v2; v3 serves/);
    await expect(runCli("rollout", "status", MODEL)).rejects.toThrow(/\[no_rollout\]/);
  });

  it.each([
    [["--weight", "2"], "a fraction from 0 to 1"],
    [["--weight", "0.2", "--max-duration", "soon"], "a duration such as"],
  ])("refuses %j before calling anything", async (extra, message) => {
    await expect(
      runCli("rollout", "start", MODEL, "--challenger", "2", "--mode", "canary", ...extra),
    ).rejects.toThrow(message);
  });
});
