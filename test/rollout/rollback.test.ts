import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ROLLBACK_MIN_OUTCOMES, ROLLBACK_WINDOW_DAYS } from "../../src/rollout/rollback.js";
import type { Services } from "../../src/services/index.js";
import type { PointerStore } from "../../src/storage/pointers.js";
import type { PredictionLog, PredictionRecord } from "../../src/storage/prediction-log.js";
import { dieboldMariano } from "../../src/training/diebold-mariano.js";
import { tempDir } from "../support/paths.js";
import {
  backfillAsLive,
  clock,
  days,
  MODEL,
  registerConstantForecaster,
  rolloutServices,
  startRollout,
} from "./support.js";

/**
 * The rollback check: a champion whose live outcomes lose to naive significantly is rolled back to the previous
 * champion in the audit stack that does not itself lose, else to the naive version, audited automatic with the
 * numbers. Live outcomes here are real: a version's backfill over the CSVs' out-of-sample range, copied into the log
 * as live forecasts served at their as-of.
 */
const RANGE = { from: "2025-12-29", to: "2026-03-27" };
const AFTER_DATA = "2026-03-29T00:00:00.000Z";

/** The champion-vs-naive test recomputed from the log, without src/rollout. */
function recomputeAgainstNaive(live: readonly PredictionRecord[], since = Number.NEGATIVE_INFINITY) {
  const rows = live
    .filter((r) => Date.parse(r.served_at) >= since)
    .sort((a, b) => Date.parse(a.target_time) - Date.parse(b.target_time));
  const last = Date.parse(rows.at(-1)?.target_time ?? "");
  const recent = rows.filter((r) => Date.parse(r.target_time) > last - days(ROLLBACK_WINDOW_DAYS));
  const d = recent.map((r) => Math.abs(r.error_pct as number) - Math.abs(r.naive_error_pct as number));
  return {
    outcomes: recent.length,
    p_worse: dieboldMariano(
      d.map((x) => -x),
      1,
    ).pValue,
  };
}

