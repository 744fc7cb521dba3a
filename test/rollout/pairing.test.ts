import { describe, expect, it } from "vitest";
import { distinctOutcomes, pairByBar, pairsOf, type Scope } from "../../src/rollout/pairing.js";
import type { PredictionRecord, PredictionSource } from "../../src/storage/prediction-log.js";

/** What a rollout decision counts, and how two versions' outcomes pair (src/rollout/pairing.ts). */
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse("2026-03-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

/** A resolved record of `version`, as of `day` days after T0, served `servedAfter` ms after its as-of. */
function record(
  version: string,
  day: number,
  fields: Partial<PredictionRecord> & {
    error?: number;
    source?: PredictionSource;
    servedAfter?: number;
  } = {},
): PredictionRecord {
  const { error = 1, servedAfter = 0, source = "live", ...rest } = fields;
  const asOf = T0 + day * DAY;
  return {
    prediction_id: `p-${version}-${day}-${servedAfter}`,
    model: "BTC-24h",
    version,
    symbol: "BTC",
    horizon: "24h",
    as_of: iso(asOf),
    target_time: iso(asOf + DAY),
    last_close: 100,
    predicted_price: 100 + error,
    predicted_log_return: Math.log((100 + error) / 100),
    served_at: iso(asOf + servedAfter),
    chosen_via: "champion",
    source,
    actual_price: 100,
    actual_time: iso(asOf + DAY),
    error_pct: error,
    naive_error_pct: 0.5,
    direction_hit: true,
    resolved_at: iso(asOf + DAY),
    ...rest,
  };
}

const everything: Scope = { sources: ["live", "shadow"], from: -Infinity, to: Infinity };

describe("outcomes: a distinct (version, target bar) resolved against the market", () => {
  it("copies of one cached forecast (new prediction ids, same version and bar) are one outcome, the first served", () => {
    const copies = [
      record("2", 0, { servedAfter: 10 * 60_000, error: 9 }),
      record("2", 0, { servedAfter: 0, error: 2 }),
      record("2", 0, { servedAfter: 5 * 60_000, error: 7 }),
    ];
    const outcomes = distinctOutcomes(copies);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ prediction_id: "p-2-0-0", ape: 2, naive_ape: 0.5 });
  });

  it("another version on the same bar, or the same version on another bar, is another outcome", () => {
    const outcomes = distinctOutcomes([record("2", 0), record("3", 0), record("2", 1)]);
    expect(outcomes.map((o) => `${o.version}@${o.as_of.slice(0, 10)}`)).toEqual([
      "2@2026-03-01",
      "3@2026-03-01",
      "2@2026-03-02",
    ]);
  });

  it("an unresolved record is no outcome, and errors count by their absolute value", () => {
    const { actual_price, actual_time, error_pct, naive_error_pct, direction_hit, resolved_at, ...open } =
      record("2", 1);
    const outcomes = distinctOutcomes([open, record("2", 0, { error: -3, naive_error_pct: -1.5 })]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ ape: 3, naive_ape: 1.5 });
  });
});

describe("canary pairing: the bars both versions have an outcome for", () => {
  it("pairs by target bar, once per bar however many copies, oldest first", () => {
    const records = [
      record("3", 2),
      record("3", 0),
      record("3", 0, { servedAfter: 300_000 }),
      record("4", 0, { chosen_via: "canary" }),
      record("4", 0, { chosen_via: "canary", servedAfter: 60_000 }),
      record("4", 1, { chosen_via: "canary" }),
      record("4", 2, { chosen_via: "canary" }),
    ];
    const { pairs, champion, challenger } = pairsOf(
      records,
      { champion: "3", challenger: "4" },
      everything,
      "bar",
    );
    expect(champion).toHaveLength(2);
    expect(challenger).toHaveLength(3);
    // Day 1 has no champion outcome: no pair.
    expect(pairs.map((p) => p.target_time)).toEqual([iso(T0 + DAY), iso(T0 + 3 * DAY)]);
    expect(pairs.every((p) => p.champion.version === "3" && p.challenger.version === "4")).toBe(true);
  });

  it("pairByBar joins on the instant, whatever the string", () => {
    const a = distinctOutcomes([record("3", 0)]);
    const b = distinctOutcomes([record("4", 0, { target_time: "2026-03-02T00:00:00Z" })]);
    expect(pairByBar(a, b)).toHaveLength(1);
  });
});

