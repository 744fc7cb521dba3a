import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { CRON_PATH, createTrainFunction } from "../../src/runtime/vercel/train.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import { testEngine } from "../support/app.js";
import { MARKET_DATA, tempDir } from "../support/paths.js";
import {
  backfillAsLive,
  clock,
  MODEL,
  registerConstantForecaster,
  rolloutServices,
  startRollout,
} from "./support.js";

/**
 * The daily cron (`GET /api/train`) decides the rollouts after resolving outcomes, even where it cannot train, and
 * its answer carries them. Live outcomes: a canary's two versions over the CSVs' out-of-sample range (backfilled
 * real data recorded as live forecasts).
 */
const SECRET = "cron-secret-rollouts-0123456789";

describe("the cron evaluates every model's rollout and rollback check after resolving outcomes", () => {
  it("ends a canary whose challenger is significantly worse on live outcomes, and answers with it", async () => {
    const dir = await tempDir("edgeml-rollout-cron-");
    try {
      const time = clock("2026-03-29T00:00:00.000Z");
      const { services, log } = await rolloutServices(dir.path, time.now);
      const bad = await registerConstantForecaster(services, 0.05);
      for (const version of ["3", bad]) {
        await services.backfill.run({ model: MODEL, version, from: "2025-12-29", to: "2026-03-27" });
        await backfillAsLive(log, version);
      }
      const models = join(dir.path, "models");
      const pointers = createJsonFilePointerStore(join(models, "pointers.json"));
      await startRollout(pointers, {
        id: "r-cron",
        challenger: bad,
        mode: "canary",
        weight: 0.5,
        started_at: "2025-12-28T00:00:00.000Z",
        min_outcomes: 30,
        max_duration_seconds: 400 * 86_400,
      });
      const app = createTrainFunction({
        deps: {
          artifacts: createFsArtifactStore(models),
          pointers,
          engine: testEngine(),
          market: createCsvMarketData({ dir: MARKET_DATA }),
          predictionLog: log,
          logger: silentLogger,
          now: time.now,
        },
        cronSecret: SECRET,
        // Training cannot run here: the decisions run all the same.
        trainingUnavailable: "no writable store",
      });
      const response = await app.request(CRON_PATH, { headers: { authorization: `Bearer ${SECRET}` } });
      expect(response.status).toBe(503);
      const { rollouts } = await response.json();
      expect(rollouts[MODEL].rollout).toMatchObject({
        action: "end",
        reason: "challenger_worse",
        evidence: { source: "live", pairing: "bar", pairs: 89 },
        written: { action: "rollout_end", rollout_id: "r-cron" },
      });
      expect(rollouts["ETH-24h"]).toMatchObject({ rollout: null, rollback: { action: "skip" } });
      expect((await pointers.get(MODEL)).rollout).toBeUndefined();
    } finally {
      await dir.cleanup();
    }
  }, 180_000);
});
