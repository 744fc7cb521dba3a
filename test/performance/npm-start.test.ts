import { type ChildProcess, spawn } from "node:child_process";
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATA_AS_OF, MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/** The "must show", as a user runs it: `npm start`, a forecast, the performance route, a restart. */
const TSX = join(REPO_ROOT, "node_modules/.bin/tsx");

/** Starts `npm start`'s script on a port the OS picks; answers its base URL once the banner is whole. */
async function start(env: Record<string, string>): Promise<{ base: string; child: ChildProcess }> {
  const child = spawn(TSX, ["src/runtime/node/server.ts"], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ADMIN_TOKEN: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const base = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk;
      const match = /edgeml listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match?.[1] && out.includes("admin API disabled")) resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
  });
  return { base, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.on("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

describe("npm start: a served forecast is counted by the performance route, and still after a restart", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let env: Record<string, string>;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    dir = await tempDir();
    await cp(join(REPO_ROOT, "models"), join(dir.path, "models"), { recursive: true });
    env = {
      MODELS_DIR: join(dir.path, "models"),
      PREDICTION_LOG_FILE: join(dir.path, "data", "predictions.sqlite"),
      MARKET_DATA_DIR: MARKET_DATA,
    };
  });
  afterAll(async () => {
    for (const child of children) await stop(child);
    await dir.cleanup();
  });

  // npm start runs on the real clock, past the shipped CSVs' end: the forecast is asked as of their last bar, and
  // counted as a replay.
  it("POST /api/ml/serve, then GET /api/ml/performance/BTC?source=replay counts it, before and after a restart", async () => {
    const first = await start(env);
    children.push(first.child);
    const served = await fetch(`${first.base}/api/ml/serve`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF }),
    });
    expect(served.status).toBe(200);
    const forecast = await served.json();
    // The record is written off the response path: read until it is there (each read is a full request).
    let summary: { predictions: number } = { predictions: 0 };
    for (let i = 0; i < 50 && summary.predictions === 0; i++) {
      summary = await (await fetch(`${first.base}/api/ml/performance/BTC?source=replay`)).json();
      if (summary.predictions === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(summary).toMatchObject({ model: "BTC-24h", source: "replay", predictions: 1 });
    await stop(first.child);

    const second = await start(env);
    children.push(second.child);
    const after = await (await fetch(`${second.base}/api/ml/performance/BTC?source=replay`)).json();
    expect(after).toMatchObject({ model: "BTC-24h", source: "replay", predictions: 1 });
    expect(after.versions).toEqual([expect.objectContaining({ version: forecast.model_version })]);
  }, 120_000);
});
