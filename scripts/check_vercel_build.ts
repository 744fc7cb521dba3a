/**
 * `npm run check:vercel`: runs `vercel build` (vercel@58.10.0, offline) and checks `.vercel/output`: the serving
 * function on the runtime EDGEML_VERCEL_RUNTIME chose (an edge function, or a Node.js function on Node 24), a Node.js
 * function for training with its maxDuration, the daily cron, the routes (every API path reaches the function that
 * serves it, /dashboard the static page), and a static output that holds robots.txt and the dashboard and publishes
 * none of the repository.
 *
 * `vercel build` needs `.vercel/project.json`; without one it exits 0 having built nothing. A repository linked to
 * a real project has one; otherwise this writes a local one (framework: none, Node 24). Dependencies are taken as
 * installed (VERCEL_INSTALL_COMPLETED), so the build neither runs npm nor touches node_modules.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { DASHBOARD_FILES } from "../src/runtime/node/dashboard-assets.js";
import { type VercelRuntime, vercelBuildSettings, writeVercelEntry } from "./build_vercel.js";
import { REPO_ROOT } from "./edge/embed.js";

export const OUTPUT_DIR = join(REPO_ROOT, ".vercel/output");
/** The serving function: an edge function, or a Node.js one (EDGEML_VERCEL_RUNTIME). */
export const SERVING_FUNCTION = "api/[[...route]]";
export const NODE_FUNCTION = "api/train";
export const CRON = { path: "/api/train", schedule: "0 6 * * *" };

/** Where each path must be served: the edge function, or the Node one. */
export const EXPECTED_ROUTES: Record<string, string> = {
  "/": SERVING_FUNCTION,
  "/docs": SERVING_FUNCTION,
  "/openapi.json": SERVING_FUNCTION,
  "/v2": SERVING_FUNCTION,
  "/v2/health/ready": SERVING_FUNCTION,
  "/v2/models/BTC-24h/infer": SERVING_FUNCTION,
  "/v2/models/BTC-24h/versions/2/infer": SERVING_FUNCTION,
  "/api/ml/serve": SERVING_FUNCTION,
  "/api/ml/batch": SERVING_FUNCTION,
  "/api/ml/models/sk_gbr/versions": SERVING_FUNCTION,
  "/api/ml/performance/BTC": SERVING_FUNCTION,
  "/api/ml/train": NODE_FUNCTION,
  "/api/ml/train/status": NODE_FUNCTION,
  "/api/train": NODE_FUNCTION,
};

/** The static output: robots.txt and the dashboard's files (scripts/edge/static.ts), nothing of the repository. */
export const EXPECTED_STATIC_FILES = [
  "robots.txt",
  ...[...DASHBOARD_FILES.keys()].map((f) => `dashboard/${f}`),
];

/** Paths the static output answers, before any function: the dashboard (vercel.json rewrites /dashboard). */
export const EXPECTED_STATIC_ROUTES: Record<string, string> = {
  "/dashboard": "dashboard/index.html",
  "/dashboard/index.html": "dashboard/index.html",
  "/dashboard/dashboard.js": "dashboard/dashboard.js",
  "/dashboard/vendor/uPlot.esm.js": "dashboard/vendor/uPlot.esm.js",
};

export interface VercelBuildOptions {
  /** EDGEML_VERCEL_RUNTIME and EDGEML_VERCEL_PLAN of the build; unset ones are unset, whatever this process has. */
  env?: { EDGEML_VERCEL_RUNTIME?: VercelRuntime; EDGEML_VERCEL_PLAN?: string };
  timeoutMs?: number;
}

/**
 * Runs `vercel build` in the repository; resolves with its output, rejects with it when the build fails. The build
 * writes api/[[...route]].ts for its runtime: afterwards the committed edge entry is written back, so a check of the
 * Node.js build leaves the working tree as it found it.
 */
