import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The runtime boundary (docs/architecture.md, "Layers"): code under src/ runs on Node, Vercel Edge and workerd,
 * except in folders named `node`, src/runtime/ (each runtime's wiring) and src/cli/. `npm run check` enforces it
 * through `npm run check:boundary`. These tests run that very script on a copy of the tree (in the system's temp
 * folder, so nothing is left in the repository and no other test sees the probe files), once as it is and once with
 * probe files added to runtime-agnostic folders.
 */

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, "../..");
const COPIED = [
  "src",
  "types",
  "wasm/modules.d.ts",
  "package.json",
  "tsconfig.json",
  "tsconfig.agnostic.json",
  "biome.json",
];

interface Outcome {
  ok: boolean;
  output: string;
}

const run = async (cwd: string, file: string, args: string[]): Promise<Outcome> => {
  try {
    const { stdout, stderr } = await exec(file, args, { cwd, maxBuffer: 32 * 1024 * 1024 });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    return { ok: false, output: stdout + stderr };
  }
};

/** A copy of what the check reads, with node_modules linked and a git repository (biome reads .gitignore). */
const copyTree = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), "edgeml-boundary-"));
  for (const entry of COPIED) {
    await mkdir(join(dir, entry, ".."), { recursive: true });
    await cp(join(ROOT, entry), join(dir, entry), { recursive: true });
  }
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  await writeFile(join(dir, ".gitignore"), "node_modules\n");
  await run(dir, "git", ["init", "-q"]);
  return dir;
};

const boundaryCheck = (cwd: string) => run(cwd, "npm", ["run", "--silent", "check:boundary"]);

const PROBES = {
  // A Node module imported by a registry module.
  "src/registry/probe-fs.ts":
    'import { readFileSync } from "node:fs";\n\nexport const read = () => readFileSync("x");\n',
  // The environment read by a storage adapter instead of taking its settings from the runtime wiring.
  "src/storage/probe-env.ts": "export const setting = () => process.env.X;\n",
  // Buffer in a feature module.
  "src/features/probe-buffer.ts": 'export const bytes = () => Buffer.from("x");\n',
  // An agnostic module reaching into a node/ folder.
  "src/forecast/probe-node-import.ts":
    'import { createFsArtifactStore } from "../storage/node/fs-artifacts.js";\n\nexport const store = createFsArtifactStore;\n',
} as const;

describe("npm run check: the runtime boundary", () => {
  let clean = "";
  let probed = "";

  beforeAll(async () => {
    [clean, probed] = await Promise.all([copyTree(), copyTree()]);
    for (const [path, text] of Object.entries(PROBES)) await writeFile(join(probed, path), text);
    // The same probes in Node folders and the runtime wiring are allowed.
    await writeFile(join(probed, "src/storage/node/probe-allowed.ts"), PROBES["src/registry/probe-fs.ts"]);
    await writeFile(join(probed, "src/runtime/probe-allowed.ts"), PROBES["src/storage/probe-env.ts"]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(
      [clean, probed].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })),
    );
  });

  it("is part of npm run check", async () => {
    const scripts = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")).scripts as Record<
      string,
      string
    >;
    expect(scripts.check).toContain("check:boundary");
    expect(scripts["check:boundary"]).toContain("tsconfig.agnostic.json");
  });

  it("passes on the tree as it is", async () => {
    const outcome = await boundaryCheck(clean);
    expect(outcome.ok, outcome.output).toBe(true);
  }, 120_000);

  it("fails on node:* imports, process and Buffer in runtime-agnostic folders, naming each file", async () => {
    const outcome = await boundaryCheck(probed);
    expect(outcome.ok).toBe(false);
    expect(outcome.output).toMatch(/src\/registry\/probe-fs\.ts.*node:fs/);
    expect(outcome.output).toMatch(/src\/storage\/probe-env\.ts.*'process'/);
    expect(outcome.output).toMatch(/src\/features\/probe-buffer\.ts.*'Buffer'/);
    expect(outcome.output).not.toContain("probe-allowed");
  }, 120_000);

  // The lint half of the check holds on its own, so a Node type that leaks into the agnostic program through a
  // dependency's declarations cannot silently switch the boundary off.
  it("fails in its lint half too, which also refuses imports from node/ folders", async () => {
    const outcome = await run(probed, join(probed, "node_modules/.bin/biome"), ["lint", "src"]);
    expect(outcome.ok).toBe(false);
    const flagged = (rule: string) =>
      new Set(
        [...outcome.output.matchAll(new RegExp(`(src/[\\w/-]+\\.ts):\\d+:\\d+ lint/${rule}`, "g"))].map(
          (m) => m[1],
        ),
      );
    expect(flagged("correctness/noNodejsModules")).toEqual(new Set(["src/registry/probe-fs.ts"]));
    expect(flagged("style/noProcessEnv")).toEqual(new Set(["src/storage/probe-env.ts"]));
    expect(flagged("style/noRestrictedGlobals")).toEqual(
      new Set(["src/storage/probe-env.ts", "src/features/probe-buffer.ts"]),
    );
    expect(flagged("style/noRestrictedImports")).toEqual(new Set(["src/forecast/probe-node-import.ts"]));
  }, 120_000);
});
