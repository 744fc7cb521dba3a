/**
 * `npm run size:edge`: the deployed size of each edge bundle (code + the onnxruntime-web wasm) against the platforms'
 * limits and our budget; exits 1 past the budget. test/runtime/bundle-size.test.ts runs the same check in CI.
 * Then, per package, the bytes each dependency (and each folder of src/) puts in the minified code, largest first,
 * from esbuild's metafile: where the code budget goes, and what to look at when it grows.
 *
 * Measured as Vercel measures an edge function (@vercel/next's validateSize): the gzip of the code and its wasm
 * files concatenated, against limits in MiB. The bundles embed the models in models/, as deployed.
 */

import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import type { Metafile } from "esbuild";
import type { EmbeddedRegistry } from "../src/storage/embedded.js";
import { bundleEdge, type EdgeTarget } from "./edge/bundle.js";
import { DEFAULT_MODELS_DIR, installedOrtWasm, readRegistryDir } from "./edge/embed.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Compressed size limits of an edge deployment, code and wasm together (Vercel: per function; Cloudflare: per Worker).
 * Vercel's, per plan: "Size (after gzip compression) … Edge: Hobby: 1 MB, Pro: 2 MB, Ent: 4 MB"
 * (https://vercel.com/docs/functions/limitations, as of 2026; the Node.js runtime's is 250 MB uncompressed), which
 * @vercel/next's validateSize compares in MiB.
 */
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
export const BUDGET = { totalGzip: 3.9 * MiB, codeGzip: 380 * KiB } as const;

export interface TargetSize {
  target: EdgeTarget;
  code: number;
  codeGzip: number;
  wasmGzip: number;
  /** gzip(code ‖ wasm): the number the platforms compare with their limits. */
  totalGzip: number;
  /** Minified bytes in the code per package (`zod`, `@upstash/redis`) or src/ folder (`src/registry`), largest first. */
  packages: PackageSize[];
}

export interface PackageSize {
  name: string;
  bytes: number;
}

/** The package (or src/ folder, or bundler-made module) an input of the metafile belongs to. */
export function packageOf(input: string): string {
  // The innermost node_modules: a nested copy (tough-cookie/node_modules/tldts) counts as its own package.
  const inPackage = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(input);
  if (inPackage?.[1]) return inPackage[1];
  if (input.includes("embedded-registry")) return "(the embedded models/)";
  if (input.startsWith("node-stub:")) return "(node stubs)";
  const inSrc = /^src\/([^/]+)\//.exec(input);
  if (inSrc) return `src/${inSrc[1]}`;
  return input.startsWith("src/") ? "src/*.ts" : input;
}

/** Bytes in the output per package, largest first. */
export function packageSizes(metafile: Metafile): PackageSize[] {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = packageOf(input);
      totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
    }
  }
  return [...totals]
    .map(([name, bytes]) => ({ name, bytes }))
    .filter((p) => p.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name));
}

/** The deployed size of one bundle's code with the onnxruntime-web wasm (`wasm`: its bytes; default: the installed one). */
export async function measureBundle(
  target: EdgeTarget,
  bundle: string,
  options: { wasm?: Buffer; packages?: PackageSize[] } = {},
): Promise<TargetSize> {
  const wasm = options.wasm ?? (await readFile(installedOrtWasm()));
  const code = Buffer.from(bundle);
  return {
    target,
    code: code.length,
    codeGzip: gzipSync(code).length,
    wasmGzip: gzipSync(wasm).length,
    totalGzip: gzipSync(Buffer.concat([code, wasm])).length,
    packages: options.packages ?? [],
  };
}

export async function measureEdgeBundles(registry: EmbeddedRegistry): Promise<TargetSize[]> {
  const wasm = await readFile(installedOrtWasm());
  const sizes: TargetSize[] = [];
  for (const target of ["vercel", "workerd"] as EdgeTarget[]) {
    let packages: PackageSize[] = [];
    const code = await bundleEdge(target, {
      registry,
      onMetafile: (metafile) => (packages = packageSizes(metafile)),
    });
    sizes.push(await measureBundle(target, code, { wasm, packages }));
  }
  return sizes;
}

/** Vercel's plans, by the name `EDGEML_VERCEL_PLAN` takes. */
export const VERCEL_PLANS = ["hobby", "pro", "enterprise"] as const;
export type VercelPlan = (typeof VERCEL_PLANS)[number];

/** The Edge Function size limit of a Vercel plan (LIMITS). */
export function vercelEdgeLimit(plan: VercelPlan): { plan: string; bytes: number } {
  const limit = LIMITS.find((l) => l.platform === "Vercel Edge" && l.plan.toLowerCase() === plan);
  if (!limit) throw new Error(`edgeml: no Vercel Edge limit for the plan ${plan}`);
  return limit;
}

/** The Vercel plans an edge bundle of this size fits, smallest first, as "Enterprise (4.00 MiB)". */
export function vercelPlansFitting(size: TargetSize): string[] {
  return VERCEL_PLANS.map(vercelEdgeLimit)
    .filter((l) => size.totalGzip <= l.bytes)
    .map((l) => `${l.plan} (${mib(l.bytes)})`);
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

export const mib = (n: number) => `${(n / MiB).toFixed(2)} MiB`;
export const kib = (n: number) => `${(n / KiB).toFixed(n < 10 * KiB ? 1 : 0)} KiB`;

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

/** The per-package breakdown of every target, side by side (minified bytes, before gzip). */
export function packageTable(sizes: TargetSize[]): string {
  const names = [...new Set(sizes.flatMap((s) => s.packages.map((p) => p.name)))];
  const bytesOf = (s: TargetSize, name: string) => s.packages.find((p) => p.name === name)?.bytes ?? 0;
  const first = sizes[0];
  if (first) names.sort((a, b) => bytesOf(first, b) - bytesOf(first, a) || a.localeCompare(b));
  const cell = (s: TargetSize, name: string) =>
    `${kib(bytesOf(s, name))} (${((100 * bytesOf(s, name)) / s.code).toFixed(1)} %)`;
  return [
    `| package | ${sizes.map((s) => `${s.target} (minified)`).join(" | ")} |`,
    `| --- |${sizes.map(() => " ---: |").join("")}`,
    ...names.map((name) => `| ${name} | ${sizes.map((s) => cell(s, name)).join(" | ")} |`),
  ].join("\n");
}

if (import.meta.main) {
  const sizes = await measureEdgeBundles(await readRegistryDir(DEFAULT_MODELS_DIR));
  console.log(sizeTable(sizes));
  console.log(`\nper package (minified bytes in the code, before gzip):\n\n${packageTable(sizes)}`);
  const problems = budgetProblems(sizes);
  if (problems.length > 0) {
    console.error(
      `\nover budget (docs/edge.md, "Size budget"):\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    process.exit(1);
  }
  console.log(`\nwithin budget: total ≤ ${mib(BUDGET.totalGzip)}, code ≤ ${kib(BUDGET.codeGzip)} (gzip)`);
}
