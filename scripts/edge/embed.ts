import { copyFile, mkdir, readdir, readFile, rename } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { EmbeddedPointersSchema, type EmbeddedRegistry } from "../../src/storage/embedded.js";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const WASM_NAME = "ort-wasm-simd-threaded.wasm";
/** Where the edge entries import the wasm from (`wasm/ort-wasm-simd-threaded.wasm?module`). */
export const WASM_PATH = join(REPO_ROOT, "wasm", WASM_NAME);
/** Build outputs (git-ignored): dist/vercel/edge.js, dist/workerd/, dist/static/. */
export const DIST = join(REPO_ROOT, "dist");
export const DEFAULT_MODELS_DIR = join(REPO_ROOT, "models");

const VERSION_DIR = /^[1-9][0-9]*$/;

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

async function dirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
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
  for (const name of (await dirs(modelsDir)).sort()) {
    const versions: Record<string, { metadata: string; model: string }> = {};
    const numbered = (await dirs(join(modelsDir, name))).filter((v) => VERSION_DIR.test(v));
    for (const version of numbered.sort((a, b) => Number(a) - Number(b))) {
      const [model, metadata] = await Promise.all([
        readIfExists(join(modelsDir, name, version, "model.onnx")),
        readIfExists(join(modelsDir, name, version, "metadata.json")),
      ]);
      if (model && metadata)
        versions[version] = { metadata: metadata.toString("utf8"), model: model.toString("base64") };
    }
    if (Object.keys(versions).length > 0) models[name] = versions;
  }
  const pointersText = await readIfExists(pointersFile ?? join(modelsDir, "pointers.json"));
  let pointers: unknown = null;
  if (pointersText) {
    const parsed = EmbeddedPointersSchema.safeParse(JSON.parse(pointersText.toString("utf8")));
    if (!parsed.success) {
      throw new Error(`edgeml: ${pointersFile ?? "pointers.json"} is not valid: ${parsed.error.message}`);
    }
    pointers = parsed.data;
  }
  const source = relative(REPO_ROOT, modelsDir) || ".";
  return { source: source.startsWith("..") ? modelsDir : source, models, pointers };
}

/** The registry as the source of the `edgeml:embedded-registry` module the edge entries import. */
export function embeddedModuleSource(registry: EmbeddedRegistry): string {
  return `export const EMBEDDED_REGISTRY = ${JSON.stringify(registry)};\n`;
}
