/**
 * `npm run vercel-build`: builds the deployment Vercel runs, on the runtime chosen by `EDGEML_VERCEL_RUNTIME`.
 *
 * - `edge` (default): the Edge Function, dist/vercel/edge.js with the onnxruntime-web wasm as a `?module` import. The
 *   default because it is what fits Cloudflare and Vercel Enterprise alike and what the users asked for: one bundle
 *   that starts in an isolate near the client. But Vercel caps an Edge Function at 1 / 2 / 4 MB gzip on Hobby / Pro /
 *   Enterprise, and the wasm alone is 3.5 MiB gzip: only Enterprise takes it. Its size is measured here as
 *   `npm run size:edge` measures it, right after bundling: with `EDGEML_VERCEL_PLAN` (hobby, pro, enterprise) a bundle
 *   over that plan's limit fails the build, naming the limit and the switch; without it, a warning says the size
 *   and the plans it fits.
 * - `nodejs`: the same app as a Node.js function (dist/vercel/node.js, src/runtime/vercel/node.ts): no code-size limit
 *   that binds (250 MB), the runtime Vercel recommends for new work; it fits every plan.
 *
 * Vercel reads a function's runtime from the static `export const config` of its entry, after this script ran and
 * before it traces the entry, so the script writes api/[[...route]].ts for the runtime chosen. The committed file is
 * the edge entry (a test holds it to what this writes), so a clone deploys as before; a `nodejs` build run locally
 * leaves the file changed, and a default build writes it back.
 *
 * Then the static output (dist/static/: robots.txt and the dashboard), as for every target. Vercel runs this script
 * before each function's build (`vercel-build`) and as the project's build command (vercel.json).
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { buildRegistry, buildStatic, copyWasm, writeBundle } from "./build_edge.js";
import { bundleEdge, bundleVercelNode, OUTPUTS, VERCEL_NODE } from "./edge/bundle.js";
import { REPO_ROOT } from "./edge/embed.js";
import {
  kib,
  measureBundle,
  mib,
  type TargetSize,
  VERCEL_PLANS,
  vercelEdgeLimit,
  vercelPlansFitting,
} from "./edge_size.js";

export const VERCEL_RUNTIMES = ["edge", "nodejs"] as const;
export type VercelRuntime = (typeof VERCEL_RUNTIMES)[number];

/** The build's settings, from the environment Vercel builds with (the project's variables). */
export const VercelBuildEnv = z.object({
  EDGEML_VERCEL_RUNTIME: z
    .enum(VERCEL_RUNTIMES, { error: `must be one of ${VERCEL_RUNTIMES.join(", ")}` })
    .default("edge"),
  EDGEML_VERCEL_PLAN: z
    .enum(VERCEL_PLANS, { error: `must be one of ${VERCEL_PLANS.join(", ")} (your Vercel plan), or unset` })
    .optional(),
});

/** The build's settings; throws naming each variable that is wrong. Empty strings count as unset. */
export function vercelBuildSettings(env: Record<string, string | undefined>) {
  const blank = (v: string | undefined) => (v === "" ? undefined : v);
  const parsed = VercelBuildEnv.safeParse({
    EDGEML_VERCEL_RUNTIME: blank(env.EDGEML_VERCEL_RUNTIME),
    EDGEML_VERCEL_PLAN: blank(env.EDGEML_VERCEL_PLAN)?.toLowerCase(),
  });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`edgeml: invalid build environment: ${issues.join("; ")}`);
  }
  return { runtime: parsed.data.EDGEML_VERCEL_RUNTIME, plan: parsed.data.EDGEML_VERCEL_PLAN };
}

/**
 * Whether the edge bundle fits the plan: an error message when it does not, a warning when no plan is named,
 * nothing when it fits.
 */
