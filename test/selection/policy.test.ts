import { describe, expect, it } from "vitest";
import type { VersionMetadata } from "../../src/registry/metadata.js";
import { resolveVersion } from "../../src/registry/resolution.js";
import {
  compareOnSharedFolds,
  decideChampion,
  holmAdjust,
  SELECTION_ALPHA,
  servingEvidence,
  signTestPValue,
} from "../../src/selection/policy.js";
import { meta, NAIVE_MAPE, QUARTERS } from "./support.js";

const naive = meta("1", { family: "naive" });
const better = (by: number) => QUARTERS.map(() => NAIVE_MAPE - by);

describe("Holm's step-down adjustment", () => {
  it.each([
    // Sorted 0.01, 0.02, 0.04 → 3·0.01, 2·0.02, 1·0.04, made monotone.
    ["three p-values", [0.04, 0.01, 0.02], [0.04, 0.03, 0.04]],
    ["one p-value is its own", [0.03], [0.03]],
    ["capped at 1", [0.6, 0.9], [1, 1]],
    ["monotone: a later smaller product takes the earlier", [0.02, 0.021, 0.5], [0.06, 0.06, 0.5]],
  ])("%s", (_, raw, adjusted) => {
    holmAdjust(raw).forEach((p, i) => {
      expect(p).toBeCloseTo(adjusted[i] as number, 12);
    });
  });
});

describe("exact one-sided sign test", () => {
  it.each([
    [6, 6, 1 / 64],
    [5, 6, 7 / 64],
    [3, 6, 42 / 64],
    [0, 4, 1],
    [0, 0, 1],
  ])("%i wins of %i folds → p = %f", (wins, n, p) => {
    expect(signTestPValue(wins, n)).toBeCloseTo(p, 12);
  });
});

describe("decideChampion (strict): significant against naive, else naive", () => {
  it.each<[string, VersionMetadata[], string, boolean]>([
    ["no version significant → naive", [naive, meta("2", { p: 0.2 }), meta("3", { p: 0.051 })], "1", true],
    ["the significant one", [naive, meta("2", { p: 0.2 }), meta("3", { p: 0.01 })], "3", false],
    [
      "among significant ones, the best mean walk-forward skill (not the test split)",
      [
        naive,
        meta("2", { p: 0.001, wfSkill: 0.02, skill: 0.5 }),
        meta("3", { p: 0.002, wfSkill: 0.03, skill: -0.1 }),
      ],
      "3",
      false,
    ],
    [
      "a version without a walk-forward report is never chosen, whatever its test-split skill",
      [naive, meta("2", { skill: 0.9 })],
      "1",
      true,
    ],
  ])("%s", (_, versions, version, isNaiveChoice) => {
    const decision = decideChampion({ versions });
    expect(decision).toMatchObject({ kind: "choose", version, naive: isNaiveChoice });
  });

  it("names the test and level in the evidence, with the chosen version's window and folds", () => {
    const decision = decideChampion({ versions: [naive, meta("2", { p: 0.01 })] });
    expect(decision.kind === "choose" && decision.evidence).toEqual({
      p_value: 0.01,
      holm_p_value: 0.01,
      test: expect.stringContaining("one-sided Diebold–Mariano"),
      alpha: SELECTION_ALPHA,
      window: { from: QUARTERS[0][0], to: QUARTERS[5][1] },
      folds: 6,
    });
  });

  it("no naive version and nothing significant: nothing to choose (resolution falls back and says so)", () => {
    expect(decideChampion({ versions: [meta("1", { p: 0.3 })] }).kind).toBe("none");
  });

  describe("Holm across 3 candidates at α = 0.05", () => {
    // Raw p 0.02, 0.03, 0.04: each below α alone. Holm: 0.02·3 = 0.06 ≥ α → nothing rejected.
    it("three p-values each below α alone: none passes, naive serves", () => {
      const versions = [naive, meta("2", { p: 0.02 }), meta("3", { p: 0.03 }), meta("4", { p: 0.04 })];
      const decision = decideChampion({ versions });
      expect(decision).toMatchObject({ kind: "choose", version: "1", naive: true });
      expect(decision.verdicts.map((v) => [v.version, v.holm_p_value, v.eligible])).toEqual([
        ["2", 0.06, false],
        ["3", 0.06, false],
        ["4", 0.06, false],
      ]);
    });

    // 0.01·3 = 0.03 < α rejects; 0.02·2 = 0.04 < α rejects; 0.04·1 = 0.04 < α rejects.
    it("step-down: once the smallest passes, the next is tested at α/2, the last at α", () => {
      const versions = [
        naive,
        meta("2", { p: 0.01, wfSkill: 0.01 }),
        meta("3", { p: 0.02, wfSkill: 0.03 }),
        meta("4", { p: 0.04, wfSkill: 0.02 }),
      ];
      const decision = decideChampion({ versions });
      expect(decision.verdicts.map((v) => v.eligible)).toEqual([true, true, true]);
      expect(decision).toMatchObject({ kind: "choose", version: "3" });
    });

    // 0.01·3 = 0.03 passes; 0.03·2 = 0.06 fails, and so does everything after it.
    it("stops at the first failure", () => {
      const versions = [naive, meta("2", { p: 0.01 }), meta("3", { p: 0.03 }), meta("4", { p: 0.04 })];
      expect(decideChampion({ versions }).verdicts.map((v) => v.eligible)).toEqual([true, false, false]);
    });
  });

  describe("a new version replaces the current automatic champion only if it also beats it on shared folds", () => {
    const current = meta("2", { p: 0.001, mapes: better(0.1) });
    it.each<[string, VersionMetadata, string]>([
      [
        "significant but worse than the current on the shared folds → kept",
        meta("3", { p: 0.001, mapes: better(0.05) }),
        "keep",
      ],
      [
        "significant and better on every shared fold → replaced",
        meta("3", { p: 0.001, mapes: better(0.2) }),
        "choose",
      ],
      [
        "better on a minority of folds but a lower mean → kept (majority and mean both needed)",
        meta("3", { p: 0.001, mapes: [1.9, 1.95, 1.95, 1.95, 1.95, 0.5] }),
        "keep",
      ],
      [
        "better on every fold but not significant against naive → kept",
        meta("3", { p: 0.2, mapes: better(0.3) }),
        "keep",
      ],
      [
        "no shared folds (other calendar spans) → kept",
        meta("3", {
          p: 0.001,
          mapes: better(0.3),
          folds: QUARTERS.map(([from, to]) => [from.replace("01T", "02T"), to] as const),
        }),
        "keep",
      ],
    ])("%s", (_, candidate, kind) => {
      const decision = decideChampion({
        versions: [naive, current, candidate],
        candidates: ["3"],
        current: "2",
      });
      expect(decision.kind).toBe(kind);
      if (decision.kind === "choose") expect(decision.evidence.compared_with).toMatchObject({ version: "2" });
    });

    it("compares on the folds both have (same from, to, rows) and reports the sign test beside the rule", () => {
      const shifted = meta("3", { p: 0.001, mapes: [1, 1, 1, 1], folds: QUARTERS.slice(2) });
      expect(compareOnSharedFolds(shifted, current)).toEqual({
        version: "2",
        shared_folds: 4,
        wins: 4,
        mean_mape: 1,
        current_mean_mape: NAIVE_MAPE - 0.1,
        sign_test_p_value: 1 / 16,
        beats: true,
      });
    });

    it("against a naive champion, the candidate must beat naive's MAPE on a majority of its folds too", () => {
      const lucky = meta("3", { p: 0.01, mapes: [2.5, 2.5, 2.5, 2.5, 1, 1] });
      expect(decideChampion({ versions: [naive, lucky], candidates: ["3"], current: "1" }).kind).toBe("keep");
    });
  });
});

