/**
 * `npm run build:edge`: builds what the edge platforms deploy.
 *
 * 1. Copies `ort-wasm-simd-threaded.wasm` of the installed onnxruntime-web into wasm/ (not committed: it must match
 *    the installed JS glue byte for byte).
 * 2. Bundles the edge entries with the embedded registry (models/ or MODELS_DIR, and its pointers.json or
 *    POINTERS_FILE) into dist/vercel/edge.js (exported by api/[[...route]].ts) and dist/workerd/worker.js (the
 *    Cloudflare Worker, with the wasm copied beside it for wrangler).
 * 3. Creates dist/static/, the deployment's static output: robots.txt and the dashboard (dist/static/dashboard/, the
 *    page's files and uPlot from node_modules). Only these: without a static output of its own, Vercel would publish
 *    the repository's files. The dashboard is never bundled into the functions (src/runtime/dashboard.ts).
 *
 * wrangler runs it as its build command. Vercel runs scripts/build_vercel.ts (`vercel-build`), which builds only what
 * the chosen Vercel runtime deploys, from the steps exported here.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import type { EmbeddedRegistry } from "../src/storage/embedded.js";
import { bundleEdge, type EdgeTarget, OUTPUTS } from "./edge/bundle.js";
import {
  copyOrtWasm,
  DEFAULT_MODELS_DIR,
  DIST,
  REPO_ROOT,
  readRegistryDir,
  WASM_NAME,
} from "./edge/embed.js";
import { writeStaticOutput } from "./edge/static.js";

const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

/** Step 1: the wasm into wasm/ (the edge bundles import it from there). */
export async function copyWasm(): Promise<void> {
  const wasm = await copyOrtWasm();
  console.log(
    `wasm: ${wasm.copied ? "copied to" : "up to date:"} ${relative(REPO_ROOT, wasm.path)} (${(wasm.bytes / 1e6).toFixed(2)} MB)`,
  );
}

/** The registry every bundle embeds: models/ (or MODELS_DIR) with its pointers (or POINTERS_FILE). */
export async function buildRegistry(): Promise<EmbeddedRegistry> {
  const modelsDir = resolve(process.env.MODELS_DIR || DEFAULT_MODELS_DIR);
  const registry = await readRegistryDir(modelsDir, process.env.POINTERS_FILE || undefined);
  const versions = Object.values(registry.models).reduce((n, v) => n + Object.keys(v).length, 0);
  console.log(
    `embedded registry: ${versions} version(s) of ${Object.keys(registry.models).length} model(s) from ${registry.source}`,
  );
  if (versions === 0)
    console.log(
      "  (none: the deployment serves what the production stores hold; `npm run train` adds models)",
    );
  return registry;
}

/** Writes a bundle to `file`, saying its size. */
export async function writeBundle(label: string, file: string, code: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, code);
  console.log(
    `${label}: ${relative(REPO_ROOT, file)} (${kb(code.length)}, ${kb(gzipSync(code).length)} gzip)`,
  );
}

/** Step 3: the static output, dist/static/. */
export async function buildStatic(): Promise<void> {
  const statics = await writeStaticOutput(join(DIST, "static"));
  console.log(`static: ${relative(REPO_ROOT, join(DIST, "static"))} (${statics.join(", ")})`);
}

if (import.meta.main) {
  await copyWasm();
  const registry = await buildRegistry();
  for (const target of ["vercel", "workerd"] as EdgeTarget[]) {
    await writeBundle(target, OUTPUTS[target].file, await bundleEdge(target, { registry }));
  }
  await copyOrtWasm(join(dirname(OUTPUTS.workerd.file), WASM_NAME));
  await buildStatic();
}
