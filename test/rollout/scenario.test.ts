import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRolloutDecisions } from "../../src/rollout/evaluate.js";
import type { Services } from "../../src/services/index.js";
import type { PointerStore } from "../../src/storage/pointers.js";
import type { PredictionLog } from "../../src/storage/prediction-log.js";
import { dieboldMariano } from "../../src/training/diebold-mariano.js";
import { tempDir } from "../support/paths.js";
import {
  clock,
  days,
  everyRecord,
  MODEL,
  recompute,
  registerConstantForecaster,
  rolloutServices,
  startRollout,
} from "./support.js";

/**
 * The scripted scenario of issue 12 on backfilled real data: the shipped BTC-24h versions (v1 gbdt, v2 ridge, v3
 * naive, the champion) and a deliberately bad one, backfilled over the CSVs' out-of-sample range (after the trained
 * versions' data cutoff, 2025-12-28), a rollout started, and evaluated with source backfill and from/to. Every
 * decision equals what a recomputation of the Diebold–Mariano test from the logged outcomes says, and its audit
 * entry holds those numbers.
 */
const RANGE = { from: "2025-12-29", to: "2026-03-27" };
const RANGE_MS = { from: Date.parse("2025-12-29T00:00:00Z"), to: Date.parse("2026-03-27T00:00:00Z") };
const STARTED = "2026-04-01T00:00:00.000Z";
const ROLLOUT = {
  mode: "canary" as const,
  weight: 0.2,
  started_at: STARTED,
  min_outcomes: 30,
  max_duration_seconds: 30 * 86_400,
};

