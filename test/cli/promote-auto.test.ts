import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logger.js";
import { nodeDeps } from "../../src/runtime/node/deps.js";
import { createServices } from "../../src/services/index.js";
import { forecasterBytes, registration, type VersionSpec } from "../selection/support.js";
import { runCli as run } from "../support/cli.js";
import { tempDir } from "../support/paths.js";

/** `promote --auto` on a local registry: a person hands a forecast model back to the selection policy. */
describe("npm run cli -- promote <model> --auto", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
    process.env.MODELS_DIR = dir.path;
    delete process.env.EDGEML_URL;
    const deps = nodeDeps({ MODELS_DIR: dir.path });
    const { registry } = createServices(deps, { ...deps, logger: silentLogger });
    const specs: VersionSpec[] = [{ family: "naive" }, { p: 0.3 }, { p: 0.001 }];
    for (const [i, spec] of specs.entries()) {
      await registry.register("BTC-24h", forecasterBytes(spec.family, i * 1e-4), registration(spec));
    }
  });
  afterAll(async () => {
    delete process.env.MODELS_DIR;
    await dir.cleanup();
  });

  it("a person's champion stays until --auto; then the policy chooses and says why", async () => {
    expect(await run("promote", "BTC-24h", "2")).toContain("version 2 is the champion; serving 2");
    const out = await run("promote", "BTC-24h", "--auto", "--reason", "back to the policy");
    expect(out).toContain("BTC-24h: handed back to the selection policy; serving 3 (champion)");
    expect(out).toMatch(/back to the policy; selection policy \(strict\): v3 beats naive with significance/);
  });

  it.each([[["promote", "BTC-24h"]], [["promote", "BTC-24h", "2", "--auto"]]])(
    "%j: a version or --auto, not both, not neither",
    async (args) => {
      await expect(run(...args)).rejects.toThrow("give a version, or --auto (not both)");
    },
  );
});
