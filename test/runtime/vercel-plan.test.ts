import { describe, expect, it } from "vitest";
import { edgePlanCheck, vercelBuildSettings, vercelEntry } from "../../scripts/build_vercel.js";
import type { TargetSize } from "../../scripts/edge_size.js";

const MiB = 1024 * 1024;

/** A Vercel edge bundle of `totalMiB` gzip, code and wasm together, as measureBundle reports it. */
const bundleOf = (totalMiB: number): TargetSize => ({
  target: "vercel",
  code: 1_250_000,
  codeGzip: 340 * 1024,
  wasmGzip: 3.52 * MiB,
  totalGzip: totalMiB * MiB,
  packages: [],
});

/** `npm run vercel-build` (scripts/build_vercel.ts): what it reads, what it refuses, what it writes. */
describe("the Vercel build's settings (EDGEML_VERCEL_RUNTIME, EDGEML_VERCEL_PLAN)", () => {
  it.each([
    [{}, { runtime: "edge", plan: undefined }],
    [
      { EDGEML_VERCEL_RUNTIME: "", EDGEML_VERCEL_PLAN: "" },
      { runtime: "edge", plan: undefined },
    ],
    [{ EDGEML_VERCEL_RUNTIME: "nodejs" }, { runtime: "nodejs", plan: undefined }],
    [{ EDGEML_VERCEL_PLAN: "Hobby" }, { runtime: "edge", plan: "hobby" }],
    [
      { EDGEML_VERCEL_RUNTIME: "edge", EDGEML_VERCEL_PLAN: "enterprise" },
      { runtime: "edge", plan: "enterprise" },
    ],
  ])("%j → %j", (env, settings) => {
    expect(vercelBuildSettings(env)).toEqual(settings);
  });

  it.each([
    [{ EDGEML_VERCEL_RUNTIME: "node" }, /EDGEML_VERCEL_RUNTIME: must be one of edge, nodejs/],
    [{ EDGEML_VERCEL_PLAN: "free" }, /EDGEML_VERCEL_PLAN: must be one of hobby, pro, enterprise/],
  ])("refuses %j, naming the variable and its values", (env, message) => {
    expect(() => vercelBuildSettings(env)).toThrow(message);
  });
});

describe("the plan check of the edge bundle", () => {
  it.each([
    ["hobby", 3.86, "1.00 MiB", "Hobby"],
    ["pro", 3.86, "2.00 MiB", "Pro"],
    ["hobby", 1.5, "1.00 MiB", "Hobby"],
  ] as const)(
    "%s, %f MiB: fails, naming the limit (%s), the plan and the switch to Node.js",
    (plan, total, limit, name) => {
      const { error, warning } = edgePlanCheck(bundleOf(total), plan);
      expect(warning).toBeUndefined();
      expect(error).toContain(`over the ${limit} limit for Edge Functions on Vercel's ${name} plan`);
      expect(error).toContain(`the Vercel Edge Function is ${total.toFixed(2)} MiB gzip`);
      expect(error).toContain("Set EDGEML_VERCEL_RUNTIME=nodejs");
    },
  );

  it.each([
    ["enterprise", 3.86],
    ["pro", 1.99],
    ["hobby", 1],
  ] as const)("%s, %f MiB: fits, nothing to say", (plan, total) => {
    expect(edgePlanCheck(bundleOf(total), plan)).toEqual({});
  });

  it("without a plan: a warning with the measured size and the plans it fits, never an error", () => {
    const { error, warning } = edgePlanCheck(bundleOf(3.86), undefined);
    expect(error).toBeUndefined();
    expect(warning).toMatch(
      /^edgeml: warning: the Vercel Edge Function is 3\.86 MiB gzip .*it fits Vercel Enterprise \(4\.00 MiB\)\./,
    );
    expect(warning).toContain("EDGEML_VERCEL_PLAN=hobby|pro|enterprise");
    expect(warning).toContain("EDGEML_VERCEL_RUNTIME=nodejs");
    expect(edgePlanCheck(bundleOf(4.5), undefined).warning).toContain("it fits no Vercel plan");
  });
});

describe("the entry it writes, api/[[...route]].ts", () => {
  // That the committed file is the edge entry is checked by vercel-build.test.ts, between its builds: a Node.js build
  // rewrites the file for a while, and that suite runs alone on it.

  it("edge: the edge runtime in the static config, the edge bundle as the default export", () => {
    const entry = vercelEntry("edge");
    expect(entry).toContain('export const config = { runtime: "edge" };');
    expect(entry).toContain('export { default } from "../dist/vercel/edge.js";');
  });

  it("nodejs: the Node.js runtime (its version is the project's), the Node bundle's handler for every method", () => {
    const entry = vercelEntry("nodejs");
    expect(entry).toContain('export const config = { runtime: "nodejs" };');
    expect(entry).toContain(
      'export { DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT } from "../dist/vercel/node.js";',
    );
    expect(entry).not.toMatch(/export default/);
  });
});
