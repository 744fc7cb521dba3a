import { cp } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppDeps } from "../../src/app.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { CRON_PATH, createTrainFunction, isCronAuthorized } from "../../src/runtime/vercel/train.js";
import { StoreError } from "../../src/storage/errors.js";
import { createMemoryJobStore } from "../../src/storage/jobs.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { testEngine } from "../support/app.js";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

const SECRET = "cron-secret-0123456789abcdef";
const ADMIN_TOKEN = "cron-suite-admin-token-0123";

/** A Vercel cron call: GET, Vercel's user agent, and the bearer token when given. */
const cron = (authorization?: string): RequestInit => ({
  method: "GET",
  headers: { "user-agent": "vercel-cron/1.0", ...(authorization !== undefined && { authorization }) },
});

describe("the training function: Vercel cron at GET /api/train", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let deps: AppDeps;
  beforeAll(async () => {
    dir = await tempDir("edgeml-cron-");
    deps = {
      artifacts: createFsArtifactStore(join(dir.path, "models")),
      pointers: createJsonFilePointerStore(join(dir.path, "pointers.json")),
      engine: testEngine(),
      market: createCsvMarketData({ dir: MARKET_DATA }),
      jobs: createMemoryJobStore(),
      config: { adminToken: ADMIN_TOKEN },
      logger: silentLogger,
    };
  });
  afterAll(() => dir.cleanup());

  it.each([
    ["without a token", undefined],
    ["with a wrong token", `Bearer ${SECRET}x`],
    ["with the secret but not as a bearer token", SECRET],
    ["with an empty bearer", "Bearer "],
  ])("answers 401 %s, and trains nothing", async (_, authorization) => {
    const app = createTrainFunction({ deps, cronSecret: SECRET });
    const response = await app.request(CRON_PATH, cron(authorization));
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="edgeml cron"');
    expect(await response.json()).toEqual({
      error: "edgeml: the cron endpoint needs `Authorization: Bearer $CRON_SECRET`",
      code: "unauthorized",
    });
    expect(await deps.artifacts.listModels()).toEqual([]);
  });

  it("answers 401 to every call when CRON_SECRET is not set, whatever the token", async () => {
    for (const secret of [undefined, ""]) {
      const app = createTrainFunction({ deps, cronSecret: secret });
      for (const authorization of [undefined, "Bearer ", "Bearer undefined"]) {
        const response = await app.request(CRON_PATH, cron(authorization));
        expect(response.status).toBe(401);
        expect((await response.json()).error).toMatch(/disabled: set CRON_SECRET/);
      }
    }
  });

  it.each([
    ["shorter than 16 characters", "short-secret", /CRON_SECRET must be at least 16 characters/],
    ["with a trailing newline", `${SECRET}\n`, /CRON_SECRET must be printable ASCII without spaces/],
    ["with a space", "cron secret 0123456789", /CRON_SECRET must be printable ASCII without spaces/],
  ])("refuses to start with a CRON_SECRET %s, naming the reason", (_, secret, reason) => {
    expect(() => createTrainFunction({ deps, cronSecret: secret })).toThrow(reason);
  });

  it("compares the token in constant time (hono's timingSafeEqual), exactly", async () => {
    expect(await isCronAuthorized(`Bearer ${SECRET}`, SECRET)).toBe(true);
    expect(await isCronAuthorized(`bearer ${SECRET}`, SECRET)).toBe(false);
    expect(await isCronAuthorized(`Bearer ${SECRET} `, SECRET)).toBe(false);
    expect(await isCronAuthorized(undefined, SECRET)).toBe(false);
    expect(await isCronAuthorized("Bearer ", "")).toBe(false);
  });

  it("answers 503 with the reason when this deployment cannot store what it trains", async () => {
    const app = createTrainFunction({ deps, cronSecret: SECRET, trainingUnavailable: "no writable store" });
    const response = await app.request(CRON_PATH, cron(`Bearer ${SECRET}`));
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      error: "edgeml: no writable store",
      code: "not_ready",
      // The registry is empty: no model has forecasts to resolve, nor a rollout to decide.
      outcomes: {},
      rollouts: {},
    });
  });

  it("resolves every due forecast first, against the market, even where it cannot train", async () => {
    const shipped = await tempDir("edgeml-cron-shipped-");
    try {
      await cp(join(REPO_ROOT, "models"), join(shipped.path, "models"), { recursive: true });
      const log = createMemoryPredictionLog();
      const entry = (asOf: string, target: string) => ({
        prediction_id: `p-${asOf}`,
        model: "BTC-24h",
        version: "1",
        symbol: "BTC",
        horizon: "24h",
        as_of: asOf,
        target_time: target,
        last_close: 65_000,
        predicted_price: 66_000,
        predicted_log_return: Math.log(66_000 / 65_000),
        served_at: asOf,
        chosen_via: "champion",
        source: "live" as const,
      });
      // Due and in the CSV; due but past the CSV's last row (2026-03-27); not due.
      await log.record([
        entry("2026-03-01T00:00:00.000Z", "2026-03-02T00:00:00.000Z"),
        entry("2026-03-28T00:00:00.000Z", "2026-03-29T00:00:00.000Z"),
        entry("2099-01-01T00:00:00.000Z", "2099-01-02T00:00:00.000Z"),
      ]);
      const app = createTrainFunction({
        deps: {
          ...deps,
          artifacts: createFsArtifactStore(join(shipped.path, "models")),
          pointers: createJsonFilePointerStore(join(shipped.path, "pointers.json")),
          predictionLog: log,
        },
        cronSecret: SECRET,
        trainingUnavailable: "no writable store",
      });
      const response = await app.request(CRON_PATH, cron(`Bearer ${SECRET}`));
      expect(response.status).toBe(503);
      const { outcomes } = await response.json();
      expect(outcomes["BTC-24h"]).toMatchObject({ resolved: 1, pending: 1 });
      expect(outcomes["ETH-24h"]).toMatchObject({ resolved: 0, pending: 0 });
      const [resolved] = await log.get("BTC-24h", "p-2026-03-01T00:00:00.000Z");
      const bars = await createCsvMarketData({ dir: MARKET_DATA }).getBars("BTC", "1d");
      const bar = bars.find((b) => b.time === Date.parse("2026-03-01T00:00:00.000Z"));
      expect(resolved?.actual_price).toBe(bar?.close);
      expect((await log.list("BTC-24h", { resolved: false })).items).toHaveLength(2);
    } finally {
      await shipped.cleanup();
    }
  });

  it("answers 503 store_unavailable and trains nothing when the job store cannot record the run", async () => {
    const down = createMemoryJobStore();
    down.put = async () => {
      throw new StoreError(
        "Upstash Redis",
        "unavailable",
        "training job state is unavailable (Upstash answered 500); try again shortly",
      );
    };
    const app = createTrainFunction({ deps: { ...deps, jobs: down }, cronSecret: SECRET });
    const response = await app.request(CRON_PATH, cron(`Bearer ${SECRET}`));
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: "store_unavailable", jobs: [] });
    expect(await deps.artifacts.listModels()).toEqual([]);
  });

  it("with the right token, retrains BTC and ETH, registers the versions and records the jobs", async () => {
    const app = createTrainFunction({ deps, cronSecret: SECRET });
    const response = await app.request(CRON_PATH, cron(`Bearer ${SECRET}`));
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.jobs.map((j: { model_id: string; state: string }) => [j.model_id, j.state])).toEqual([
      ["BTC", "succeeded"],
      ["ETH", "succeeded"],
    ]);
    expect((await deps.artifacts.listModels()).sort()).toEqual(["BTC-24h", "ETH-24h"]);
    // gbdt, ridge and the naive baseline (registered once per model); the selection policy then chose what serves.
    expect((await deps.artifacts.listVersions("BTC-24h")).sort()).toEqual(["1", "2", "3"]);
    expect(body.serving).toEqual([
      { model: "BTC-24h", version: expect.any(String), via: "champion", automatic: true },
      { model: "ETH-24h", version: expect.any(String), via: "champion", automatic: true },
    ]);
    expect(body.jobs[0].result.selection).toMatchObject({
      changed: true,
      champion: body.serving[0].version,
      evidence: { alpha: 0.05, folds: expect.any(Number) },
    });

    // The jobs are the app's training jobs: the status route (routed to this function by vercel.json) reports them.
    const status = await app.request(`/api/ml/train/status?request_id=${body.jobs[0].request_id}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ model_id: "BTC", state: "succeeded" });
  });

  it("serves the training routes on Node, so POST /api/ml/train trains here rather than on the edge", async () => {
    const app = createTrainFunction({ deps, cronSecret: SECRET });
    const response = await app.request("/api/ml/train", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ model_id: "ETH" }),
    });
    expect(response.status).toBeLessThan(300);
    const { request_id } = await response.json();
    let state = "queued";
    for (let i = 0; i < 200 && (state === "queued" || state === "running"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const status = await app.request(`/api/ml/train/status?request_id=${request_id}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      state = (await status.json()).state;
    }
    expect(state).toBe("succeeded");
  });

  it("serves only training: every other route is the edge function's, and answers 404 here", async () => {
    const app = createTrainFunction({ deps, cronSecret: SECRET });
    for (const path of ["/v2/health/live", "/api/ml/models", "/openapi.json"]) {
      const response = await app.request(path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(response.status).toBe(404);
      expect((await response.json()).code).toBe("not_found");
    }
  });
});
