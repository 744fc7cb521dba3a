/**
 * `npm run size:edge`: the deployed size of each edge bundle (code + the onnxruntime-web wasm) against the platforms'
 * limits and our budget; exits 1 past the budget. test/runtime/bundle-size.test.ts runs the same check in CI.
 *
 * Measured as Vercel measures an edge function (@vercel/next's validateSize): the gzip of the code and its wasm
 * files concatenated, against limits in MiB. The bundles embed the models in models/, as deployed.
 */

import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import type { EmbeddedRegistry } from "../src/storage/embedded.js";
import { bundleEdge, type EdgeTarget } from "./edge/bundle.js";
import { DEFAULT_MODELS_DIR, installedOrtWasm, readRegistryDir } from "./edge/embed.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Compressed size limits of an edge deployment, code and wasm together (Vercel: per function; Cloudflare: per Worker). */
export const LIMITS = [
  { platform: "Vercel Edge", plan: "Hobby", bytes: 1 * MiB },
  { platform: "Vercel Edge", plan: "Pro", bytes: 2 * MiB },
  { platform: "Vercel Edge", plan: "Enterprise", bytes: 4 * MiB },
  { platform: "Cloudflare Workers", plan: "Free", bytes: 3 * MiB },
  { platform: "Cloudflare Workers", plan: "Paid", bytes: 10 * MiB },
] as const;

/**
 * Our budget (docs/edge.md). Total: 0.1 MiB under Vercel Enterprise's 4 MiB, so the build fails here before a deploy
 * fails there. Code: what we ship besides ORT's 3.5 MiB wasm, with ~10% headroom over today's; growing past it is a
 * decision to make (and to write down), not a drift.
 */
export const BUDGET = { totalGzip: 3.9 * MiB, codeGzip: 320 * KiB } as const;

export interface TargetSize {
  target: EdgeTarget;
  code: number;
  codeGzip: number;
  wasmGzip: number;
  /** gzip(code ‖ wasm): the number the platforms compare with their limits. */
  totalGzip: number;
}

export async function measureEdgeBundles(registry: EmbeddedRegistry): Promise<TargetSize[]> {
  const wasm = await readFile(installedOrtWasm());
  const wasmGzip = gzipSync(wasm).length;
  const sizes: TargetSize[] = [];
  for (const target of ["vercel", "workerd"] as EdgeTarget[]) {
    const code = Buffer.from(await bundleEdge(target, { registry }));
    sizes.push({
      target,
      code: code.length,
      codeGzip: gzipSync(code).length,
      wasmGzip,
      totalGzip: gzipSync(Buffer.concat([code, wasm])).length,
    });
  }
  return sizes;
}

/** Budget overruns, one sentence each; empty when within budget. */
export function budgetProblems(sizes: TargetSize[]): string[] {
  const problems: string[] = [];
  for (const s of sizes) {
    if (s.totalGzip > BUDGET.totalGzip) {
      problems.push(
        `${s.target}: ${mib(s.totalGzip)} gzip exceeds the budget of ${mib(BUDGET.totalGzip)} (code + wasm)`,
      );
    }
    if (s.codeGzip > BUDGET.codeGzip) {
      problems.push(
        `${s.target}: the code is ${kib(s.codeGzip)} gzip, over the budget of ${kib(BUDGET.codeGzip)}`,
      );
    }
  }
  return problems;
}

const mib = (n: number) => `${(n / MiB).toFixed(2)} MiB`;
const kib = (n: number) => `${(n / KiB).toFixed(0)} KiB`;

export function sizeTable(sizes: TargetSize[]): string {
  const limitOf = (s: TargetSize) =>
    LIMITS.filter((l) =>
      s.target === "vercel" ? l.platform === "Vercel Edge" : l.platform === "Cloudflare Workers",
    );
  const lines = [
    "| bundle | code | code gzip | wasm gzip | total gzip | budget | limits (gzip) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const s of sizes) {
    const limits = limitOf(s)
      .map((l) => `${l.plan} ${mib(l.bytes)}: ${s.totalGzip <= l.bytes ? "fits" : "too big"}`)
      .join("; ");
    const name =
      s.target === "vercel"
        ? "Vercel Edge (dist/vercel/edge.js)"
        : "Cloudflare Worker (dist/workerd/worker.js)";
    lines.push(
      `| ${name} | ${kib(s.code)} | ${kib(s.codeGzip)} | ${mib(s.wasmGzip)} | ${mib(s.totalGzip)} | ${mib(BUDGET.totalGzip)} | ${limits} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const sizes = await measureEdgeBundles(await readRegistryDir(DEFAULT_MODELS_DIR));
  console.log(sizeTable(sizes));
  const problems = budgetProblems(sizes);
  if (problems.length > 0) {
    console.error(
      `\nover budget (docs/edge.md, "Size budget"):\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    process.exit(1);
  }
  console.log(`\nwithin budget: total ≤ ${mib(BUDGET.totalGzip)}, code ≤ ${kib(BUDGET.codeGzip)} (gzip)`);
}
