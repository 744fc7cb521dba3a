import { join } from "node:path";
import { type ServerType, serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../src/cli/index.js";
import { trainSymbol } from "../../src/forecast/training.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { nodeDeps } from "../../src/runtime/node/deps.js";
import { createServices } from "../../src/services/index.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { ADMIN_TOKEN, type TestApp, testApp } from "../support/app.js";
import { runCli as run } from "../support/cli.js";
import { BYO_MODELS, MARKET_DATA, tempDir } from "../support/paths.js";

/** The CLI as a person at a terminal uses it, on a local registry in a temporary directory. */
describe("edgeml CLI on the local registry", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
    process.env.MODELS_DIR = dir.path;
    delete process.env.EDGEML_URL;
  });
  afterAll(async () => {
    delete process.env.MODELS_DIR;
    await dir.cleanup();
  });

  it("registers a model file and prints its signature", async () => {
    const out = await run(
      "register",
      join(BYO_MODELS, "sk_gbr_f32.onnx"),
      "--name",
      "gbr",
      "--tag",
      "source=sklearn",
    );
    expect(out).toContain("registered gbr version 1");
    expect(out).toContain("input  X: FP32 [-1, 30]");
  });

  it("registers with golden rows and refuses rows the model does not reproduce", async () => {
    const golden = JSON.stringify({
      cases: [
        {
          inputs: [{ name: "X", datatype: "FP32", shape: [1, 30], data: Array(30).fill(0) }],
          outputs: [{ name: "variable", datatype: "FP32", shape: [1, 1], data: [123] }],
        },
      ],
    });
    await expect(
      run("register", join(BYO_MODELS, "sk_gbr_f32.onnx"), "-n", "gbr", "--golden", golden),
    ).rejects.toThrow(/golden_mismatch/);
  });

  it("lists models, promotes, rolls back and shows the history", async () => {
    await run("register", join(BYO_MODELS, "sk_rf_f32.onnx"), "--name", "gbr");
    expect(await run("models")).toMatch(/gbr\s+1,2\s+2 \(latest\)/);
    expect(await run("promote", "gbr", "1", "--reason", "baseline")).toContain("version 1 is the champion");
    expect(await run("promote", "gbr", "2")).toContain("serving 2");
    expect(await run("rollback", "gbr")).toContain("rolled back 2 -> 1; serving 1");
    const versions = await run("versions", "gbr");
    expect(versions).toMatch(/1\s+\* champion/);
    expect(versions).toMatch(/promote\s+- -> 1 {2}\(baseline\)/);
    expect(await run("pin", "gbr", "2")).toContain("pinned to 2; serving 2");
    expect(await run("pin", "gbr", "none")).toContain("unpinned; serving 1");
  });

  it("predicts from nested rows", async () => {
    const out = await run(
      "predict",
      "gbr",
      "--model-version",
      "1",
      "--data",
      JSON.stringify([Array(30).fill(0)]),
    );
    expect(out).toMatch(/gbr version 1:\n {2}variable \[1, 1\]: \[-?\d/);
  });

  it("prints a trained version's evaluation report beside the naive forecast", async () => {
    const deps = nodeDeps({ MODELS_DIR: dir.path });
    const { registry } = createServices(deps, { ...deps, logger: silentLogger });
    const market = createCsvMarketData({ dir: MARKET_DATA });
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market,
      registry,
      plan: { families: ["ridge"] },
    });
    // Version 1, the trained one: the one that serves is the naive baseline (version 2) unless 1 beats it significantly.
    const out = await run("report", "BTC-24h", "1");
    expect(out).toContain("BTC-24h@1");
    expect(out).toMatch(/MAPE \(price\)\s+\d+\.\d{3}%/);
    expect(out).toMatch(/naive MAPE \(no change\)\s+\d+\.\d{3}%/);
    expect(out).toMatch(/skill = 1 − MAPE \/ naive\s+-?\d+\.\d{2}%/);
    expect(out).toMatch(/rows: train \d+, validation \d+, test \d+/);
    expect(out).toContain("top features (abs_standardized_coefficient)");
  });

  it("says so when a version has no evaluation report", async () => {
    expect(await run("report", "gbr", "1")).toContain("no evaluation report");
  });

  it("reports the API's error for an unknown model", async () => {
    await expect(run("predict", "nope", "--data", "[[1]]")).rejects.toThrow(
      /no model named 'nope'.*model_not_found/,
    );
  });
});

/** The same commands against a running server: the `hc` client typed from the routes, over a real socket. */
describe("edgeml CLI against a server (--url)", () => {
  let t: TestApp;
  let server: ServerType;
  let url = "";
  const remote = async (...args: string[]) => {
    const lines: string[] = [];
    await buildCli((text) => lines.push(text))
      .exitOverride()
      .parseAsync(["node", "edgeml", "--url", url, "--token", ADMIN_TOKEN, ...args]);
    return lines.join("\n");
  };

  beforeAll(async () => {
    t = await testApp();
    await new Promise<void>((resolve) => {
      server = serve({ fetch: t.app.app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
        url = `http://127.0.0.1:${info.port}`;
        resolve();
      });
    });
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await t.cleanup();
  });

  it("registers, lists, promotes, pins, rolls back and predicts as in process", async () => {
    expect(await remote("register", join(BYO_MODELS, "sk_gbr_f32.onnx"), "-n", "gbr", "-t", "k=v")).toContain(
      `registered gbr version 1 in ${url}`,
    );
    await remote("register", join(BYO_MODELS, "sk_rf_f32.onnx"), "-n", "gbr");
    expect(await remote("models")).toMatch(/gbr\s+1,2\s+2 \(latest\)/);
    expect(await remote("promote", "gbr", "1", "-r", "baseline")).toContain(
      "version 1 is the champion; serving 1",
    );
    expect(await remote("pin", "gbr", "2")).toContain("pinned to 2; serving 2");
    expect(await remote("pin", "gbr", "none")).toContain("unpinned; serving 1");
    expect(await remote("promote", "gbr", "2")).toContain("serving 2");
    expect(await remote("rollback", "gbr")).toContain("rolled back 2 -> 1; serving 1");
    expect(await remote("versions", "gbr")).toMatch(/promote\s+- -> 1 {2}\(baseline\)/);
    expect(await remote("predict", "gbr", "--data", JSON.stringify([Array(30).fill(0)]))).toMatch(
      /gbr version 1:\n {2}variable \[1, 1\]: \[-?\d/,
    );
  });

  it("prints the server's error and code", async () => {
    await expect(remote("predict", "nope", "--data", "[[1]]")).rejects.toThrow(
      /no model named 'nope'.*\[model_not_found\]/,
    );
    await expect(
      buildCli(() => {})
        .exitOverride()
        .parseAsync(["node", "edgeml", "--url", url, "--token", "wrong-token-0123456789", "models"]),
    ).rejects.toThrow(/the admin token is wrong.*\[unauthorized\]/);
  });
});
