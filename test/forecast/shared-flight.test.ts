import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.js";
import { silentLogger } from "../../src/logger.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { createMemoryCache } from "../../src/storage/memory-cache.js";
import { createMemoryPredictionLog } from "../../src/storage/memory-prediction-log.js";
import { createFsArtifactStore } from "../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../src/storage/node/json-file-pointers.js";
import type { SingleFlight } from "../../src/storage/single-flight.js";
import { testEngine } from "../support/app.js";
import { DATA_AS_OF, MARKET_DATA, REPO_ROOT } from "../support/paths.js";

/**
 * Two workers of one `npm start` share the prediction cache and the single flight (through their primary), not the
 * moment they read them: a worker can miss the cache just before another's flight of the same bar ends, and claim
 * the flight just after. The flight it then leads must answer with that landed forecast, not compute a second one
 * (a second prediction_id for the bar, a second log record).
 */
describe("forecasts sharing a cache and a single flight across workers", () => {
  it("a flight claimed after another worker's flight of the same bar ended answers that forecast: one record", async () => {
    const cache = createMemoryCache();
    const predictionLog = createMemoryPredictionLog();
    const deferred: Promise<unknown>[] = [];
    const worker = (flights?: SingleFlight) =>
      createApp({
        artifacts: createFsArtifactStore(join(REPO_ROOT, "models")),
        pointers: createJsonFilePointerStore(join(REPO_ROOT, "models", "pointers.json")),
        engine: testEngine(),
        market: createCsvMarketData({ dir: MARKET_DATA }),
        cache,
        predictionLog,
        flights,
        waitUntil: (work) => deferred.push(work),
        logger: silentLogger,
      });
    const serve = (app: ReturnType<typeof worker>) =>
      app.forecaster.forecast("BTC", "24h", { asOf: DATA_AS_OF }).then((r) => r.forecast.prediction_id);

    const first = worker();
    let firstId: string | undefined;
    // The second worker missed the cache already; the first worker's flight runs and ends before this claim is
    // granted, and the claim then leads a flight of its own (the primary has none in progress any more).
    const second = worker({
      kind: "test",
      async run(_key, work) {
        firstId = await serve(first);
        await Promise.all(deferred);
        return work();
      },
    });

    const secondId = await serve(second);
    await Promise.all(deferred);
    expect(secondId).toBe(firstId);
    const page = await predictionLog.list("BTC-24h", { limit: 10 });
    expect(page.items.map((r) => r.prediction_id)).toEqual([firstId]);
  }, 60_000);
});