describe("servingEvidence: what a forecast response says about its version", () => {
  it.each<[string, VersionMetadata, boolean, number | null, number]>([
    ["significant version", meta("2", { p: 0.01 }), true, 0.01, 6],
    ["not significant", meta("2", { p: 0.3 }), false, 0.3, 6],
    ["naive: never beats itself", naive, false, 1, 6],
    ["no walk-forward report: no evidence", meta("2", { skill: 0.5 }), false, null, 0],
  ])("%s", (_, version, beats, p, folds) => {
    expect(servingEvidence(version)).toEqual({
      beats_naive: beats,
      evidence: {
        p_value: p,
        window: folds ? { from: QUARTERS[0][0], to: QUARTERS[5][1] } : null,
        folds,
      },
    });
  });
});

describe("resolveVersion without a champion applies the same rule from the versions' metadata", () => {
  const resolve = (versions: VersionMetadata[], policy?: "strict" | "best") =>
    resolveVersion({
      pointers: {},
      versions: versions.map((v) => v.version),
      metadata: new Map(versions.map((v) => [v.version, v])),
      metric: "skill",
      higherIsBetter: true,
      policy,
    });

  it.each<[string, VersionMetadata[], "strict" | "best" | undefined, string, string]>([
    [
      "strict (default), nothing significant → naive",
      [naive, meta("2", { p: 0.3, skill: 0.4 })],
      undefined,
      "1",
      "naive",
    ],
    ["strict, a significant version → it", [naive, meta("2", { p: 0.01 })], "strict", "2", "policy"],
    [
      "strict without a naive version → best by metric, said to be unvetted",
      [meta("1", { p: 0.3, skill: 0.1 }), meta("2", { p: 0.4, skill: 0.2 })],
      "strict",
      "2",
      "best_unvetted",
    ],
    [
      "best → the highest BEST_METRIC, as before",
      [naive, meta("2", { p: 0.3, skill: 0.4 })],
      "best",
      "2",
      "best",
    ],
  ])("%s", (_, versions, policy, version, via) => {
    expect(resolve(versions, policy)).toEqual({ kind: "chosen", version, via });
  });

  it("a model people bring (no forecast spec) keeps BEST_METRIC under strict", () => {
    const byo = (version: string, skill: number) =>
      ({ name: "sk", version, metrics: { skill } }) as unknown as VersionMetadata;
    expect(resolve([byo("1", 0.2), byo("2", 0.1)], "strict")).toEqual({
      kind: "chosen",
      version: "1",
      via: "best",
    });
  });

  it("a champion still beats the rule", () => {
    const versions = [naive, meta("2", { p: 0.3 })];
    expect(
      resolveVersion({
        pointers: { champion: "2" },
        versions: ["1", "2"],
        metadata: new Map(versions.map((v) => [v.version, v])),
        metric: "skill",
        higherIsBetter: true,
      }),
    ).toEqual({ kind: "chosen", version: "2", via: "champion" });
  });
});
