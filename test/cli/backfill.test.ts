import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ServerType, serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VersionMetadataSchema } from "../../src/registry/metadata.js";
import { openSqlitePredictionLog } from "../../src/storage/node/sqlite-prediction-log.js";
import { ADMIN_TOKEN, type TestApp, testApp } from "../support/app.js";
import { runCli as run } from "../support/cli.js";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/** `npm run cli -- backfill <model> --from <date> --to <date> [--model-version v]`, as a person runs it. */
describe("edgeml backfill on the local registry (a copy of models/, the CSVs, a SQLite log)", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const saved = { ...process.env };
  beforeAll(async () => {
    dir = await tempDir("edgeml-cli-backfill-");
    await cp(join(REPO_ROOT, "models"), join(dir.path, "models"), { recursive: true });
    process.env.MODELS_DIR = join(dir.path, "models");
    process.env.MARKET_DATA_DIR = MARKET_DATA;
    process.env.PREDICTION_LOG_FILE = join(dir.path, "predictions.sqlite");
    delete process.env.EDGEML_URL;
  });
  afterAll(async () => {
    process.env = saved;
    await dir.cleanup();
  });

  it("replays the named version, prints what it recorded and resolved, and the log file holds it", async () => {
    const out = await run(
      "backfill",
      "ETH-24h",
      "--from",
      "2026-01-27",
      "--to",
      "2026-03-27",
      "--model-version",
      "2",
    );
    expect(out).toContain("ETH-24h@2 (requested), data cutoff 2025-12-28T00:00:00.000Z");
    expect(out).toMatch(/forecasts\s+60/);
    expect(out).toMatch(/recorded \(new\)\s+60/);
    expect(out).toMatch(/resolved\s+60/);
    expect(out).toContain("as of 2026-01-27T00:00:00.000Z .. 2026-03-27T00:00:00.000Z");
    const log = openSqlitePredictionLog(join(dir.path, "predictions.sqlite"));
    try {
      const { items } = await log.list("ETH-24h", { limit: 1000 });
      expect(items).toHaveLength(60);
      expect(items.every((r) => r.source === "backfill" && r.actual_price !== undefined)).toBe(true);
    } finally {
      log.close();
    }
    expect(
      await run("backfill", "ETH-24h", "--from", "2026-01-27", "--to", "2026-03-27", "--model-version", "2"),
    ).toMatch(/recorded \(new\)\s+0/);
  });

  it("says why it refuses a range inside a trained version's data", async () => {
    const args = [
      "backfill",
      "BTC-24h",
      "--from",
      "2025-10-01",
      "--to",
      "2025-12-01",
      "--model-version",
      "1",
    ];
    await expect(run(...args)).rejects.toThrow(
      /data_cutoff 2025-12-28T00:00:00.000Z.*ask for a range after it \[invalid_request\]/,
    );
  });

  it("shows each version's data cutoff in `versions` and `report`", async () => {
    expect(await run("versions", "BTC-24h")).toMatch(/data cutoff[\s\S]*2025-12-28T00:00:00\.000Z/);
    expect(await run("report", "BTC-24h", "1")).toContain("data cutoff: 2025-12-28T00:00:00.000Z");
  });
});

describe("edgeml backfill against a server (--url)", () => {
  let t: TestApp;
  let server: ServerType;
  let url = "";
  beforeAll(async () => {
    t = await testApp();
    const shipped = join(REPO_ROOT, "models/BTC-24h/1");
    const meta = VersionMetadataSchema.parse(
      JSON.parse(await readFile(join(shipped, "metadata.json"), "utf8")),
    );
    const { name: _n, version: _v, created_at: _c, sha256: _s, size_bytes: _b, platform: _p, ...rest } = meta;
    const { signature: _sig, producer: _pr, onnx: _o, ...input } = rest;
    await t.app.registry.register(
      "BTC-24h",
      new Uint8Array(await readFile(join(shipped, "model.onnx"))),
      input,
    );
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

  it("sends the request with the admin token and prints the server's summary", async () => {
    const out = await run(
      "--url",
      url,
      "--token",
      ADMIN_TOKEN,
      "backfill",
      "BTC-24h",
      "--from",
      "2026-03-01",
      "--to",
      "2026-03-10",
    );
    // How the registry chose the one version (best by metric, …) is the resolution's business, not the CLI's.
    expect(out).toContain(`, data cutoff 2025-12-28T00:00:00.000Z, in ${url}`);
    expect(out).toMatch(/^BTC-24h@1 \([a-z_]+\), data cutoff/);
    expect(out).toMatch(/forecasts\s+10/);
    expect(out).toMatch(/resolved\s+10/);
  });

  it("prints the API's error: a wrong token, an unknown model", async () => {
    await expect(
      run(
        "--url",
        url,
        "--token",
        "wrong-token-0123456789",
        "backfill",
        "BTC-24h",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
      ),
    ).rejects.toThrow(/admin token is wrong.*\[unauthorized\]/);
    await expect(
      run(
        "--url",
        url,
        "--token",
        ADMIN_TOKEN,
        "backfill",
        "nope",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
      ),
    ).rejects.toThrow(/no model named 'nope'.*model_not_found/);
  });
});
