import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferenceEngine } from "../../src/inference/engine.js";
import { ADMIN_TOKEN, testEngine } from "../support/app.js";
import { MODEL, type RolloutApp, rolloutApp } from "./serving-app.js";

/** Distinct past instants inside the shipped CSVs: each is a forecast of its own (its own as-of bar, its own id). */
const AS_OFS = ["2026-03-20", "2026-03-21", "2026-03-22", "2026-03-23", "2026-03-24", "2026-03-25"];

/** The shared engine, reporting a queue as deep as `depth()` says: a deterministic stand-in for a busy server. */
function engineWithQueue(depth: () => number): InferenceEngine {
  const engine = testEngine();
  return { ...engine, stats: () => ({ ...engine.stats(), queued: depth() }) };
}

async function metric(t: RolloutApp, line: RegExp): Promise<number | undefined> {
  const text = await (
    await t.request("/metrics", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).text();
  const match = text.split("\n").find((l) => line.test(l));
  return match === undefined ? undefined : Number(match.split(" ").at(-1));
}

describe("shadow rollout: the champion answers, the challenger is logged beside it", () => {
  let t: RolloutApp;
  const answers: { prediction_id: string; model_version: string; predicted_price: number }[] = [];

  beforeAll(async () => {
    t = await rolloutApp();
    expect((await t.startRollout({ challenger: "2", mode: "shadow", weight: 1 })).status).toBe(201);
    for (const asOf of AS_OFS) {
      const res = await t.serve(`client-${asOf}`, asOf);
      expect(res.status).toBe(200);
      answers.push(await res.json());
      // Served again: a cached copy of the same forecast, not a new one to mirror.
      expect((await t.serve(`other-${asOf}`, asOf)).headers.get("x-cache")).toBe("HIT");
    }
    await t.work.settled();
  }, 300_000);
  afterAll(() => t.cleanup());

  it("every response is the champion's (v3), chosen as champion", () => {
    expect(answers.map((a) => a.model_version)).toEqual(AS_OFS.map(() => "3"));
  });

  it("the log holds the challenger's forecast for the same prediction ids, source shadow, shadow_of the answer", async () => {
    const shadows = (await t.log.list(MODEL, { version: "2", limit: 1000 })).items;
    expect(shadows.map((r) => r.shadow_of).sort()).toEqual(answers.map((a) => a.prediction_id).sort());
    for (const answer of answers) {
      const records = await t.log.get(MODEL, answer.prediction_id);
      const shadow = records.find((r) => r.version === "2");
      const served = records.find((r) => r.version === "3");
      expect(served).toMatchObject({ source: "replay", predicted_price: answer.predicted_price });
      expect(served?.shadow_of).toBeUndefined();
      expect(shadow).toMatchObject({
        source: "shadow",
        shadow_of: answer.prediction_id,
        chosen_via: "shadow",
      });
      // The same bar: as_of, target and last close are the answer's; the price is the ridge model's own.
      expect(shadow?.as_of).toBe(served?.as_of);
      expect(shadow?.target_time).toBe(served?.target_time);
      expect(shadow?.last_close).toBe(served?.last_close);
    }
    // v2 (ridge) forecasts a move; v3 (naive) holds the last close: the logged prices are the challenger's.
    expect(shadows.some((r) => r.predicted_price !== r.last_close)).toBe(true);
  });

  it("a cached copy is not a new forecast: one shadow per prediction id, none for the copies", async () => {
    const shadows = (await t.log.list(MODEL, { version: "2", limit: 1000 })).items;
    expect(shadows).toHaveLength(AS_OFS.length);
  });

  it("no shadow was dropped", async () => {
    expect(await metric(t, /^edgeml_shadow_dropped_total/)).toBeUndefined();
  });
});

describe("shadow runs yield to answers: dropped and counted past SHADOW_MAX_QUEUE_DEPTH", () => {
  let t: RolloutApp;
  let depth = 0;
  beforeAll(async () => {
    t = await rolloutApp(
      { config: { shadowMaxQueueDepth: 4 } },
      engineWithQueue(() => depth),
    );
    expect((await t.startRollout({ challenger: "2", mode: "shadow", weight: 1 })).status).toBe(201);
  }, 120_000);
  afterAll(() => t.cleanup());

  it("at depth 4 the mirror runs; at depth 5 it is dropped, counted, and the answer is the same", async () => {
    depth = 4;
    const kept = await (await t.serve("a", "2026-03-10")).json();
    depth = 5;
    const dropped = await t.serve("b", "2026-03-11");
    expect(dropped.status).toBe(200);
    const body = await dropped.json();
    expect(body.model_version).toBe("3");
    await t.work.settled();
    expect((await t.log.get(MODEL, kept.prediction_id)).map((r) => r.version).sort()).toEqual(["2", "3"]);
    expect((await t.log.get(MODEL, body.prediction_id)).map((r) => r.version)).toEqual(["3"]);
    expect(await metric(t, /^edgeml_shadow_dropped_total\{model="BTC-24h",reason="queue_depth"\}/)).toBe(1);
  });
});

describe("a failing shadow is warned about once and counted, never seen by the client", () => {
  let t: RolloutApp;
  const warnings: string[] = [];
  beforeAll(async () => {
    t = await rolloutApp({
      logger: {
        info: () => {},
        warn: (message: string) => warnings.push(message),
        error: (message: string) => warnings.push(`error: ${message}`),
      },
    });
    expect((await t.startRollout({ challenger: "2", mode: "shadow", weight: 1 })).status).toBe(201);
    // The challenger is archived behind the rollout's back: every mirror now fails (410 from the registry).
    await archive(t, "2");
  }, 120_000);
  afterAll(() => t.cleanup());

  it("two answers, two failed mirrors, one warning", async () => {
    for (const asOf of ["2026-03-12", "2026-03-13"]) {
      const res = await t.serve("c", asOf);
      expect(res.status).toBe(200);
      expect((await res.json()).model_version).toBe("3");
    }
    await t.work.settled();
    expect(warnings.filter((w) => w.startsWith("shadow forecasts unavailable"))).toHaveLength(1);
    expect(await metric(t, /^edgeml_shadow_dropped_total\{model="BTC-24h",reason="failed"\}/)).toBe(2);
    expect((await t.log.list(MODEL, { source: "shadow" })).items).toEqual([]);
  });
});

/** Archives `version` in the pointers directly, as retention would. */
async function archive(t: RolloutApp, version: string) {
  await t.pointers.update(MODEL, (current) => ({
    pointers: {
      ...current,
      archived: { ...current.archived, [version]: { at: "2026-03-01T00:00:00Z", reason: "test" } },
    },
    entry: { at: new Date().toISOString(), model: MODEL, action: "archive", from: version, to: null },
  }));
}
