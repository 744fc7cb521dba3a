import { describe, expect, it } from "vitest";
import { createTrainingService, type Trainer } from "../../src/forecast/training.js";
import { silentLogger } from "../../src/logger.js";
import type { MarketDataSource } from "../../src/market/types.js";
import type { Registry } from "../../src/registry/registry.js";
import { createIpcJobStore, createIpcMutex } from "../../src/storage/node/ipc-adapters.js";
import { eventually } from "../storage/support/eventually.js";
import { ipcWire } from "../storage/support/ipc-wire.js";

/**
 * `npm start` with several workers runs one training job at a time on the whole server: the workers' training
 * services share a lock in their primary (src/storage/node/ipc-adapters.ts), and a job waits for it as `queued`.
 */
describe("training jobs on two workers sharing the primary's training lock", () => {
  it("a job started on the second worker stays queued while the first trains, then runs", async () => {
    const wire = ipcWire();
    const market: MarketDataSource = {
      name: "fixed",
      getBars: async () =>
        Array.from({ length: 5 }, (_, i) => ({
          time: i * 86_400_000,
          open: 1,
          high: 1,
          low: 1,
          close: 1,
          volume: 1,
        })),
    };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const trained: string[] = [];
    // Fits nothing: it records who trained, waits for the test on the first job, then fails the job (no registry needed).
    const trainer = (async (input: { symbol: string }) => {
      trained.push(input.symbol);
      if (trained.length === 1) await gate;
      throw new Error("no fit in this test");
    }) as unknown as Trainer;
    const worker = () => {
      const { client } = wire.worker();
      return createTrainingService({
        market,
        registry: {} as Registry,
        jobs: createIpcJobStore(client),
        trainer,
        defer: (work) => void work.catch(() => {}),
        logger: silentLogger,
        plan: { families: ["ridge"] },
        lock: createIpcMutex(client, "training"),
      });
    };
    const [one, two] = [worker(), worker()];

    const first = await one.start("BTC");
    await eventually(
      async () => (await two.status(first.request_id)).state === "running",
      "the first job runs",
    );
    const second = await two.start("ETH");
    await eventually(async () => wire.host.stats().waiting === 1, "the second job waits for the lock");
    expect((await one.status(second.request_id)).state).toBe("queued");
    expect(trained).toEqual(["BTC"]);

    release();
    await eventually(
      async () => (await one.status(second.request_id)).state === "failed",
      "the second job ran",
    );
    expect(trained).toEqual(["BTC", "ETH"]);
    expect((await two.status(first.request_id)).state).toBe("failed");
  });
});
