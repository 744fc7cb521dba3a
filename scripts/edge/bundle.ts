/**
 * Bundles the edge entries into what is deployed, and turns a bundle into what an edge runtime evaluates.
 *
 * Both targets get one self-contained ES module whose only import is the onnxruntime-web wasm, which the platform
 * compiles at deploy time: `../../wasm/ort-wasm-simd-threaded.wasm?module` for Vercel (dist/vercel/edge.js),
 * `./ort-wasm-simd-threaded.wasm` beside the script for workerd (dist/workerd/worker.js, a CompiledWasm module).
 * The runtime suites, the size report and the cold-start benchmark all use these same functions, so what they
 * measure is what ships.
 *
 * Why we bundle rather than let Vercel bundle the sources: yahoo-finance2 (a Deno build) imports `node:module`,
 * `node:url` and `node:path` for an import.meta polyfill that only its CLIs call; Vercel refuses to deploy an edge
 * function that references Node modules beyond buffer/events/async_hooks/assert/util. The bundle replaces those
 * three with stubs that throw if ever called (the strict runtime suites prove serving never does). Any other Node
 * module fails the build here (platform "browser"), before a deploy would.
 *
 * One more omission keeps the function within Vercel Enterprise's 4 MiB (the onnxruntime-web wasm alone is 3.5 MiB
 * gzip; docs/edge.md has the budget): zod's ~40 translations of its error messages (the API speaks English; `en`
 * stays). The trainer (src/training: the GBDT, ridge and ONNX export) is not in the bundle because the edge wiring
 * does not wire it (the trainer is a port of the services): vercel.json sends training to the Node function, and an
 * edge-only deployment (workerd) answers a training request 501 `training_unavailable`, saying where training runs.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { build, type Metafile, type Plugin } from "esbuild";
import type { EmbeddedRegistry } from "../../src/storage/embedded.js";
import { DIST, embeddedModuleSource, installedOrtWasm, REPO_ROOT, WASM_NAME } from "./embed.js";

export type EdgeTarget = "vercel" | "workerd";

export const ENTRIES: Record<EdgeTarget, string> = {
  vercel: join(REPO_ROOT, "src/runtime/vercel/edge.ts"),
  workerd: join(REPO_ROOT, "src/runtime/cloudflare/worker.ts"),
};

/** The file each bundle is written to, and how it imports the wasm from there. */
export const OUTPUTS: Record<EdgeTarget, { file: string; wasmImport: string }> = {
  vercel: { file: join(DIST, "vercel/edge.js"), wasmImport: `../../wasm/${WASM_NAME}?module` },
  workerd: { file: join(DIST, "workerd/worker.js"), wasmImport: `./${WASM_NAME}` },
};

/** The Node modules that yahoo-finance2's polyfill imports, and the names it takes from each. */
const NODE_STUBS: Record<string, string[]> = {
  "node:module": ["createRequire"],
  "node:url": ["fileURLToPath", "pathToFileURL"],
  "node:path": ["dirname"],
};

const nodeStubs: Plugin = {
  name: "edgeml-node-stubs",
  setup(b) {
    b.onResolve({ filter: /^node:(module|url|path)$/ }, (args) => ({
      path: args.path,
      namespace: "node-stub",
    }));
    b.onLoad({ filter: /.*/, namespace: "node-stub" }, (args) => ({
      loader: "js",
      contents: (NODE_STUBS[args.path] ?? [])
        .map(
          (name) =>
            `export function ${name}() { throw new Error("edgeml: ${args.path} ${name}() is not available on the edge"); }`,
        )
        .join("\n"),
    }));
  },
};

/** zod's locales index, reduced to the English one the API uses. */
const zodEnglishOnly: Plugin = {
  name: "edgeml-zod-english",
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)
        ? { path: join(args.resolveDir, args.path), namespace: "zod-locales" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "zod-locales" }, (args) => ({
      loader: "js",
      resolveDir: dirname(args.path),
      contents: 'export { default as en } from "./en.js";',
    }));
  },
};

function embeddedRegistry(registry: EmbeddedRegistry): Plugin {
  return {
    name: "edgeml-embedded-registry",
    setup(b) {
      b.onResolve({ filter: /^edgeml:embedded-registry$/ }, (args) => ({
        path: args.path,
        namespace: "edgeml",
      }));
      b.onLoad({ filter: /.*/, namespace: "edgeml" }, () => ({
        loader: "js",
        contents: embeddedModuleSource(registry),
      }));
    },
  };
}

export interface BundleOptions {
  /** The models that ship inside the bundle (readRegistryDir of models/, or a test's registry). */
  registry: EmbeddedRegistry;
  /** Another entry built the same way (the cold-start benchmark's probe); default: the target's entry. */
  entry?: string;
  /** Default true: the size limits are on the deployed bytes. */
  minify?: boolean;
  /** Receives esbuild's metafile (bytes of each input in the output), for the size report's per-package breakdown. */
  onMetafile?: (metafile: Metafile) => void;
}

