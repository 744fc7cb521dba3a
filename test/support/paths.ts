import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
/** Shared read-only fixtures beside the repository, as in CI: never copied into it. */
export const SHARED_DATA = resolve(REPO_ROOT, "../shared/data");
export const BYO_MODELS = join(SHARED_DATA, "byo-models");
export const MARKET_DATA = process.env.MARKET_DATA_DIR ?? join(SHARED_DATA, "market");

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "edgeml-test-",
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
