import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isEdgeMLError } from "../../src/errors.js";
import { trainSymbol, UntilSchema } from "../../src/forecast/training.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { ADMIN_TOKEN, type TestApp, testApp } from "../support/app.js";
import { MARKET_DATA } from "../support/paths.js";

/**
 * Training up to a date: the bars closing after `until` are never read, and every version records its data cutoff
 * (the close of the last bar it read), which backfill keeps out of its replays.
 */
const market = createCsvMarketData({ dir: MARKET_DATA });

describe("UntilSchema: what `until` accepts", () => {
  it.each([
    ["a date is that whole UTC day", "2025-12-27", "2025-12-28T00:00:00.000Z"],
    ["a UTC date-time is that instant", "2025-12-27T12:00:00Z", "2025-12-27T12:00:00.000Z"],
    ["an offset is honoured", "2025-12-27T12:00:00+02:00", "2025-12-27T10:00:00.000Z"],
  ])("%s", (_, input, expected) => {
    expect(UntilSchema.parse(input).toISOString()).toBe(expected);
  });

  it.each([["yesterday"], ["2025-13-01"], ["2025-02-30"], ["27/12/2025"], [""]])("refuses %j", (input) => {
    expect(UntilSchema.safeParse(input).success).toBe(false);
  });
});

describe("trainSymbol with until", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp({}, undefined, { trainingPlan: { families: ["ridge"] } });
  });
  afterAll(() => t.cleanup());

  const train = (until?: Date) =>
    trainSymbol({
      symbol: "BTC",
      trainer: trainForecaster,
      market,
      registry: t.app.registry,
      plan: { families: ["ridge"] },
      until,
    });

  it("reads no bar closing after until, and records the close of the last bar read as data_cutoff", async () => {
    const [trained] = await train(UntilSchema.parse("2025-12-27"));
    expect(trained?.report.data.last).toBe("2025-12-27T00:00:00.000Z");
    expect(trained?.report.splits.test.last).toBe("2025-12-26T00:00:00.000Z");
    const meta = await t.app.registry.metadata("BTC-24h", trained?.version ?? "");
    expect(meta.data_cutoff).toBe("2025-12-28T00:00:00.000Z");
  });

  it("without until, the cutoff is the close of the source's last bar", async () => {
    const [trained] = await train();
    const meta = await t.app.registry.metadata("BTC-24h", trained?.version ?? "");
    expect(meta.data_cutoff).toBe("2026-03-28T00:00:00.000Z");
  });

  it.each([
    [
      "before the first bar closes",
      "2014-01-01",
      /no BTC 1d bar of csv closes by until .*pass a later until/,
    ],
    [
      "past the data",
      "2026-06-01",
      /past the BTC 1d data of csv, whose last bar closes at 2026-03-28T00:00:00.000Z/,
    ],
    [
      "too early for three splits",
      "2014-12-31",
      /too few for train, validation and test splits; pass a later until/,
    ],
  ])("an until %s is invalid_request (400) with what to do", async (_, until, message) => {
    const error = await train(UntilSchema.parse(until)).catch((e: unknown) => e);
    expect(isEdgeMLError(error) && error.status).toBe(400);
    expect(String(error)).toMatch(message);
  });

  describe("POST /api/ml/train {model_id, until}", () => {
    const post = (body: unknown) =>
      t.request("/api/ml/train", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify(body),
      });

    it.each([
      ["a malformed until", { model_id: "ETH", until: "end of 2025" }, /until/],
      ["an until before the data", { model_id: "ETH", until: "2016-01-01" }, /no ETH 1d bar/],
      ["an until past the data", { model_id: "ETH", until: "2026-10-01" }, /past the ETH 1d data/],
    ])("400 for %s, before any job is queued", async (_, body, message) => {
      const res = await post(body);
      expect(res.status).toBe(400);
      const error = await res.json();
      expect(error.code).toBe("invalid_request");
      expect(JSON.stringify(error)).toMatch(message);
    });

    it("trains on the bars closed by until, and the version says so", async () => {
      const res = await post({ model_id: "ETH", until: "2025-12-27" });
      expect(res.status).toBe(202);
      const { request_id } = await res.json();
      let job: { state: string; result?: { versions: { name: string; version: string }[] } };
      do {
        job = await (await t.admin(`/api/ml/train/status?request_id=${request_id}`)).json();
        // Polling the job store, which the run writes: no timer decides the outcome.
        await new Promise((r) => setImmediate(r));
      } while (job.state === "queued" || job.state === "running");
      expect(job.state).toBe("succeeded");
      const [version] = job.result?.versions ?? [];
      const meta = await t.app.registry.metadata("ETH-24h", version?.version ?? "");
      expect(meta.data_cutoff).toBe("2025-12-28T00:00:00.000Z");
    });
  });
});
