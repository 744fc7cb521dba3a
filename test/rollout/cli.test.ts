import { cp } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { runCli } from "../support/cli.js";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/**
 * `npm run cli -- rollout evaluate <model> [--dry-run] [--source --from --to]`, in process on a copy of the shipped
 * models, the CSVs and a SQLite prediction log: the ridge v2 backfilled beside the naive champion, a canary started
 * with the CLI, evaluated on the backfill.
 */
describe("npm run cli -- rollout evaluate", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const saved = { ...process.env };
  beforeAll(async () => {
    dir = await tempDir("edgeml-rollout-cli-");
    await cp(join(REPO_ROOT, "models"), join(dir.path, "models"), { recursive: true });
    Object.assign(process.env, {
      MODELS_DIR: join(dir.path, "models"),
      PREDICTION_LOG_FILE: join(dir.path, "predictions.sqlite"),
      MARKET_DATA_DIR: MARKET_DATA,
    });
    delete process.env.EDGEML_URL;
    for (const version of ["3", "2"]) {
      await runCli(
        "backfill",
        "BTC-24h",
        "--from",
        "2025-12-29",
        "--to",
        "2026-03-27",
        "--model-version",
        version,
      );
    }
    await runCli("rollout", "start", "BTC-24h", "--challenger", "2", "--mode", "canary", "--weight", "0.2");
  }, 180_000);
  afterAll(async () => {
    process.env = saved;
    await dir.cleanup();
  });

  const history = () =>
    createJsonFilePointerStore(join(dir.path, "models", "pointers.json")).history("BTC-24h");

  it("--dry-run prints the decision with its numbers and writes nothing", async () => {
    const before = await history();
    const out = await runCli(
      "rollout",
      "evaluate",
      "BTC-24h",
      "--dry-run",
      "--source",
      "backfill",
      "--from",
      "2025-12-29",
      "--to",
      "2026-03-27",
    );
    expect(out).toMatch(/^BTC-24h \(dry run: nothing written\), in local registry/);
    // v2 against naive over the 89 out-of-sample days: not significant either way (p(better) 0.158).
    expect(out).toMatch(/rollout: continue \(not_significant\)/);
    expect(out).toMatch(/paired 89, DM -1\.006, p\(better\) 0\.1585, p\(worse\) 0\.8415, alpha 0\.05/);
    expect(out).toMatch(/challenger +2 +89 +2\.1165/);
    expect(out).toMatch(/champion +3 +89 +2\.1341/);
    expect(out).toMatch(/rollback check: skip: v3 is the naive version/);
    expect(await history()).toEqual(before);
  }, 120_000);

  it("says what is wrong with a date, in the API's words", async () => {
    await expect(runCli("rollout", "evaluate", "BTC-24h", "--from", "yesterday")).rejects.toThrow(
      /rollout evaluation options are not valid[\s\S]*from/,
    );
  });
});
