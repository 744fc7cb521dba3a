import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { EdgeMLError } from "../../errors.js";
import type { ArtifactStore } from "../artifacts.js";
import { syncDirectory, writeFileDurably } from "./durable-write.js";

const VERSION_DIR = /^[1-9][0-9]*$/;

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * The embedded artifact store: `<root>/<model>/<version>/{model.onnx,metadata.json}`.
 * A version is written into a hidden staging folder and renamed into place: rename(2) of a folder onto an existing,
 * non-empty one fails, so a version appears whole or not at all, and two writers of one version cannot both win.
 * Both files are fsync'ed before the rename and the folder after it: a crash never leaves a listed version with a
 * truncated `metadata.json`.
 */
export function createFsArtifactStore(root: string): ArtifactStore {
  const readOrNull = async <T>(read: () => Promise<T>): Promise<T | null> => {
    try {
      return await read();
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  };
  const dirs = async (path: string): Promise<string[]> =>
    (await readOrNull(() => readdir(path, { withFileTypes: true })))
      ?.filter((d) => d.isDirectory())
      .map((d) => d.name) ?? [];

  return {
    kind: "fs",
    async listModels() {
      const names = await dirs(root);
      const withVersions = await Promise.all(
        names.map(async (name) =>
          (await dirs(join(root, name))).some((v) => VERSION_DIR.test(v)) ? name : null,
        ),
      );
      return withVersions.filter((name): name is string => name !== null);
    },
    async listVersions(model) {
      return (await dirs(join(root, model))).filter((v) => VERSION_DIR.test(v));
    },
    getMetadata(model, version) {
      return readOrNull(() => readFile(join(root, model, version, "metadata.json"), "utf8"));
    },
    async getModel(model, version) {
      const buffer = await readOrNull(() => readFile(join(root, model, version, "model.onnx")));
      return buffer && new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    },
    async publish(model, version, files) {
      const staging = join(root, model, `.staging-${randomUUID()}`);
      await mkdir(staging, { recursive: true });
      try {
        await writeFileDurably(join(staging, "model.onnx"), files.model);
        await writeFileDurably(join(staging, "metadata.json"), files.metadata);
        await syncDirectory(staging);
        await rename(staging, join(root, model, version));
        await syncDirectory(join(root, model));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST") {
          throw new EdgeMLError("conflict", `version ${version} of '${model}' exists already`);
        }
        throw error;
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    },
  };
}
