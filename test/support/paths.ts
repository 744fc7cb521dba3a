import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
/** Shared read-only fixtures beside the repository, as in CI: never copied into it. */
export const SHARED_DATA = resolve(REPO_ROOT, "../shared/data");
export const BYO_MODELS = join(SHARED_DATA, "byo-models");
export const MARKET_DATA = process.env.MARKET_DATA_DIR ?? join(SHARED_DATA, "market");
/**
 * The close of the shipped CSVs' last daily bar (2026-03-27): a current forecast on them is months stale (503
 * `market_data_stale`), so a test that serves them asks `as_of` this instant, or injects a clock inside the data
 * where it tests live behaviour.
 */
export const DATA_AS_OF = "2026-03-28";

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "edgeml-test-",
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
