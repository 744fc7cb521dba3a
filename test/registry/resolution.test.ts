import { describe, expect, it } from "vitest";
import type { VersionMetadata } from "../../src/registry/metadata.js";
import { type ResolveInput, resolveVersion } from "../../src/registry/resolution.js";

/** Just enough metadata for resolution: the version and its metrics. */
const meta = (version: string, metrics: Record<string, number> = {}) =>
  ({ name: "m", version, metrics }) as unknown as VersionMetadata;

const input = (over: Partial<ResolveInput>): ResolveInput => ({
  pointers: {},
  versions: ["1", "2", "3"],
  metadata: new Map(),
  metric: "rmse",
  higherIsBetter: false,
  ...over,
});

const all = (entries: [string, VersionMetadata | null][]) => new Map(entries);

describe("resolveVersion (pure: pointers + metadata + request → version)", () => {
  it("serves a requested version as asked, with no metadata read", () => {
    expect(resolveVersion(input({ requested: "2", pointers: { pinned: "1" } }))).toEqual({
      kind: "chosen",
      version: "2",
      via: "requested",
    });
  });

  it("asks for the pin's metadata alone first: one read, not one per version", () => {
    expect(resolveVersion(input({ pointers: { pinned: "1", champion: "2" } }))).toEqual({
      kind: "needs",
      versions: ["1"],
    });
  });

  it.each([
    ["the pin over the champion", { pinned: "1", champion: "2" }, "1", "pinned"],
    ["the champion without a pin", { champion: "2" }, "2", "champion"],
  ] as const)("chooses %s", (_, pointers, version, via) => {
    const metadata = all([
      ["1", meta("1")],
      ["2", meta("2")],
    ]);
    expect(resolveVersion(input({ pointers, metadata }))).toEqual({ kind: "chosen", version, via });
  });

  it("skips a pointer to a version the store does not list, or whose metadata cannot be read", () => {
    const metadata = all([
      ["1", meta("1", { rmse: 2 })],
      ["2", null],
      ["3", meta("3", { rmse: 1 })],
    ]);
    expect(resolveVersion(input({ pointers: { pinned: "9", champion: "2" }, metadata }))).toEqual({
      kind: "chosen",
      version: "3",
      via: "best",
    });
  });

  it("without pointers, asks for every version's metadata", () => {
    expect(resolveVersion(input({ metadata: all([["1", meta("1")]]) }))).toEqual({
      kind: "needs",
      versions: ["2", "3"],
    });
  });

  it.each([
    ["lowest rmse when lower is better", false, "2"],
    ["highest when higher is better", true, "3"],
  ] as const)("best by metric: %s", (_, higherIsBetter, version) => {
    const metadata = all([
      ["1", meta("1", { rmse: 3 })],
      ["2", meta("2", { rmse: 1 })],
      ["3", meta("3", { rmse: 5 })],
    ]);
    expect(resolveVersion(input({ metadata, higherIsBetter }))).toEqual({
      kind: "chosen",
      version,
      via: "best",
    });
  });

  it("a tie goes to the newer version; a non-finite metric never wins", () => {
    const metadata = all([
      ["1", meta("1", { rmse: 1 })],
      ["2", meta("2", { rmse: 1 })],
      ["3", meta("3", { rmse: Number.NaN })],
    ]);
    expect(resolveVersion(input({ metadata }))).toEqual({ kind: "chosen", version: "2", via: "best" });
  });

  it("with no version carrying the metric, the latest readable one", () => {
    const metadata = all([
      ["1", meta("1")],
      ["2", meta("2")],
      ["3", null],
    ]);
    expect(resolveVersion(input({ metadata }))).toEqual({ kind: "chosen", version: "2", via: "latest" });
  });

  it("none: no versions, or none readable (named, so the caller can say why)", () => {
    expect(resolveVersion(input({ versions: [] }))).toEqual({ kind: "none", unreadable: [] });
    const metadata = all([
      ["1", null],
      ["2", null],
    ]);
    expect(resolveVersion(input({ versions: ["1", "2"], metadata }))).toEqual({
      kind: "none",
      unreadable: ["1", "2"],
    });
  });
});
