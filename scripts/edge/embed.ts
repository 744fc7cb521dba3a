import { copyFile, mkdir, readFile, rename } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { errorMessage } from "../../src/errors.js";
import type { EmbeddedRegistry } from "../../src/storage/embedded.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { parsePointerDocument, pointerDocumentJson } from "../../src/storage/pointer-document.js";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const WASM_NAME = "ort-wasm-simd-threaded.wasm";
/** Where the edge entries import the wasm from (`wasm/ort-wasm-simd-threaded.wasm?module`). */
export const WASM_PATH = join(REPO_ROOT, "wasm", WASM_NAME);
/** Build outputs (git-ignored): dist/vercel/edge.js, dist/workerd/, dist/static/. */
export const DIST = join(REPO_ROOT, "dist");
export const DEFAULT_MODELS_DIR = join(REPO_ROOT, "models");

/** The wasm of the installed onnxruntime-web: the only one that matches its JS glue. */
export function installedOrtWasm(): string {
  return createRequire(import.meta.url).resolve(`onnxruntime-web/${WASM_NAME}`);
}

/** Copies the installed onnxruntime-web wasm to `dest` (wasm/ by default), unless an identical copy is there. */
export async function copyOrtWasm(
  dest = WASM_PATH,
): Promise<{ path: string; bytes: number; copied: boolean }> {
  const source = installedOrtWasm();
  // Compared by content: npm gives every installed file the same mtime, so dates cannot tell versions apart.
  const [from, to] = await Promise.all([readFile(source), readFile(dest).catch(() => null)]);
  if (to?.equals(from)) return { path: dest, bytes: from.length, copied: false };
  await mkdir(dirname(dest), { recursive: true });
  // Through a temporary file and rename(2): a reader (a test, a bundler) never sees half a wasm.
  const temporary = `${dest}.${process.pid}.tmp`;
  await copyFile(source, temporary);
  await rename(temporary, dest);
  return { path: dest, bytes: from.length, copied: true };
}

async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/**
 * Reads a registry directory (`<name>/<version>/{model.onnx,metadata.json}` and `pointers.json`) as an
 * EmbeddedRegistry. Only complete versions are taken, as the file store lists them; the pointers are validated.
 */
export async function readRegistryDir(modelsDir: string, pointersFile?: string): Promise<EmbeddedRegistry> {
  const models: EmbeddedRegistry["models"] = {};
  const store = createFsArtifactStore(modelsDir);
  for (const name of (await store.listModels()).sort()) {
    const versions: Record<string, { metadata: string; model: string }> = {};
    for (const version of (await store.listVersions(name)).sort((a, b) => Number(a) - Number(b))) {
      const [model, metadata] = await Promise.all([
        store.getModel(name, version),
        store.getMetadata(name, version),
      ]);
      if (model && metadata) versions[version] = { metadata, model: Buffer.from(model).toString("base64") };
    }
    if (Object.keys(versions).length > 0) models[name] = versions;
  }
  const pointersText = await readIfExists(pointersFile ?? join(modelsDir, "pointers.json"));
  let pointers: unknown = null;
  if (pointersText) {
    try {
      // Validated here so a bad file fails the build, not the deployment's first request.
      pointers = pointerDocumentJson(parsePointerDocument(pointersText.toString("utf8")));
    } catch (error) {
      throw new Error(`edgeml: ${pointersFile ?? "pointers.json"} is not valid: ${errorMessage(error)}`);
    }
  }
  const source = relative(REPO_ROOT, modelsDir) || ".";
  return { source: source.startsWith("..") ? modelsDir : source, models, pointers };
}

/** The registry as the source of the `edgeml:embedded-registry` module the edge entries import. */
export function embeddedModuleSource(registry: EmbeddedRegistry): string {
  // Through JSON.parse, not an object literal: in a literal, a `"__proto__":` key (a model of that name in
  // pointers.json) would set the object's prototype instead of being data, and the model would lose its pointers.
  return `export const EMBEDDED_REGISTRY = JSON.parse(${JSON.stringify(JSON.stringify(registry))});\n`;
}
