import { describe, expect, it } from "vitest";
import { DEFAULT_MODELS_DIR, readRegistryDir } from "../../scripts/edge/embed.js";
import { BUDGET, budgetProblems, LIMITS, measureEdgeBundles, sizeTable } from "../../scripts/edge_size.js";

/** The size report of `npm run size:edge`, as a CI check: the edge bundles with the shipped models stay in budget. */
describe("edge bundle size", () => {
  it("stays within the budget of docs/edge.md, under Vercel Enterprise's 4 MiB and Cloudflare's paid 10 MiB", async () => {
    const sizes = await measureEdgeBundles(await readRegistryDir(DEFAULT_MODELS_DIR));
    console.log(sizeTable(sizes));
    expect(budgetProblems(sizes)).toEqual([]);
    const enterprise = LIMITS.find((l) => l.plan === "Enterprise")?.bytes ?? 0;
    expect(BUDGET.totalGzip).toBeLessThan(enterprise);
    for (const size of sizes) expect(size.totalGzip).toBeLessThan(enterprise);
  });

  it("reports an overrun as a sentence naming the bundle and the budget", () => {
    const over = {
      target: "vercel" as const,
      code: 1,
      codeGzip: BUDGET.codeGzip + 1,
      wasmGzip: 1,
      totalGzip: BUDGET.totalGzip + 1,
      packages: [],
    };
    expect(budgetProblems([over])).toEqual([
      expect.stringMatching(/^vercel: .* gzip exceeds the budget of 3\.90 MiB/),
      expect.stringMatching(/^vercel: the code is .* over the budget of 380 KiB/),
    ]);
  });
});
