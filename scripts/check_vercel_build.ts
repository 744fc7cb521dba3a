/**
 * `npm run check:vercel`: runs `vercel build` (vercel@58.10.0, offline) and checks `.vercel/output`: an edge function
 * for serving, a Node.js function for training with its maxDuration, the daily cron, the routes (every API path
 * reaches the function that serves it, /dashboard the static page), and a static output that holds robots.txt and the
 * dashboard and publishes none of the repository.
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
import { REPO_ROOT } from "./edge/embed.js";

export const OUTPUT_DIR = join(REPO_ROOT, ".vercel/output");
export const EDGE_FUNCTION = "api/[[...route]]";
export const NODE_FUNCTION = "api/train";
export const CRON = { path: "/api/train", schedule: "0 6 * * *" };

/** Where each path must be served: the edge function, or the Node one. */
export const EXPECTED_ROUTES: Record<string, string> = {
  "/": EDGE_FUNCTION,
  "/docs": EDGE_FUNCTION,
  "/openapi.json": EDGE_FUNCTION,
  "/v2": EDGE_FUNCTION,
  "/v2/health/ready": EDGE_FUNCTION,
  "/v2/models/BTC-24h/infer": EDGE_FUNCTION,
  "/v2/models/BTC-24h/versions/2/infer": EDGE_FUNCTION,
  "/api/ml/serve": EDGE_FUNCTION,
  "/api/ml/batch": EDGE_FUNCTION,
  "/api/ml/models/sk_gbr/versions": EDGE_FUNCTION,
  "/api/ml/performance/BTC": EDGE_FUNCTION,
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

/** Runs `vercel build` in the repository; resolves with its output, rejects with it when the build fails. */
export async function runVercelBuild(timeoutMs = 300_000): Promise<string> {
  const projectFile = join(REPO_ROOT, ".vercel/project.json");
  if (!existsSync(projectFile)) {
    await mkdir(join(REPO_ROOT, ".vercel"), { recursive: true });
    await writeFile(
      projectFile,
      `${JSON.stringify({ projectId: "prj_edgeml_local", orgId: "team_edgeml_local", settings: { framework: null, nodeVersion: "24.x" } }, null, 2)}\n`,
    );
  }
  await rm(OUTPUT_DIR, { recursive: true, force: true });
  const child = spawn(join(REPO_ROOT, "node_modules/.bin/vercel"), ["build", "--yes"], {
    cwd: REPO_ROOT,
    env: { ...process.env, VERCEL_TELEMETRY_DISABLED: "1", VERCEL_INSTALL_COMPLETED: "1", FORCE_COLOR: "0" },
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

/** What is wrong with a `.vercel/output`: empty when it is the deployment we mean. */
export async function checkVercelOutput(outputDir = OUTPUT_DIR): Promise<string[]> {
  const problems: string[] = [];
  const config = await readJson(join(outputDir, "config.json"));
  if (!config) return [`${outputDir}/config.json is missing: vercel build built nothing`];
  if (config.version !== 3) problems.push(`config.json version ${config.version}, expected 3`);

  const crons = (config.crons ?? []) as { path: string; schedule: string }[];
  if (!crons.some((c) => c.path === CRON.path && c.schedule === CRON.schedule)) {
    problems.push(`no cron ${CRON.schedule} → ${CRON.path} in config.json (found ${JSON.stringify(crons)})`);
  }

  const edgeDir = join(outputDir, "functions", `${EDGE_FUNCTION}.func`);
  const edge = await readJson(join(edgeDir, ".vc-config.json"));
  if (!edge) problems.push(`${EDGE_FUNCTION} was not built`);
  else {
    if (edge.runtime !== "edge") problems.push(`${EDGE_FUNCTION} runtime is ${edge.runtime}, expected edge`);
    if (edge.entrypoint !== `${EDGE_FUNCTION}.js`)
      problems.push(`${EDGE_FUNCTION} entrypoint is ${edge.entrypoint}`);
    const files = await filesUnder(edgeDir);
    for (const needed of ["dist/vercel/edge.js", "wasm/ort-wasm-simd-threaded.wasm"]) {
      if (!files.includes(needed)) problems.push(`${EDGE_FUNCTION} lacks ${needed}`);
    }
    // One wasm, imported as a module: any other binary would count against the 4 MB limit.
    const binaries = files.filter((f) => f.endsWith(".wasm"));
    if (binaries.length !== 1)
      problems.push(`${EDGE_FUNCTION} ships ${binaries.length} wasm files: ${binaries.join(", ")}`);
    // The dashboard is static output: none of it may count against the function's code limit.
    const dashboard = files.filter((f) => /(^|\/)dashboard\/|uPlot/i.test(f));
    if (dashboard.length > 0)
      problems.push(`${EDGE_FUNCTION} ships dashboard files: ${dashboard.join(", ")}`);
  }

  const nodeDir = join(outputDir, "functions", `${NODE_FUNCTION}.func`);
  const node = await readJson(join(nodeDir, ".vc-config.json"));
  if (!node) problems.push(`${NODE_FUNCTION} was not built`);
  else {
    if (!/^nodejs24/.test(String(node.runtime)))
      problems.push(`${NODE_FUNCTION} runtime is ${node.runtime}, expected nodejs24.x`);
    if (node.maxDuration !== 300)
      problems.push(`${NODE_FUNCTION} maxDuration is ${node.maxDuration}, expected 300`);
    if (node.handler !== `${NODE_FUNCTION}.js`) problems.push(`${NODE_FUNCTION} handler is ${node.handler}`);
    const files = await filesUnder(nodeDir);
    for (const needed of [
      "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
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
  const functions = new Set([EDGE_FUNCTION, NODE_FUNCTION]);
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
  console.log("vercel build …");
  const started = performance.now();
  await runVercelBuild();
  const problems = await checkVercelOutput();
  console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (problems.length > 0) {
    console.error(
      `.vercel/output is not the deployment we mean:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    process.exit(1);
  }
  console.log(".vercel/output: edge function for serving, Node function for training, cron, routes: ok");
}