export async function runVercelBuild(options: VercelBuildOptions = {}): Promise<string> {
  const { env = {}, timeoutMs = 600_000 } = options;
  const projectFile = join(REPO_ROOT, ".vercel/project.json");
  if (!existsSync(projectFile)) {
    await mkdir(join(REPO_ROOT, ".vercel"), { recursive: true });
    await writeFile(
      projectFile,
      `${JSON.stringify({ projectId: "prj_edgeml_local", orgId: "team_edgeml_local", settings: { framework: null, nodeVersion: "24.x" } }, null, 2)}\n`,
    );
  }
  await rm(OUTPUT_DIR, { recursive: true, force: true });
  const { EDGEML_VERCEL_RUNTIME: _runtime, EDGEML_VERCEL_PLAN: _plan, ...inherited } = process.env;
  const child = spawn(join(REPO_ROOT, "node_modules/.bin/vercel"), ["build", "--yes"], {
    cwd: REPO_ROOT,
    env: {
      ...inherited,
      ...env,
      VERCEL_TELEMETRY_DISABLED: "1",
      VERCEL_INSTALL_COMPLETED: "1",
      FORCE_COLOR: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk) => {
    output += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  await writeVercelEntry("edge");
  if (code !== 0) throw new Error(`vercel build exited with ${code}:\n${output}`);
  return output;
}

interface Route {
  src?: string;
  dest?: string;
  headers?: Record<string, string>;
  status?: number;
  continue?: boolean;
  check?: boolean;
  handle?: string;
}

/**
 * Where the Build Output API routes send `path`, following the parts of its semantics our config uses: header
 * routes that continue, the filesystem phase (static files and functions by path), rewrites with `check`, and
 * status routes.
 */
export function resolveRoute(
  routes: Route[],
  functions: Set<string>,
  path: string,
  statics: Set<string> = new Set(),
): { function?: string; static?: string; status?: number; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  let current = path;
  const nameOf = (p: string) => decodeURIComponent(p.split("?")[0] ?? "").replace(/^\//, "");
  const fn = (p: string) => {
    const name = nameOf(p);
    return functions.has(name) ? name : undefined;
  };
  const file = (p: string) => {
    const name = nameOf(p);
    return statics.has(name) ? name : undefined;
  };
  for (const route of routes) {
    if (route.handle) {
      if (route.handle === "filesystem") {
        const asset = file(current);
        if (asset) return { static: asset, headers };
        const hit = fn(current);
        if (hit) return { function: hit, headers };
      }
      if (route.handle === "error" || route.handle === "miss") break;
      continue;
    }
    const match = route.src ? new RegExp(route.src).exec(current) : null;
    if (!match) continue;
    Object.assign(headers, route.headers);
    if (route.dest) {
      current = route.dest.replace(/\$(\d+)/g, (_, i) => match[Number(i)] ?? "");
      const asset = file(current);
      if (route.check && asset) return { static: asset, headers };
      const hit = fn(current);
      if (route.check && hit) return { function: hit, headers };
    }
    if (route.status) return { status: route.status, headers };
    if (!route.continue && !route.check) break;
  }
  return { function: fn(current), headers };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch {
    return null;
  }
}

/** What is wrong with the serving function as an edge function. */
async function edgeFunctionProblems(dir: string, config: Record<string, unknown>): Promise<string[]> {
  const problems: string[] = [];
  if (config.runtime !== "edge")
    problems.push(`${SERVING_FUNCTION} runtime is ${config.runtime}, expected edge`);
  if (config.entrypoint !== `${SERVING_FUNCTION}.js`)
    problems.push(`${SERVING_FUNCTION} entrypoint is ${config.entrypoint}`);
  const files = await filesUnder(dir);
  for (const needed of ["dist/vercel/edge.js", "wasm/ort-wasm-simd-threaded.wasm"]) {
    if (!files.includes(needed)) problems.push(`${SERVING_FUNCTION} lacks ${needed}`);
  }
  // One wasm, imported as a module: any other binary would count against the 4 MB limit.
  const binaries = files.filter((f) => f.endsWith(".wasm"));
  if (binaries.length !== 1)
    problems.push(`${SERVING_FUNCTION} ships ${binaries.length} wasm files: ${binaries.join(", ")}`);
  return problems.concat(dashboardProblems(files));
}

/** What is wrong with the serving function as a Node.js function (EDGEML_VERCEL_RUNTIME=nodejs). */
async function nodeServingProblems(dir: string, config: Record<string, unknown>): Promise<string[]> {
  const problems: string[] = [];
  if (!/^nodejs24/.test(String(config.runtime)))
    problems.push(`${SERVING_FUNCTION} runtime is ${config.runtime}, expected nodejs24.x`);
  if (config.handler !== `${SERVING_FUNCTION}.js`)
    problems.push(`${SERVING_FUNCTION} handler is ${config.handler}`);
  if (config.launcherType !== "Nodejs")
    problems.push(`${SERVING_FUNCTION} launcher is ${config.launcherType}`);
  const files = await filesUnder(dir);
  for (const needed of [
    "dist/vercel/node.js",
    "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
  ]) {
    if (!files.includes(needed)) problems.push(`${SERVING_FUNCTION} lacks ${needed}`);
  }
  // The bundle holds the app: the sources (and the trainer) stay out of the serving function.
  const sources = files.filter((f) => f.startsWith("src/"));
  if (sources.length > 0)
    problems.push(`${SERVING_FUNCTION} ships sources: ${sources.slice(0, 5).join(", ")}…`);
  return problems.concat(dashboardProblems(files));
}

/** The dashboard is static output: none of it belongs in a function (on the edge it would count against the limit). */
function dashboardProblems(files: string[]): string[] {
  const dashboard = files.filter((f) => /(^|\/)dashboard\/|uPlot/i.test(f));
  return dashboard.length > 0 ? [`${SERVING_FUNCTION} ships dashboard files: ${dashboard.join(", ")}`] : [];
}

/**
 * What is wrong with a `.vercel/output`: empty when it is the deployment we mean, with the serving function on
 * `runtime` (default: the one EDGEML_VERCEL_RUNTIME of this process chooses).
 */
export async function checkVercelOutput(
  outputDir = OUTPUT_DIR,
  runtime: VercelRuntime = vercelBuildSettings(process.env).runtime,
): Promise<string[]> {
  const problems: string[] = [];
  const config = await readJson(join(outputDir, "config.json"));
  if (!config) return [`${outputDir}/config.json is missing: vercel build built nothing`];
  if (config.version !== 3) problems.push(`config.json version ${config.version}, expected 3`);

  const crons = (config.crons ?? []) as { path: string; schedule: string }[];
  if (!crons.some((c) => c.path === CRON.path && c.schedule === CRON.schedule)) {
    problems.push(`no cron ${CRON.schedule} → ${CRON.path} in config.json (found ${JSON.stringify(crons)})`);
  }

  const servingDir = join(outputDir, "functions", `${SERVING_FUNCTION}.func`);
  const serving = await readJson(join(servingDir, ".vc-config.json"));
  if (!serving) problems.push(`${SERVING_FUNCTION} was not built`);
  else if (runtime === "edge") problems.push(...(await edgeFunctionProblems(servingDir, serving)));
  else problems.push(...(await nodeServingProblems(servingDir, serving)));

  const nodeDir = join(outputDir, "functions", `${NODE_FUNCTION}.func`);
  const node = await readJson(join(nodeDir, ".vc-config.json"));
  if (!node) problems.push(`${NODE_FUNCTION} was not built`);
  else {
    if (!/^nodejs24/.test(String(node.runtime)))
      problems.push(`${NODE_FUNCTION} runtime is ${node.runtime}, expected nodejs24.x`);
    if (node.maxDuration !== 300)
      problems.push(`${NODE_FUNCTION} maxDuration is ${node.maxDuration}, expected 300`);
    if (node.handler !== `${NODE_FUNCTION}.js`) problems.push(`${NODE_FUNCTION} handler is ${node.handler}`);
    // Files of the function: traced ones are copied in; vercel.json's includeFiles are referenced by filePathMap.
    const files = [...(await filesUnder(nodeDir)), ...Object.keys(node.filePathMap ?? {})];
    for (const needed of [
      "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
      // onnxruntime-web on Node imports its Emscripten glue by a computed path that tracing misses (vercel.json
      // includes it): without it the training function cannot start the runtime.
      "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
      "models/pointers.json",
      "src/runtime/vercel/train.js",
    ]) {
      if (!files.includes(needed)) problems.push(`${NODE_FUNCTION} lacks ${needed}`);
    }
  }

  const statics: string[] = await filesUnder(join(outputDir, "static")).catch(() => []);
  const published = statics.filter((f) => !EXPECTED_STATIC_FILES.includes(f));
  if (published.length > 0) {
    problems.push(`the static output publishes repository files: ${published.slice(0, 5).join(", ")}…`);
  }
  const missing = EXPECTED_STATIC_FILES.filter((f) => !statics.includes(f));
  if (missing.length > 0) problems.push(`the static output lacks ${missing.join(", ")}`);

  const routes = (config.routes ?? []) as Route[];
  const functions = new Set([SERVING_FUNCTION, NODE_FUNCTION]);
  const staticFiles = new Set(statics);
  for (const [path, expected] of Object.entries(EXPECTED_STATIC_ROUTES)) {
    const resolved = resolveRoute(routes, functions, path, staticFiles);
    if (resolved.static !== expected) {
      problems.push(
        `${path} is routed to ${resolved.function ?? resolved.static ?? `status ${resolved.status ?? "none"}`}, expected the static ${expected}`,
      );
    }
  }
  for (const [path, expected] of Object.entries(EXPECTED_ROUTES)) {
    const resolved = resolveRoute(routes, functions, path, staticFiles);
    if (resolved.function !== expected) {
      problems.push(
        `${path} is routed to ${resolved.function ?? `status ${resolved.status ?? "none"}`}, expected ${expected}`,
      );
    }
    if (resolved.headers["cache-control"] !== "no-store")
      problems.push(`${path} is served without cache-control: no-store`);
  }
  return problems;
}

if (import.meta.main) {
  const { runtime, plan } = vercelBuildSettings(process.env);
  console.log(`vercel build (EDGEML_VERCEL_RUNTIME=${runtime}) …`);
  const started = performance.now();
  await runVercelBuild({ env: { EDGEML_VERCEL_RUNTIME: runtime, EDGEML_VERCEL_PLAN: plan } });
  const problems = await checkVercelOutput(OUTPUT_DIR, runtime);
  console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (problems.length > 0) {
    console.error(
      `.vercel/output is not the deployment we mean:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    process.exit(1);
  }
  console.log(
    `.vercel/output: ${runtime === "edge" ? "edge" : "Node.js"} function for serving, Node function for training, cron, routes: ok`,
  );
}
