/**
 * One cold start in Vercel's edge-runtime (strict), in a fresh process, from a script prepared by the parent:
 * the wasm compiled as Vercel does at deploy time, the script evaluated in a new sandbox, then one request.
 * Usage: edge-runtime-child.ts <prepared.json> <path> [json body]
 */
import { readFile } from "node:fs/promises";
import type { EdgeRuntimeScript } from "../../scripts/edge/bundle.js";
import { installedOrtWasm } from "../../scripts/edge/embed.js";
import { runEdgeRuntimeScript } from "../../scripts/edge/runtimes.js";

const [file, path, body] = process.argv.slice(2) as [string, string, string | undefined];
const prepared = JSON.parse(await readFile(file, "utf8")) as EdgeRuntimeScript;
const bytes = await readFile(installedOrtWasm());
const t0 = performance.now();
const wasmModule = await WebAssembly.compile(bytes);
const t1 = performance.now();
const edge = await runEdgeRuntimeScript(prepared, { wasmModule });
const t2 = performance.now();
const response = await edge.fetch(
  path,
  body ? { method: "POST", headers: { "content-type": "application/json" }, body } : undefined,
);
const t3 = performance.now();
const text = await response.text();
if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${text}`);
await edge.close();
console.log(
  JSON.stringify({
    compileMs: t1 - t0,
    evaluateMs: t2 - t1,
    firstResponseMs: t3 - t2,
    initHeaderMs: Number(response.headers.get("x-edgeml-init-ms")) || null,
    body: JSON.parse(text),
  }),
);