export function edgePlanCheck(
  size: TargetSize,
  plan: (typeof VERCEL_PLANS)[number] | undefined,
): { error?: string; warning?: string } {
  const measured = `the Vercel Edge Function is ${mib(size.totalGzip)} gzip (code ${kib(size.codeGzip)} + the onnxruntime-web wasm ${mib(size.wasmGzip)})`;
  const fits = vercelPlansFitting(size);
  if (!plan) {
    return {
      warning:
        `edgeml: warning: ${measured}; it fits ${fits.length > 0 ? `Vercel ${fits.join(", ")}` : "no Vercel plan"}. ` +
        "Set EDGEML_VERCEL_PLAN=hobby|pro|enterprise to stop this build when it does not fit your plan, or " +
        "EDGEML_VERCEL_RUNTIME=nodejs to deploy the Node.js function, which fits every plan.",
    };
  }
  const limit = vercelEdgeLimit(plan);
  if (size.totalGzip <= limit.bytes) return {};
  return {
    error:
      `edgeml: ${measured}, over the ${mib(limit.bytes)} limit for Edge Functions on Vercel's ${limit.plan} plan ` +
      `(EDGEML_VERCEL_PLAN=${plan}; ${fits.length > 0 ? `it fits ${fits.join(", ")}` : "it fits no plan"}). ` +
      "Set EDGEML_VERCEL_RUNTIME=nodejs to deploy the same app as a Node.js function, which has no such limit " +
      '(docs/edge.md, "Which runtime on Vercel").',
  };
}

export const VERCEL_ENTRY = join(REPO_ROOT, "api/[[...route]].ts");

const ENTRY_HEADER = `// Written by scripts/build_vercel.ts (npm run vercel-build) for EDGEML_VERCEL_RUNTIME=%RUNTIME%. The committed file
// is the edge entry; a nodejs build rewrites it, a default build writes it back.
`;

/** api/[[...route]].ts for `runtime`: the static config Vercel reads, and the bundle it exports. */
export function vercelEntry(runtime: VercelRuntime): string {
  const header = ENTRY_HEADER.replace("%RUNTIME%", runtime);
  if (runtime === "edge") {
    return `${header}
/**
 * The serving app as a Vercel Edge Function, built once per isolate on its first request.
 *
 * The code is src/runtime/vercel/edge.ts, bundled by the build into dist/vercel/edge.js: one self-contained module
 * importing only the onnxruntime-web wasm as \`?module\`. It is that bundle the runtime suites run in edge-runtime with
 * strict code generation. See docs/edge.md.
 */
export const config = { runtime: "edge" };

export { default } from "../dist/vercel/edge.js";
`;
  }
  return `${header}
/**
 * The serving app as a Vercel Node.js function (the Node version is the project's: 24.x).
 *
 * The code is src/runtime/vercel/node.ts, bundled by the build into dist/vercel/node.js: one module with the models
 * embedded, importing onnxruntime-web from node_modules. See docs/edge.md.
 */
export const config = { runtime: "nodejs" };

export { DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT } from "../dist/vercel/node.js";
`;
}

/** Writes the entry for `runtime`, unless it is there already; answers whether it changed the file. */
export async function writeVercelEntry(runtime: VercelRuntime, file = VERCEL_ENTRY): Promise<boolean> {
  const wanted = vercelEntry(runtime);
  const current = await readFile(file, "utf8").catch(() => "");
  if (current === wanted) return false;
  await writeFile(file, wanted);
  return true;
}

if (import.meta.main) {
  let settings: ReturnType<typeof vercelBuildSettings>;
  try {
    settings = vercelBuildSettings(process.env);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
  const { runtime, plan } = settings;
  console.log(`Vercel runtime: ${runtime} (EDGEML_VERCEL_RUNTIME)${plan ? `, plan: ${plan}` : ""}`);
  const registry = await buildRegistry();
  if (runtime === "edge") {
    await copyWasm();
    const code = await bundleEdge("vercel", { registry });
    // Measured before anything is written: a bundle that cannot deploy on the plan stops the build here.
    const check = edgePlanCheck(await measureBundle("vercel", code), plan);
    if (check.error) {
      console.error(check.error);
      process.exit(1);
    }
    if (check.warning) console.warn(check.warning);
    await writeBundle("vercel edge", OUTPUTS.vercel.file, code);
  } else {
    await writeBundle("vercel nodejs", VERCEL_NODE.file, await bundleVercelNode({ registry }));
  }
  const changed = await writeVercelEntry(runtime);
  console.log(`entry: api/[[...route]].ts ${changed ? "written" : "up to date"} (runtime ${runtime})`);
  await buildStatic();
}
