import { describe, expect, it } from "vitest";
import { mirrors } from "../../src/rollout/shadow.js";
import type { Rollout } from "../../src/storage/pointers.js";
import type { PredictionEntry } from "../../src/storage/prediction-log.js";

const rollout = (over: Partial<Rollout> = {}): Rollout => ({
  id: "r-1",
  challenger: "2",
  champion: "3",
  mode: "shadow",
  weight: 1,
  started_at: "2026-03-01T00:00:00.000Z",
  min_outcomes: 30,
  max_duration_seconds: 86_400,
  ...over,
});

const served = (version: string, prediction_id = "p-1") => ({ version, prediction_id }) as PredictionEntry;

describe("which answers a shadow rollout mirrors (src/rollout/shadow.ts, mirrors)", () => {
  it.each<[string, Rollout | undefined, PredictionEntry, boolean]>([
    ["no rollout: none", undefined, served("3"), false],
    [
      "a canary rollout: none (canaries serve, they do not mirror)",
      rollout({ mode: "canary" }),
      served("3"),
      false,
    ],
    ["the champion's forecast at weight 1", rollout(), served("3"), true],
    ["the challenger's own forecast (a client naming it): never", rollout(), served("2"), false],
    [
      "another version's forecast (a pin, a request naming it): not the comparison",
      rollout(),
      served("1"),
      false,
    ],
    [
      "no champion recorded: whatever serves, but the challenger",
      rollout({ champion: null }),
      served("1"),
      true,
    ],
    ["weight 0: none", rollout({ weight: 0 }), served("3"), false],
  ])("%s", (_, given, answer, expected) => {
    expect(mirrors(given, answer)).toBe(expected);
  });

  it("weight 0.5 mirrors about half the forecasts, each decided by its prediction id alone", () => {
    const ids = Array.from({ length: 2_000 }, (_, i) => `prediction-${i}`);
    const drawn = ids.filter((id) => mirrors(rollout({ weight: 0.5 }), served("3", id)));
    expect(Math.abs(drawn.length / ids.length - 0.5)).toBeLessThan(0.05);
    // The same id is always drawn the same way: a retried write never mirrors twice or skips.
    expect(ids.filter((id) => mirrors(rollout({ weight: 0.5 }), served("3", id)))).toEqual(drawn);
  });
});