describe("shadow pairing: each shadow forecast with the champion answer it was computed beside", () => {
  const answer = (day: number, servedAfter = 0) => record("3", day, { servedAfter });
  const shadowOf = (of: PredictionRecord, error = 1) =>
    record("4", Math.round((Date.parse(of.as_of) - T0) / DAY), {
      prediction_id: of.prediction_id,
      source: "shadow",
      shadow_of: of.prediction_id,
      served_at: of.served_at,
      error,
    });

  it("pairs by shadow_of, never by bar alone", () => {
    const a0 = answer(0);
    const a1 = answer(1);
    // A champion answer with no shadow beside it (dropped: the queue was deep), and a shadow whose answer is not in
    // scope: neither pairs, although the other version has an outcome on that bar.
    const lone = record("4", 1, { prediction_id: "elsewhere", source: "shadow", shadow_of: "not-logged" });
    const { pairs } = pairsOf(
      [a0, a1, shadowOf(a0, 4), lone],
      { champion: "3", challenger: "4" },
      everything,
      "shadow_of",
    );
    expect(pairs).toHaveLength(1);
    expect(pairs[0]).toMatchObject({
      champion: { prediction_id: a0.prediction_id, ape: 1 },
      challenger: { prediction_id: a0.prediction_id, ape: 4 },
    });
  });

  it("cached copies of the answer, each mirrored, are one pair: the first served", () => {
    const first = answer(0, 0);
    const copy = answer(0, 300_000);
    const { pairs } = pairsOf(
      [copy, first, shadowOf(copy, 8), shadowOf(first, 2)],
      { champion: "3", challenger: "4" },
      everything,
      "shadow_of",
    );
    expect(pairs).toHaveLength(1);
    expect(pairs[0]?.champion.prediction_id).toBe(first.prediction_id);
    expect(pairs[0]?.challenger.ape).toBe(2);
  });

  it("a shadow rollout counts the challenger's shadow records only, a canary its served ones", () => {
    const a0 = answer(0);
    const served = record("4", 0, { chosen_via: "requested", error: 9 });
    const shadow = shadowOf(a0, 2);
    const versions = { champion: "3", challenger: "4" };
    expect(pairsOf([a0, served, shadow], versions, everything, "shadow_of").challenger).toEqual([
      expect.objectContaining({ ape: 2 }),
    ]);
    expect(pairsOf([a0, served, shadow], versions, everything, "bar").challenger).toEqual([
      expect.objectContaining({ ape: 9 }),
    ]);
  });
});

describe("scope: in production only live and shadow records served since the rollout started", () => {
  const started = T0 + 5 * DAY;
  const production: Scope = { sources: ["live", "shadow"], from: started, to: Infinity };

  it("leaves out what was served before started_at, and every replay and backfill", () => {
    const records = [
      record("3", 4, { servedAfter: 23 * HOUR }), // before the start
      record("4", 4, { servedAfter: 23 * HOUR }),
      record("3", 5),
      record("4", 5),
      record("3", 6, { source: "backfill" }),
      record("4", 6, { source: "backfill" }),
      record("3", 7, { source: "replay" }),
      record("4", 7, { source: "replay" }),
      record("3", 8),
      record("4", 8, { source: "backfill" }),
    ];
    const { pairs, champion, challenger } = pairsOf(
      records,
      { champion: "3", challenger: "4" },
      production,
      "bar",
    );
    expect(champion.map((o) => o.as_of)).toEqual([iso(T0 + 5 * DAY), iso(T0 + 8 * DAY)]);
    expect(challenger.map((o) => o.as_of)).toEqual([iso(T0 + 5 * DAY)]);
    expect(pairs.map((p) => p.champion.as_of)).toEqual([iso(T0 + 5 * DAY)]);
  });

  it("a replayed source counts only itself, within from/to on served_at (a backfill is served at its as-of)", () => {
    const records = [4, 5, 6, 7].flatMap((d) => [
      record("3", d, { source: "backfill" }),
      record("4", d, { source: "backfill" }),
      record("3", d, { error: 5 }),
      record("4", d, { error: 5 }),
    ]);
    const scope: Scope = { sources: ["backfill"], from: T0 + 5 * DAY, to: T0 + 6 * DAY };
    const { pairs } = pairsOf(records, { champion: "3", challenger: "4" }, scope, "bar");
    expect(pairs.map((p) => [p.champion.as_of, p.champion.ape, p.challenger.ape])).toEqual([
      [iso(T0 + 5 * DAY), 1, 1],
      [iso(T0 + 6 * DAY), 1, 1],
    ]);
  });
});
