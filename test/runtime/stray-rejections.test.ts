import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, tempDir } from "../support/paths.js";

/**
 * Runs a script in a Node process of its own (the test runner has its own unhandledRejection handling), with or
 * without the Node server's guard, that leaves one promise rejecting unobserved and then, on a later timer turn,
 * prints "still serving". Node runs the unhandled-rejection check before any timer, so the outcome is deterministic.
 */
async function strayRejection(guarded: boolean): Promise<{ code: number | null; output: string }> {
  const dir = await tempDir("edgeml-stray-");
  try {
    const script = join(dir.path, "stray.ts");
    await writeFile(
      script,
      [
        `import { surviveStrayRejections } from ${JSON.stringify(join(REPO_ROOT, "src/runtime/node/stray-rejections.ts"))};`,
        guarded ? "surviveStrayRejections();" : "",
        'Promise.reject(new Error("a job-store write failed"));',
        'setTimeout(() => console.log("still serving"), 20);',
      ].join("\n"),
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    return { code, output };
  } finally {
    await dir.cleanup();
  }
}

describe("the Node server and a promise that rejects with no handler", () => {
  it("without the guard, Node (24) exits: what a missed .catch in background work did to the server", async () => {
    const { code, output } = await strayRejection(false);
    expect(code).not.toBe(0);
    expect(output).not.toContain("still serving");
  });

  it("with the server's guard (src/runtime/node/server.ts installs it), it is logged with the reason and the process keeps running", async () => {
    const { code, output } = await strayRejection(true);
    expect(output).toContain("edgeml: unhandled promise rejection");
    expect(output).toContain("a job-store write failed");
    expect(output).toContain("still serving");
    expect(code).toBe(0);
  });

  it("server.ts installs the guard before anything else runs", async () => {
    const { readFile } = await import("node:fs/promises");
    const source = await readFile(join(REPO_ROOT, "src/runtime/node/server.ts"), "utf8");
    expect(source).toMatch(/^surviveStrayRejections\(\);$/m);
  });
});
