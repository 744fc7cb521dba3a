import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.js";
import type { Services } from "../../src/services/index.js";
import type { PointerStore } from "../../src/storage/pointers.js";
import { tempDir } from "../support/paths.js";
import { clock, MODEL, registerConstantForecaster, rolloutServices, startRollout } from "./support.js";

/** `POST /api/ml/models/{name}/rollout/evaluate`: admin, validated, dry_run, and 501 where the test is not wired. */
const TOKEN = "rollout-route-admin-token-0123";
const STARTED = "2026-04-01T00:00:00.000Z";

describe("POST /api/ml/models/{name}/rollout/evaluate", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let services: Services;
  let pointers: PointerStore;
  let app: ReturnType<typeof createApp>["app"];
  const time = clock(STARTED);

  beforeAll(async () => {
    dir = await tempDir("edgeml-rollout-route-");
    ({ services, pointers } = await rolloutServices(dir.path, time.now, { adminToken: TOKEN }));
    app = createApp(services, {}).app;
    const bad = await registerConstantForecaster(services, 0.05);
    for (const version of ["3", bad]) {
      await services.backfill.run({ model: MODEL, version, from: "2025-12-29", to: "2026-03-27" });
    }
    await startRollout(pointers, {
      id: "r-http",
      challenger: bad,
      mode: "canary",
      weight: 0.1,
      started_at: STARTED,
      min_outcomes: 30,
      max_duration_seconds: 86_400 * 14,
    });
  }, 120_000);
  afterAll(() => dir.cleanup());

  const post = (path: string, body?: unknown, token: string | null = TOKEN) =>
    app.request(path, {
      method: "POST",
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const path = `/api/ml/models/${MODEL}/rollout/evaluate`;
  const backfilled = { source: "backfill", from: "2025-12-29", to: "2026-03-27" };

  it("refuses without the admin token (401)", async () => {
    const response = await post(path, backfilled, null);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: "unauthorized" });
  });

  it.each([
    ["an unknown source", { source: "everything" }, "source"],
    ["from after to", { source: "backfill", from: "2026-03-27", to: "2026-01-01" }, "to"],
    ["a date that is not one", { from: "last tuesday" }, "from"],
    ["an unknown field", { sources: "live" }, ""],
  ])("answers 400 for %s, naming the field", async (_, body, field) => {
    const response = await post(path, body);
    expect(response.status).toBe(400);
    const answer = await response.json();
    expect(answer.code).toBe("invalid_request");
    if (field) expect(answer.details.map((d: { path: string }) => d.path)).toContain(field);
  });

  it("answers 400 for a dry_run that is not true or false", async () => {
    const response = await post(`${path}?dry_run=yes`, backfilled);
    expect(response.status).toBe(400);
  });

  it("answers 404 for a model the registry does not have", async () => {
    const response = await post("/api/ml/models/NOPE-24h/rollout/evaluate", backfilled);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "model_not_found" });
  });

  it("without a body it decides on production outcomes (live and shadow since the start): none here", async () => {
    const response = await post(`${path}?dry_run=true`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      dry_run: true,
      rollout: { action: "continue", reason: "too_few_outcomes", evidence: { source: "live", pairs: 0 } },
    });
  });

  it("?dry_run=true answers the decision with its numbers and writes nothing; without it, writes it", async () => {
    const before = await pointers.history(MODEL);
    const dry = await post(`${path}?dry_run=true`, backfilled);
    expect(dry.status).toBe(200);
    const said = await dry.json();
    expect(said).toMatchObject({
      model: MODEL,
      dry_run: true,
      rollout: { action: "end", reason: "challenger_worse", written: null, evidence: { pairs: 89 } },
      rollback: { champion: "3", action: "skip" },
    });
    expect(await pointers.history(MODEL)).toEqual(before);

    const wet = await post(path, backfilled);
    const done = await wet.json();
    expect(done.rollout.evidence).toEqual(said.rollout.evidence);
    expect(done.rollout.written).toMatchObject({ action: "rollout_end", rollout_id: "r-http" });
    expect((await pointers.history(MODEL)).at(-1)).toEqual(done.rollout.written);
    // Evaluated again: no rollout running any more.
    const again = await (await post(path, backfilled)).json();
    expect(again.rollout).toBeNull();
  });

  it("answers 501 evaluation_unavailable where the test is not wired (the edge), saying where it runs", async () => {
    const edge = await tempDir("edgeml-rollout-edge-");
    try {
      const built = await rolloutServices(edge.path, time.now, { adminToken: TOKEN, withoutTest: true });
      const response = await createApp(built.services, {}).app.request(path, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(response.status).toBe(501);
      const answer = await response.json();
      expect(answer.code).toBe("evaluation_unavailable");
      expect(answer.error).toMatch(/run where training runs/);
      // The comparison (GET …/rollout's) still answers there: counts and means, no p-values, nothing decided.
      await startRollout(built.pointers, {
        id: "r-edge",
        challenger: "2",
        mode: "shadow",
        weight: 1,
        started_at: STARTED,
        min_outcomes: 30,
        max_duration_seconds: 86_400,
      });
      const comparison = await built.services.rollouts.compare(MODEL);
      expect(comparison).toMatchObject({
        action: "continue",
        reason: "test_unavailable",
        evidence: { pairs: 0, p_value_better: null, p_value_worse: null, pairing: "shadow_of" },
      });
    } finally {
      await edge.cleanup();
    }
  });
});