describe("the rollback check of a champion against naive, on live outcomes", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let services: Services;
  let pointers: PointerStore;
  let log: PredictionLog;
  const time = clock("2025-12-01T00:00:00.000Z");

  beforeEach(async () => {
    dir = await tempDir("edgeml-rollback-");
    time.set("2025-12-01T00:00:00.000Z");
    ({ services, pointers, log } = await rolloutServices(dir.path, time.now, { freshPointers: true }));
  });
  afterEach(() => dir.cleanup());

  /** A constant forecaster registered, backfilled and copied into the log as live forecasts. */
  const badVersion = async (logReturn: number) => {
    const version = await registerConstantForecaster(services, logReturn);
    // Backfill replays only as-ofs up to now.
    time.set(AFTER_DATA);
    await services.backfill.run({ model: MODEL, version, ...RANGE });
    return { version, live: await backfillAsLive(log, version) };
  };
  /** Promotes `version` by hand at `at`. */
  const promoteAt = async (version: string, at: string) => {
    time.set(at);
    await services.registry.promote(MODEL, version, "by hand, for the test");
  };

  it("a losing champion goes back to the previous champion (one without live outcomes does not lose)", async () => {
    const bad = await badVersion(0.05);
    await promoteAt("3", "2025-12-01T00:00:00.000Z");
    await promoteAt("2", "2025-12-10T00:00:00.000Z");
    await promoteAt(bad.version, "2025-12-28T00:00:00.000Z");
    time.set(AFTER_DATA);
    const result = await services.rollouts.evaluate(MODEL);
    const expected = recomputeAgainstNaive(bad.live);

    expect(expected.p_worse).toBeLessThan(0.05);
    expect(result.rollout).toBeNull();
    expect(result.rollback).toMatchObject({ champion: bad.version, action: "rollback", to: "2" });
    expect(result.rollback.evidence).toMatchObject({
      alpha: 0.05,
      source: "live",
      since: "2025-12-28T00:00:00.000Z",
      person_set: true,
      champion: {
        version: bad.version,
        outcomes: expected.outcomes,
        p_value_worse: expected.p_worse,
        loses: true,
      },
      candidates: [{ version: "2", outcomes: 0, loses: false, p_value_worse: null }],
    });
    const entry = (await pointers.history(MODEL)).at(-1);
    expect(entry).toMatchObject({
      action: "rollback",
      from: bad.version,
      to: "2",
      automatic: true,
      at: AFTER_DATA,
    });
    expect(entry?.rollout_evidence).toEqual(result.rollback.evidence);
    // A person's champion is rolled back all the same, and the audit says so; the pointer stays theirs.
    expect(entry?.reason).toMatch(/made champion by a person, rolled back all the same/);
    const after = await pointers.get(MODEL);
    expect(after.champion).toBe("2");
    expect(after.automatic).toBeUndefined();
  }, 120_000);

  it("skips a previous champion that loses to naive too, down the stack to one that does not", async () => {
    const bad = await badVersion(0.05);
    const worse = await badVersion(-0.05);
    await promoteAt("3", "2025-12-01T00:00:00.000Z");
    await promoteAt(worse.version, "2025-12-10T00:00:00.000Z");
    await promoteAt(bad.version, "2025-12-28T00:00:00.000Z");
    time.set(AFTER_DATA);
    const result = await services.rollouts.evaluate(MODEL);
    expect(result.rollback).toMatchObject({ action: "rollback", to: "3" });
    expect(result.rollback.evidence?.candidates).toEqual([
      expect.objectContaining({ version: worse.version, loses: true }),
      expect.objectContaining({ version: "3", loses: false }),
    ]);
    expect(result.rollback.summary).toMatch(
      /back to v3 \(the previous champion that does not lose to naive\)/,
    );
    expect((await pointers.get(MODEL)).champion).toBe("3");
  }, 120_000);

  it("with no earlier champion that qualifies, goes to the naive version", async () => {
    const bad = await badVersion(0.05);
    const worse = await badVersion(-0.05);
    await promoteAt(worse.version, "2025-12-10T00:00:00.000Z");
    await promoteAt(bad.version, "2025-12-28T00:00:00.000Z");
    time.set(AFTER_DATA);
    const result = await services.rollouts.evaluate(MODEL);
    expect(result.rollback).toMatchObject({ action: "rollback", to: "3" });
    expect(result.rollback.summary).toMatch(
      /back to v3 \(the naive version: no earlier champion qualifies\)/,
    );
  }, 120_000);

  it("with nothing to roll back to (naive archived), writes nothing and says so: an alert", async () => {
    const bad = await badVersion(0.05);
    await promoteAt(bad.version, "2025-12-28T00:00:00.000Z");
    await pointers.update(MODEL, (current) => ({
      pointers: { ...current, archived: { "3": { at: "2025-12-28T00:00:00.000Z", reason: "test" } } },
      entry: { at: "2025-12-28T00:00:00.000Z", model: MODEL, action: "archive", from: null, to: "3" },
    }));
    time.set(AFTER_DATA);
    const before = await pointers.history(MODEL);
    const result = await services.rollouts.evaluate(MODEL);
    expect(result.rollback).toMatchObject({ action: "alert", to: null, written: null });
    expect(result.rollback.summary).toMatch(/nothing written; roll back by hand/);
    expect(await pointers.history(MODEL)).toEqual(before);
  }, 120_000);

  it("a champion that does not lose significantly stays (the shipped ridge v2), and nothing is written", async () => {
    time.set(AFTER_DATA);
    await services.backfill.run({ model: MODEL, version: "2", ...RANGE });
    const live = await backfillAsLive(log, "2");
    await promoteAt("2", "2025-12-28T00:00:00.000Z");
    time.set(AFTER_DATA);
    const before = await pointers.history(MODEL);
    const result = await services.rollouts.evaluate(MODEL);
    const expected = recomputeAgainstNaive(live);
    expect(expected.p_worse).toBeGreaterThanOrEqual(0.05);
    expect(result.rollback).toMatchObject({ champion: "2", action: "keep", written: null });
    expect(result.rollback.evidence?.champion).toMatchObject({
      p_value_worse: expected.p_worse,
      loses: false,
    });
    expect(await pointers.history(MODEL)).toEqual(before);
  }, 120_000);

  it("counts only what the champion served since it became champion: too few outcomes, it stays", async () => {
    const bad = await badVersion(0.05);
    await promoteAt("3", "2025-12-01T00:00:00.000Z");
    // Promoted on 2026-03-01: 27 live forecasts since (as of 03-01 .. 03-27), fewer than the check needs.
    await promoteAt(bad.version, "2026-03-01T00:00:00.000Z");
    time.set(AFTER_DATA);
    const result = await services.rollouts.evaluate(MODEL);
    expect(ROLLBACK_MIN_OUTCOMES).toBeGreaterThan(27);
    expect(result.rollback).toMatchObject({ action: "keep" });
    expect(result.rollback.evidence?.champion).toMatchObject({
      outcomes: 27,
      p_value_worse: null,
      loses: false,
    });
  }, 120_000);

  it("an automatic champion stays automatic, a running rollout is ended by the rollback, and dry_run writes nothing", async () => {
    const bad = await badVersion(0.05);
    await promoteAt("3", "2025-12-01T00:00:00.000Z");
    await promoteAt(bad.version, "2025-12-28T00:00:00.000Z");
    await pointers.update(MODEL, (current) => ({
      pointers: { ...current, automatic: true },
      entry: {
        at: "2025-12-28T00:00:00.000Z",
        model: MODEL,
        action: "promote",
        from: bad.version,
        to: bad.version,
      },
    }));
    await startRollout(pointers, {
      id: "r-during",
      challenger: "2",
      mode: "shadow",
      weight: 1,
      started_at: "2026-03-28T00:00:00.000Z",
      min_outcomes: 30,
      max_duration_seconds: 30 * 86_400,
    });
    time.set(AFTER_DATA);
    const before = { pointers: await pointers.get(MODEL), history: await pointers.history(MODEL) };
    const dry = await services.rollouts.evaluate(MODEL, { dryRun: true });
    expect(dry.rollback).toMatchObject({ action: "rollback", to: "3", written: null });
    expect(dry.rollout).toMatchObject({ action: "continue", written: null });
    expect({ pointers: await pointers.get(MODEL), history: await pointers.history(MODEL) }).toEqual(before);

    const result = await services.rollouts.evaluate(MODEL);
    expect(result.rollback.written).toMatchObject({ action: "rollback", to: "3", rollout_id: "r-during" });
    expect(result.rollback.written?.reason).not.toMatch(/by a person/);
    expect(result.rollback.written?.reason).toMatch(/ends rollout r-during/);
    const after = await pointers.get(MODEL);
    expect(after).toMatchObject({ champion: "3", automatic: true });
    expect(after.rollout).toBeUndefined();
  }, 120_000);
});
