import { type ChildProcess, spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/** The README's commands as a new user runs them: `npm start` and `npm run train`, as child processes. */
const TSX = join(REPO_ROOT, "node_modules/.bin/tsx");

function run(script: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  return spawn(TSX, [script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function collect(child: ChildProcess): { text: () => string } {
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    out += chunk;
  });
  return { text: () => out };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

describe("npm start", () => {
  let server: ChildProcess | undefined;
  afterAll(async () => {
    if (server && server.exitCode === null) {
      server.kill("SIGTERM");
      await exited(server);
    }
  });

  it("serves the shipped models on embedded defaults and says where", async () => {
    // PORT 0: the OS picks a free port; the banner says which.
    server = run("src/runtime/node/server.ts", { PORT: "0", HOST: "127.0.0.1", ADMIN_TOKEN: "" });
    const output = collect(server);
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner:\n${output.text()}`)), 30_000);
      server?.stdout?.on("data", () => {
        const match = /edgeml listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.text());
        // The banner's last line: the whole banner has arrived (stdout comes in chunks).
        if (match?.[1] && output.text().includes("admin API disabled")) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
    expect(output.text()).toContain(`API docs:  ${base}/docs`);
    expect(output.text()).toMatch(/model BTC-24h: versions 1, 2, 3; serving \d/);
    expect(output.text()).toContain("admin API disabled");

    const res = await fetch(`${base}/v2/models/BTC-24h/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        inputs: [{ name: "features", datatype: "FP64", shape: [1, 30], data: Array(30).fill(0) }],
      }),
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.outputs[0]).toMatchObject({ name: "log_return", datatype: "FP64", shape: [1, 1] });
    expect(Number.isFinite(body.outputs[0].data[0])).toBe(true);
    expect((await fetch(`${base}/docs`)).status).toBe(200);

    server.kill("SIGTERM");
    expect(await exited(server)).toBe(0);
  });
});

describe("npm run train", () => {
  it("trains from a CSV directory into a registry, printing progress and the evaluation table", async () => {
    const dir = await tempDir();
    try {
      const child = run("scripts/train_models.ts", { MODELS_DIR: dir.path, MARKET_DATA_DIR: MARKET_DATA }, [
        "ETH",
        "--families",
        "ridge",
      ]);
      const output = collect(child);
      expect(await exited(child)).toBe(0);
      const text = output.text();
      expect(text).toContain("market data: csv");
      expect(text).toMatch(/ETH-24h@1\s+ridge\s+new\s+\d+\s+-?\d\.\d{4}\s+\d\.\d{3}%\s+\d\.\d{3}%/);
      expect(text).toContain("naive MAPE");
      // Six walk-forward folds, mean ± std skill, the DM p-value.
      expect(text).toMatch(/ETH-24h@1 .*\s6\s+-?\d+\.\d\d% ± \d+\.\d\d%\s+\d\.\d{3}\s/);
      // The selection policy's choice: the naive baseline (version 2) unless ridge beats naive significantly.
      expect(text).toMatch(/ETH-24h: serving version [12] \(champion\)/);
      expect(await readdir(join(dir.path, "ETH-24h", "1"))).toEqual(["metadata.json", "model.onnx"]);
    } finally {
      await dir.cleanup();
    }
  });

  it("fails with the reason when the market data is missing", async () => {
    const dir = await tempDir();
    try {
      const child = run(
        "scripts/train_models.ts",
        { MODELS_DIR: dir.path, MARKET_DATA_DIR: join(dir.path, "none") },
        ["BTC"],
      );
      const output = collect(child);
      expect(await exited(child)).toBe(1);
      expect(output.text()).toMatch(/error: edgeml: .*BTC/);
      expect(await readdir(dir.path)).toEqual([]);
    } finally {
      await dir.cleanup();
    }
  });
});