/** The deployable ES module of `target`. */
export async function bundleEdge(target: EdgeTarget, options: BundleOptions): Promise<string> {
  const wasmImport = OUTPUTS[target].wasmImport;
  const wasm: Plugin = {
    name: "edgeml-wasm",
    setup(b) {
      b.onResolve({ filter: /\.wasm(\?module)?$/i }, () => ({ path: wasmImport, external: true }));
    },
  };
  const result = await build({
    entryPoints: [options.entry ?? ENTRIES[target]],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    // What Vercel's edge bundler and wrangler resolve with.
    conditions: target === "vercel" ? ["edge-light"] : ["workerd", "worker", "browser"],
    target: "es2022",
    minify: options.minify ?? true,
    // onnxruntime-web reads import.meta.url only to locate its wasm and workers, which the precompiled module and
    // one thread make moot. Left in, `new URL("ort-wasm-simd-threaded.wasm", import.meta.url)` reads to Vercel as
    // an asset of the function: another 3.7 MB, over the size limit.
    define: { "import.meta.url": "undefined" },
    legalComments: "none",
    logLevel: "error",
    metafile: options.onMetafile !== undefined,
    plugins: [wasm, nodeStubs, zodEnglishOnly, embeddedRegistry(options.registry)],
  });
  const code = result.outputFiles[0]?.text;
  if (!code) throw new Error(`edgeml: esbuild produced no output for the ${target} entry`);
  if (result.metafile) options.onMetafile?.(result.metafile);
  return code;
}

/** Vercel's Node.js serving function (`EDGEML_VERCEL_RUNTIME=nodejs`): its entry, and the bundle the build writes. */
export const VERCEL_NODE = {
  entry: join(REPO_ROOT, "src/runtime/vercel/node.ts"),
  file: join(DIST, "vercel/node.js"),
} as const;

/**
 * The Vercel Node.js function's ES module: the sources and embedded registry of the edge bundles, built for Node.
 * Every package is inside but onnxruntime-web, which stays an import from node_modules: it finds its wasm beside its
 * own file, and Vercel traces both into the function. Nothing is stubbed or left out: Node has what the edge lacks,
 * and no size limit binds (250 MB). One file rather than the sources: the models travel in it (the function's file
 * system has no models/ of its own), and a cold start resolves one module instead of hundreds.
 */
export async function bundleVercelNode(options: BundleOptions): Promise<string> {
  const result = await build({
    entryPoints: [options.entry ?? VERCEL_NODE.entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "node",
    target: "node22",
    external: ["onnxruntime-web", "onnxruntime-web/*"],
    // CommonJS packages inside an ES module call require() for Node's built-ins: give them one.
    banner: {
      js: 'import { createRequire as __edgemlRequire } from "node:module"; const require = __edgemlRequire(import.meta.url);',
    },
    minify: options.minify ?? false,
    legalComments: "none",
    logLevel: "error",
    metafile: options.onMetafile !== undefined,
    plugins: [embeddedRegistry(options.registry)],
  });
  const code = result.outputFiles[0]?.text;
  if (!code) throw new Error("edgeml: esbuild produced no output for the Vercel Node.js entry");
  if (result.metafile) options.onMetafile?.(result.metafile);
  return code;
}

export interface EdgeRuntimeScript {
  /** A script (not a module) that registers a fetch listener, as Vercel's edge runtime evaluates. */
  script: string;
  /** Global name → wasm file: the WebAssembly.Module each `?module` import becomes. */
  wasm: Record<string, string>;
}

/**
 * The Vercel bundle as the script Vercel's edge runtime runs, made the way `vercel dev` makes it: esbuild turns the
 * module into CommonJS with every `*.wasm?module` import bound to a global named `wasm_<sha1 of the file>`, then
 * Vercel's own fetch-event wrapper (@vercel/node's edge-handler-template.js) calls the default export with the
 * request and a context holding `waitUntil`. `bundleFile` is where the bundle lives (its imports resolve from there).
 */
export async function edgeRuntimeScript(
  bundle: string,
  bundleFile = OUTPUTS.vercel.file,
): Promise<EdgeRuntimeScript> {
  const wasm: Record<string, string> = {};
  const wasmGlobals: Plugin = {
    name: "vercel-wasm",
    setup(b) {
      b.onResolve({ filter: /\.wasm\?module$/i }, async (args) => {
        const relative = args.path.replace(/\?module$/i, "");
        // The ORT wasm is read from node_modules: wasm/ holds a copy only once `npm run build:edge` has run.
        const file = basename(relative) === WASM_NAME ? installedOrtWasm() : join(args.resolveDir, relative);
        const name = `wasm_${createHash("sha1")
          .update(await readFile(file))
          .digest("hex")}`;
        wasm[name] = file;
        return { path: name, namespace: "vercel-wasm" };
      });
      b.onLoad({ filter: /.*/, namespace: "vercel-wasm" }, (args) => ({
        loader: "js",
        contents: `export default globalThis[${JSON.stringify(args.path)}];`,
      }));
    },
  };
  const result = await build({
    stdin: { contents: bundle, resolveDir: dirname(bundleFile), sourcefile: bundleFile, loader: "js" },
    bundle: true,
    write: false,
    format: "cjs",
    platform: "browser",
    target: "es2022",
    logLevel: "error",
    plugins: [wasmGlobals],
  });
  const code = result.outputFiles[0]?.text;
  if (!code) throw new Error("edgeml: esbuild produced no script from the Vercel bundle");
  const require = createRequire(import.meta.url);
  const vercelNode = dirname(
    require.resolve("@vercel/node/package.json", {
      paths: [dirname(require.resolve("vercel/package.json"))],
    }),
  );
  const template = await readFile(join(vercelNode, "dist/edge-handler-template.js"), "utf8");
  const script = `"use strict";
(() => { ${code} })();
const userModule = module.exports;
${template};
registerFetchListener(userModule, { isMiddleware: false, entrypointLabel: "api/[[...route]]" }, { Request, Response });
`;
  return { script, wasm };
}
