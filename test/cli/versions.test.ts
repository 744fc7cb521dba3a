import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli as run } from "../support/cli.js";
import { BYO_MODELS, tempDir } from "../support/paths.js";

/** Duplicates, retention and restore as a person at a terminal sees them, on a local registry keeping one version. */
describe("edgeml CLI: duplicates, archived versions and restore", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
    process.env.MODELS_DIR = dir.path;
    process.env.RETAIN_VERSIONS = "1";
    delete process.env.EDGEML_URL;
  });
  afterAll(async () => {
    delete process.env.MODELS_DIR;
    delete process.env.RETAIN_VERSIONS;
    await dir.cleanup();
  });

  it("registering the same file twice registers it once and names the version it equals", async () => {
    const file = join(BYO_MODELS, "sk_gbr_f32.onnx");
    expect(await run("register", file, "--name", "gbr")).toContain("registered gbr version 1");
    expect(await run("register", file, "--name", "gbr", "--tag", "run=2")).toMatch(
      /^nothing registered: .*sk_gbr_f32\.onnx equals gbr version 1 \(same bytes and calibration\)/,
    );
    expect(await run("models")).toMatch(/gbr\s+1\s/);
  });

  it("a new version archives the old one; versions shows it archived; restore brings it back", async () => {
    const out = await run("register", join(BYO_MODELS, "sk_rf_f32.onnx"), "--name", "gbr");
    expect(out).toContain("registered gbr version 2");
    expect(out).toContain("archived by retention: 1");
    expect(await run("versions", "gbr")).toMatch(/^1\s+since \d{4}-\d\d-\d\d/m);
    await expect(
      run("predict", "gbr", "--model-version", "1", "--data", JSON.stringify([Array(30).fill(0)])),
    ).rejects.toThrow(/version_archived/);
    expect(await run("restore", "gbr", "1", "--reason", "compare")).toContain("version 1 restored");
    const versions = await run("versions", "gbr");
    expect(versions).not.toMatch(/since/);
    expect(versions).toMatch(/restore\s+- -> 1 {2}\(compare\)/);
  });
});
