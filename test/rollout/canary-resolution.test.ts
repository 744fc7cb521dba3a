import { describe, expect, it } from "vitest";
import type { VersionMetadata } from "../../src/registry/metadata.js";
import { type ResolveInput, resolveVersion } from "../../src/registry/resolution.js";
import {
  CANARY_BUCKETS,
  canaryBucket,
  inCanary,
  parseClientId,
  stableHash,
} from "../../src/rollout/assign.js";
import type { ModelPointers, Rollout } from "../../src/storage/pointers.js";

const meta = (version: string) => ({ name: "m", version, metrics: {} }) as unknown as VersionMetadata;

const rollout = (over: Partial<Rollout> = {}): Rollout => ({
  id: "r-1",
  challenger: "3",
  champion: "2",
  mode: "canary",
  weight: 0.5,
  started_at: "2026-01-01T00:00:00.000Z",
  min_outcomes: 30,
  max_duration_seconds: 86_400,
  ...over,
});

/** Client keys the rollout r-1 at weight 0.5 sends to the challenger, and keys it leaves with the champion. */
const keys = Array.from({ length: 200 }, (_, i) => `client-${i}`);
const IN = keys.find((key) => inCanary(rollout(), key)) as string;
const OUT = keys.find((key) => !inCanary(rollout(), key)) as string;

const everyMeta = new Map([
  ["1", meta("1")],
  ["2", meta("2")],
  ["3", meta("3")],
]);

const input = (pointers: ModelPointers, over: Partial<ResolveInput> = {}): ResolveInput => ({
  pointers,
  versions: ["1", "2", "3"],
  metadata: everyMeta,
  metric: "rmse",
  higherIsBetter: false,
  ...over,
});

const chosen = (i: ResolveInput) => {
  const outcome = resolveVersion(i);
  return outcome.kind === "chosen" ? `${outcome.version} ${outcome.via}` : outcome.kind;
};

describe("resolution with a rollout: request > pin > canary share > champion > policy", () => {
  it.each<[string, ResolveInput, string]>([
    [
      "a requested version beats the canary",
      input({ champion: "2", rollout: rollout() }, { requested: "1", clientKey: IN }),
      "1 requested",
    ],
    [
      "the pin beats the canary",
      input({ champion: "2", pinned: "1", rollout: rollout() }, { clientKey: IN }),
      "1 pinned",
    ],
    [
      "a key in the share gets the challenger",
      input({ champion: "2", rollout: rollout() }, { clientKey: IN }),
      "3 canary",
    ],
    [
      "a key outside the share gets the champion",
      input({ champion: "2", rollout: rollout() }, { clientKey: OUT }),
      "2 champion",
    ],
    [
      "no client key: the champion (what everyone else is served)",
      input({ champion: "2", rollout: rollout() }),
      "2 champion",
    ],
    [
      "weight 1: every key",
      input({ champion: "2", rollout: rollout({ weight: 1 }) }, { clientKey: OUT }),
      "3 canary",
    ],
    [
      "weight 0: no key",
      input({ champion: "2", rollout: rollout({ weight: 0 }) }, { clientKey: IN }),
      "2 champion",
    ],
    [
      "a shadow rollout never changes who serves",
      input({ champion: "2", rollout: rollout({ mode: "shadow", weight: 1 }) }, { clientKey: IN }),
      "2 champion",
    ],
    [
      "an archived challenger (not in the served list) is skipped",
      input({ champion: "2", rollout: rollout() }, { clientKey: IN, versions: ["1", "2"] }),
      "2 champion",
    ],
    [
      "an unreadable challenger is skipped",
      input(
        { champion: "2", rollout: rollout() },
        { clientKey: IN, metadata: new Map([...everyMeta, ["3", null]]) },
      ),
      "2 champion",
    ],
  ])("%s", (_, given, expected) => {
    expect(chosen(given)).toBe(expected);
  });

  it("asks for the challenger's metadata alone first, as for a pin", () => {
    expect(
      resolveVersion(input({ champion: "2", rollout: rollout() }, { clientKey: IN, metadata: new Map() })),
    ).toEqual({
      kind: "needs",
      versions: ["3"],
    });
  });
});

describe("canary assignment (src/rollout/assign.ts)", () => {
  it("the hash is stable across runs and runtimes: FNV-1a + Murmur3's finalizer, fixed values", () => {
    // Changing these values reshuffles every running canary: they are pinned on purpose.
    expect(stableHash("")).toBe(2_872_998_923);
    expect(stableHash("a")).toBe(444_641_715);
    expect(canaryBucket("r-1", "client-0")).toBe(3657);
  });

  it("buckets are spread evenly: 20 000 keys at weight 0.2 draw 20 % ± 1.5 %", () => {
    const n = 20_000;
    let drawn = 0;
    for (let i = 0; i < n; i++) if (inCanary(rollout({ weight: 0.2 }), `client-${i}`)) drawn += 1;
    expect(Math.abs(drawn / n - 0.2)).toBeLessThan(0.015);
    expect(CANARY_BUCKETS).toBe(10_000);
  });

  it("a new rollout id reshuffles: about half the keys change side at weight 0.5", () => {
    const moved = keys.filter((key) => inCanary(rollout(), key) !== inCanary(rollout({ id: "r-2" }), key));
    expect(moved.length / keys.length).toBeGreaterThan(0.35);
    expect(moved.length / keys.length).toBeLessThan(0.65);
  });

  it.each([
    ["a printable id", "abc-123", "abc-123"],
    ["128 characters", "x".repeat(128), "x".repeat(128)],
    ["no header", undefined, undefined],
  ])("x-client-id accepted: %s", (_, given, expected) => {
    expect(parseClientId(given)).toBe(expected);
  });

  it.each([
    ["empty", ""],
    ["129 characters", "x".repeat(129)],
    ["a control character", "a\tb"],
    ["non-ASCII", "clïent"],
    ["a leading space", " a"],
  ])("x-client-id refused (400 invalid_request): %s", (_, given) => {
    expect(() => parseClientId(given)).toThrow(expect.objectContaining({ code: "invalid_request" }));
  });
});