describe("rollout evaluation on backfilled CSV outcomes", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let services: Services;
  let pointers: PointerStore;
  let log: PredictionLog;
  const time = clock(STARTED);

  beforeEach(async () => {
    dir = await tempDir("edgeml-rollout-");
    time.set(STARTED);
    ({ services, pointers, log } = await rolloutServices(dir.path, time.now));
  });
  afterEach(() => dir.cleanup());

  const backfill = async (...versions: string[]) => {
    for (const version of versions) {
      const summary = await services.backfill.run({ model: MODEL, version, ...RANGE });
      expect(summary).toMatchObject({ version, forecasts: 89, resolved: 89, skipped_before_cutoff: 0 });
    }
  };
  const recomputed = async (champion: string, challenger: string) =>
    recompute(await everyRecord(log), { champion, challenger, source: "backfill", ...RANGE_MS });

  it.each([
    ["1", "the shipped gbdt"],
    ["2", "the shipped ridge"],
  ])(
    "v%s (%s) against the naive champion: the decision is the recomputed test's",
    async (challenger) => {
      await backfill("3", challenger);
      await startRollout(pointers, { id: `r-${challenger}`, challenger, ...ROLLOUT });
      const before = await pointers.history(MODEL);
      const result = await services.rollouts.evaluate(MODEL, { source: "backfill", ...RANGE });
      const expected = await recomputed("3", challenger);

      expect(expected.pairs).toBe(89);
      expect(result.rollout?.action).toBe(expected.decision);
      expect(result.rollout?.evidence).toMatchObject({
        source: "backfill",
        pairing: "bar",
        champion: "3",
        challenger,
        pairs: 89,
        outcomes: { champion: 89, challenger: 89 },
        mean_ape: { champion: expected.champion_mape, challenger: expected.challenger_mape },
        dm_statistic: expected.statistic,
        p_value_better: expected.p_better,
        p_value_worse: expected.p_worse,
        alpha: 0.05,
        horizon_bars: 1,
        window: {
          from: "2025-12-29T00:00:00.000Z",
          to: "2026-03-27T00:00:00.000Z",
          first_target: expected.first,
          last_target: expected.last,
        },
      });
      expect(result.rollout?.evidence.test).toMatch(/^one-sided Diebold–Mariano/);
      const after = await pointers.history(MODEL);
      if (expected.decision === "continue") {
        // Neither significantly better nor worse, inside max_duration: nothing is written.
        expect(result.rollout?.written).toBeNull();
        expect(after).toEqual(before);
        expect((await pointers.get(MODEL)).rollout?.id).toBe(`r-${challenger}`);
      } else {
        expect(after.at(-1)).toEqual(result.rollout?.written);
        expect(after.at(-1)?.rollout_evidence).toEqual(result.rollout?.evidence);
      }
    },
    120_000,
  );

  it("a clearly worse challenger (a constant +5 % a day) ends the rollout, audited with the numbers", async () => {
    const bad = await registerConstantForecaster(services, 0.05);
    await backfill("3", bad);
    await startRollout(pointers, { id: "r-bad", challenger: bad, ...ROLLOUT });
    const result = await services.rollouts.evaluate(MODEL, { source: "backfill", ...RANGE });
    const expected = await recomputed("3", bad);

    expect(expected.decision).toBe("end");
    expect(expected.p_worse).toBeLessThan(1e-6);
    expect(result.rollout).toMatchObject({ action: "end", reason: "challenger_worse" });
    expect(result.rollout?.evidence).toMatchObject({
      pairs: expected.pairs,
      dm_statistic: expected.statistic,
      p_value_worse: expected.p_worse,
      p_value_better: expected.p_better,
      mean_ape: { champion: expected.champion_mape, challenger: expected.challenger_mape },
    });
    const entry = (await pointers.history(MODEL)).at(-1);
    expect(entry).toMatchObject({
      action: "rollout_end",
      from: bad,
      to: "3",
      automatic: true,
      rollout_id: "r-bad",
      at: STARTED,
    });
    expect(entry?.reason).toMatch(/significantly worse: 89 paired outcomes/);
    expect(entry?.rollout_evidence).toEqual(result.rollout?.evidence);
    const after = await pointers.get(MODEL);
    expect(after.rollout).toBeUndefined();
    expect(after.champion).toBe("3");
    // The champion is naive: the rollback check has nothing to check.
    expect(result.rollback).toMatchObject({ champion: "3", action: "skip" });
  }, 120_000);

  it("the naive baseline as challenger of a bad champion is promoted, audited automatic with the rollout's numbers", async () => {
    const bad = await registerConstantForecaster(services, 0.05);
    await services.registry.promote(MODEL, bad, "a person's mistake, for the test");
    await backfill("3", bad);
    await startRollout(pointers, { id: "r-naive", challenger: "3", ...ROLLOUT });
    const result = await services.rollouts.evaluate(MODEL, { source: "backfill", ...RANGE });
    const expected = await recomputed(bad, "3");

    expect(expected.decision).toBe("promote");
    expect(result.rollout).toMatchObject({ action: "promote", reason: "challenger_better" });
    expect(result.rollout?.evidence).toMatchObject({
      champion: bad,
      challenger: "3",
      p_value_better: expected.p_better,
      dm_statistic: expected.statistic,
    });
    const entry = (await pointers.history(MODEL)).at(-1);
    expect(entry).toMatchObject({
      action: "promote",
      from: bad,
      to: "3",
      automatic: true,
      rollout_id: "r-naive",
    });
    expect(entry?.rollout_evidence).toEqual(result.rollout?.evidence);
    const after = await pointers.get(MODEL);
    expect(after.champion).toBe("3");
    expect(after.rollout).toBeUndefined();
    // The person's pointer stays theirs: a decision from outcomes does not hand the model to the selection policy.
    expect(after.automatic).toBeUndefined();
    const serving = await services.registry.resolve(MODEL);
    expect(serving).toMatchObject({ meta: { version: "3" }, via: "champion" });
  }, 120_000);

  it("max_duration passed undecided: ends with reason timeout; before it, continues and writes nothing", async () => {
    await backfill("3", "2");
    await startRollout(pointers, { id: "r-slow", challenger: "2", ...ROLLOUT });
    // Eight days of outcomes: fewer than min_outcomes, so the test cannot decide.
    const narrow = { source: "backfill" as const, from: "2026-03-20", to: "2026-03-27" };
    time.set("2026-04-30T23:59:59.000Z");
    const early = await services.rollouts.evaluate(MODEL, narrow);
    expect(early.rollout).toMatchObject({ action: "continue", reason: "too_few_outcomes", written: null });
    expect(early.rollout?.evidence).toMatchObject({ pairs: 8, p_value_better: null });
    expect((await pointers.history(MODEL)).at(-1)?.action).toBe("rollout_start");

    time.set("2026-05-01T00:00:00.000Z");
    const late = await services.rollouts.evaluate(MODEL, narrow);
    expect(late.rollout).toMatchObject({ action: "end", reason: "timeout" });
    expect(late.rollout?.evidence).toMatchObject({
      pairs: 8,
      elapsed_seconds: 30 * 86_400,
      max_duration_seconds: 30 * 86_400,
    });
    const entry = (await pointers.history(MODEL)).at(-1);
    expect(entry).toMatchObject({ action: "rollout_end", rollout_id: "r-slow", from: "2", to: "3" });
    expect(entry?.reason).toMatch(/max_duration_seconds 2592000 passed/);
    expect(entry?.rollout_evidence).toMatchObject({ action: "end", reason: "timeout", pairs: 8 });
    expect((await pointers.get(MODEL)).rollout).toBeUndefined();
  }, 120_000);

  it("dry_run answers the decision and writes nothing", async () => {
    const bad = await registerConstantForecaster(services, 0.05);
    await backfill("3", bad);
    await startRollout(pointers, { id: "r-dry", challenger: bad, ...ROLLOUT });
    const pointersBefore = await pointers.get(MODEL);
    const historyBefore = await pointers.history(MODEL);
    const result = await services.rollouts.evaluate(MODEL, { source: "backfill", ...RANGE, dryRun: true });
    expect(result).toMatchObject({ dry_run: true, rollout: { action: "end", written: null } });
    expect(await pointers.get(MODEL)).toEqual(pointersBefore);
    expect(await pointers.history(MODEL)).toEqual(historyBefore);
    // The same call without dry_run writes what the dry run said.
    const wet = await services.rollouts.evaluate(MODEL, { source: "backfill", ...RANGE });
    expect(wet.rollout?.evidence).toEqual(result.rollout?.evidence);
    expect(wet.rollout?.written?.rollout_evidence).toEqual(result.rollout?.evidence);
  }, 120_000);

  it("a rollout replaced while it was evaluated is not decided on: nothing written, and the answer says so", async () => {
    const bad = await registerConstantForecaster(services, 0.05);
    await backfill("3", bad);
    const read = await startRollout(pointers, { id: "r-read", challenger: bad, ...ROLLOUT });
    const stored = { ...read, id: "r-replaced" };
    await pointers.update(MODEL, (current) => ({
      pointers: { ...current, rollout: stored },
      entry: {
        at: STARTED,
        model: MODEL,
        action: "rollout_start",
        from: "3",
        to: bad,
        rollout_id: stored.id,
      },
    }));
    // The evaluation reads the rollout as it was (a cached read), and writes under the lock against what is stored.
    const stale: PointerStore = {
      ...pointers,
      get: async (model) => ({ ...(await pointers.get(model)), rollout: read }),
      update: (model, change) => pointers.update(model, change),
      history: (model) => pointers.history(model),
      set: (model, next, entry) => pointers.set(model, next, entry),
    };
    const decisions = createRolloutDecisions({
      log,
      pointers: stale,
      registry: services.registry,
      test: dieboldMariano,
      now: time.now,
      warn: () => {},
    });
    const before = await pointers.history(MODEL);
    const result = await decisions.evaluate(MODEL, { source: "backfill", ...RANGE });
    expect(result.rollout).toMatchObject({ action: "end", written: null, rollout: { id: "r-read" } });
    expect(result.rollout?.summary).toMatch(/\(not written: the rollout changed meanwhile\)$/);
    expect(await pointers.history(MODEL)).toEqual(before);
    expect((await pointers.get(MODEL)).rollout?.id).toBe("r-replaced");
  }, 120_000);

  it("in production (source live) backfilled outcomes do not count: too few, nothing decided", async () => {
    const bad = await registerConstantForecaster(services, 0.05);
    await backfill("3", bad);
    await startRollout(pointers, { id: "r-live", challenger: bad, ...ROLLOUT });
    const result = await services.rollouts.evaluate(MODEL);
    expect(result.rollout).toMatchObject({ action: "continue", reason: "too_few_outcomes", written: null });
    expect(result.rollout?.evidence).toMatchObject({
      source: "live",
      pairs: 0,
      outcomes: { champion: 0, challenger: 0 },
      window: { from: STARTED },
    });
  }, 120_000);

  it("compare (GET …/rollout's numbers) says what evaluate would decide and writes nothing", async () => {
    const bad = await registerConstantForecaster(services, 0.05);
    await backfill("3", bad);
    await startRollout(pointers, { id: "r-cmp", challenger: bad, ...ROLLOUT });
    const historyBefore = await pointers.history(MODEL);
    const comparison = await services.rollouts.compare(MODEL, { source: "backfill", ...RANGE });
    expect(comparison).toMatchObject({ model: MODEL, action: "end", rollout: { id: "r-cmp" } });
    expect(await pointers.history(MODEL)).toEqual(historyBefore);
    expect(await services.rollouts.compare("ETH-24h")).toBeNull();
    time.advance(days(1));
  }, 120_000);
});
