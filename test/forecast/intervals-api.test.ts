import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeFeatures, featureMatrix } from "../../src/features/index.js";
import { forecastInterval, INTERVAL_LEVELS, intervalScale } from "../../src/forecast/interval.js";
import { createCsvMarketData } from "../../src/market/node/csv.js";
import { type VersionMetadata, VersionMetadataSchema } from "../../src/registry/metadata.js";
import { configFromEnv } from "../../src/runtime/env.js";
import { appOverFiles, upload } from "../support/app.js";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/**
 * Prediction intervals through the HTTP API, on the shipped models (a copy of models/, pointers included) and the
 * shipped CSVs: coverage out of sample, served == evaluated bit for bit, and the request's interval_level.
 */

const DAY = 86_400_000;
const SYMBOLS = ["BTC", "ETH"] as const;
type Served = {
  model_version: string;
  family: string | null;
  as_of: string;
  target_time: string;
  last_close: number;
  predicted_log_return: number;
  predicted_price: number;
  cached: boolean;
  interval: { level: number; lower: number; upper: number } | null;
};

const metadataOf = async (name: string, version: string): Promise<VersionMetadata> =>
  VersionMetadataSchema.parse(
    JSON.parse(await readFile(join(REPO_ROOT, "models", name, version, "metadata.json"), "utf8")),
  );

/** Daily closes by bar open date (YYYY-MM-DD), read from the CSV here, independently of the market adapter. */
async function closesOf(symbol: string): Promise<Map<string, number>> {
  const text = await readFile(join(MARKET_DATA, `${symbol}-USD_1d.csv`), "utf8");
  const lines = text.trim().split("\n").slice(1);
  return new Map(lines.map((line) => line.split(",")).map((c) => [c[0] as string, Number(c[4])]));
}

describe("forecast intervals over the HTTP API (shipped models, shipped CSVs)", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let api: ReturnType<typeof appOverFiles>;
  const trained: Record<string, string[]> = {};

  const serve = async (body: Record<string, unknown>) => {
    const res = await api.request("/api/ml/serve", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ horizon: "24h", ...body }),
    });
    return { res, body: (await res.json()) as Served & { code?: string; error?: string } };
  };
  const pin = async (symbol: string, version: string | null) => {
    const res = await api.adminPost(`/api/ml/models/${symbol}-24h/pin`, { version });
    expect(res.status).toBe(200);
  };

  beforeAll(async () => {
    dir = await tempDir();
    await cp(join(REPO_ROOT, "models"), join(dir.path, "models"), { recursive: true });
    api = appOverFiles({
      modelsDir: join(dir.path, "models"),
      pointersFile: join(dir.path, "models", "pointers.json"),
    });
    for (const symbol of SYMBOLS) {
      const versions = await api.registry.versions(`${symbol}-24h`);
      trained[symbol] = versions.filter((v) => v.tags.family !== "naive").map((v) => v.version);
      expect(trained[symbol]?.length).toBeGreaterThanOrEqual(2);
    }
  });
  afterAll(async () => {
    await dir?.cleanup();
  });

  describe("coverage over the last 90 days of the CSVs, one as_of at a time (out of sample: data_cutoff 2025-12-28)", () => {
    it.each(SYMBOLS)(
      "%s: the served 0.8 interval holds the realised close 0.8 ± 0.1 of the time, for the default version and every trained one",
      async (symbol) => {
        const closes = await closesOf(symbol);
        const last = [...closes.keys()].at(-1) as string;
        // The 90 forecasts whose targets are the CSV's last 90 closes: as of each of the last 90 bars' opens.
        const asOfs = Array.from({ length: 90 }, (_, k) =>
          new Date(Date.parse(`${last}T00:00:00Z`) - (89 - k) * DAY).toISOString().slice(0, 10),
        );
        // Every forecast is made after every version's data cutoff: out of sample for all of them.
        for (const version of trained[symbol] as string[]) {
          const cutoff = (await metadataOf(`${symbol}-24h`, version)).data_cutoff ?? "";
          expect(Date.parse(`${asOfs[0]}T00:00:00Z`)).toBeGreaterThanOrEqual(Date.parse(cutoff));
        }
        const coverage: Record<string, number> = {};
        for (const version of [null, ...(trained[symbol] as string[])]) {
          await pin(symbol, version);
          let inside = 0;
          for (const asOf of asOfs) {
            const { res, body } = await serve({ symbol, as_of: asOf });
            expect(res.status).toBe(200);
            if (version) expect(body.model_version).toBe(version);
            expect(body.interval?.level).toBe(0.8);
            // Realised close = the CSV close at target_time: the bar that opens at as_of closes then.
            expect(body.target_time).toBe(new Date(Date.parse(`${asOf}T00:00:00Z`) + DAY).toISOString());
            const actual = closes.get(asOf) as number;
            const { lower, upper } = body.interval as { lower: number; upper: number };
            expect(lower).toBeLessThan(body.predicted_price);
            expect(upper).toBeGreaterThan(body.predicted_price);
            if (actual >= lower && actual <= upper) inside++;
          }
          coverage[version ?? "default"] = inside / asOfs.length;
        }
        await pin(symbol, null);
        for (const value of Object.values(coverage)) {
          expect(value).toBeGreaterThanOrEqual(0.7);
          expect(value).toBeLessThanOrEqual(0.9);
        }
        expect(Object.keys(coverage)).toHaveLength(1 + (trained[symbol] as string[]).length);
      },
      120_000,
    );
  });

  describe("served == evaluated", () => {
    it.each(SYMBOLS)(
      "%s: every trained version's golden rows, requested as_of their bars, serve the same bits and the interval of the stored q",
      async (symbol) => {
        const bars = await createCsvMarketData({ dir: MARKET_DATA }).getBars(symbol, "1d");
        const matrix = featureMatrix(bars, 1);
        const rowOf = new Map(matrix.X.map((x, r) => [Array.from(x).join(","), r]));
        for (const version of trained[symbol] as string[]) {
          const meta = await metadataOf(`${symbol}-24h`, version);
          const golden = meta.golden?.cases[0];
          const inputs = golden?.inputs[0]?.data as number[];
          const outputs = golden?.outputs[0]?.data as number[];
          const width = meta.feature_names?.length ?? 0;
          expect(outputs.length).toBe(8);
          await pin(symbol, version);
          for (let i = 0; i < outputs.length; i++) {
            const row = inputs.slice(i * width, (i + 1) * width);
            const r = rowOf.get(row.join(","));
            expect(
              r,
              `golden row ${i} of ${symbol}-24h@${version} is a feature row of the CSV`,
            ).toBeDefined();
            const asOf = new Date((matrix.times[r as number] as number) + DAY).toISOString();
            const { res, body } = await serve({ symbol, as_of: asOf });
            expect(res.status).toBe(200);
            expect(body.model_version).toBe(version);
            expect(body.as_of).toBe(asOf);
            const expected = outputs[i] as number;
            expect(Object.is(body.predicted_log_return, expected)).toBe(true);
            const close = matrix.closes[r as number] as number;
            expect(Object.is(body.last_close, close)).toBe(true);
            expect(Object.is(body.predicted_price, close * Math.exp(expected))).toBe(true);
            // The interval module on the row the model was evaluated on, with the quantile the version stores.
            const interval = forecastInterval(meta.calibration, 0.8, close, expected, intervalScale(row, 1));
            expect(interval).not.toBeNull();
            expect(Object.is(body.interval?.lower, interval?.lower)).toBe(true);
            expect(Object.is(body.interval?.upper, interval?.upper)).toBe(true);
          }
        }
        await pin(symbol, null);
      },
      60_000,
    );
  });

  describe("interval_level", () => {
    it.each([0.7, 0, 1, 1.5, "0.8", null])("%s is 400 naming the calibrated levels", async (level) => {
      const { res, body } = await serve({ symbol: "BTC", as_of: "2026-03-20", interval_level: level });
      expect(res.status).toBe(400);
      expect(body.code).toBe("invalid_request");
      expect(body.error).toContain("interval_level: must be");
      expect(body.error).toContain("0.5, 0.8, 0.9, 0.95");
    });

    it("a batch with a level no calibration stores is 400, the whole request", async () => {
      const res = await api.request("/api/ml/batch", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ symbols: ["BTC", "ETH"], as_of: "2026-03-20", interval_level: 0.75 }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toContain("0.5, 0.8, 0.9, 0.95");
    });

    it.each(INTERVAL_LEVELS)(
      "%s: served at that level, nested in the wider levels, on a cached forecast too",
      async (level) => {
        const first = await serve({ symbol: "ETH", as_of: "2026-02-14", interval_level: level });
        expect(first.res.status).toBe(200);
        expect(first.body.interval?.level).toBe(level);
        const again = await serve({ symbol: "ETH", as_of: "2026-02-14", interval_level: level });
        expect(again.res.headers.get("x-cache")).toBe("HIT");
        expect(again.body.cached).toBe(true);
        expect(again.body.interval).toEqual(first.body.interval);
      },
    );

    it("one cached forecast answers every level: the interval is computed from it when served", async () => {
      const at = { symbol: "BTC", as_of: "2025-11-10" };
      const answers = [];
      for (const level of INTERVAL_LEVELS) answers.push(await serve({ ...at, interval_level: level }));
      expect(answers[0]?.res.headers.get("x-cache")).toBe("MISS");
      for (const answer of answers.slice(1)) expect(answer.res.headers.get("x-cache")).toBe("HIT");
      const meta = await api.registry.resolve("BTC-24h");
      const bars = await createCsvMarketData({ dir: MARKET_DATA }).getBars("BTC", "1d", {
        end: new Date("2025-11-10T00:00:00Z"),
      });
      // The σ of the very vector the model ran on: the as-of bar's features.
      const scale = intervalScale(computeFeatures(bars, bars.length - 1), 1);
      for (const [k, answer] of answers.entries()) {
        const level = INTERVAL_LEVELS[k] as (typeof INTERVAL_LEVELS)[number];
        expect(answer.body.interval).toEqual(
          forecastInterval(
            meta.meta.calibration,
            level,
            answer.body.last_close,
            answer.body.predicted_log_return,
            scale,
          ),
        );
      }
      // Nested: every wider level contains the narrower ones.
      for (let k = 1; k < answers.length; k++) {
        const inner = answers[k - 1]?.body.interval as { lower: number; upper: number };
        const outer = answers[k]?.body.interval as { lower: number; upper: number };
        expect(outer.lower).toBeLessThan(inner.lower);
        expect(outer.upper).toBeGreaterThan(inner.upper);
      }
    });

    it("batch items carry the interval at the requested level", async () => {
      const res = await api.request("/api/ml/batch", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ symbols: ["BTC", "ETH"], as_of: "2026-03-20", interval_level: 0.9 }),
      });
      expect(res.status).toBe(200);
      const { results } = (await res.json()) as { results: { ok: boolean; forecast: Served }[] };
      expect(results).toHaveLength(2);
      for (const item of results) {
        expect(item.ok).toBe(true);
        expect(item.forecast.interval?.level).toBe(0.9);
        expect(item.forecast.interval?.lower).toBeLessThan(item.forecast.predicted_price);
        expect(item.forecast.interval?.upper).toBeGreaterThan(item.forecast.predicted_price);
      }
    });

    it("FORECAST_INTERVAL_LEVEL sets the level of requests that name none; a level no calibration stores fails at start", async () => {
      const wide = appOverFiles(
        { modelsDir: join(dir.path, "models"), pointersFile: join(dir.path, "models", "pointers.json") },
        { config: configFromEnv({ FORECAST_INTERVAL_LEVEL: "0.95" }) },
      );
      const res = await wide.request("/api/ml/serve", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ symbol: "BTC", as_of: "2026-03-20" }),
      });
      expect(((await res.json()) as Served).interval?.level).toBe(0.95);
      expect(() => configFromEnv({ FORECAST_INTERVAL_LEVEL: "0.85" })).toThrow(
        /FORECAST_INTERVAL_LEVEL: must be one of the calibrated levels 0.5, 0.8, 0.9, 0.95/,
      );
    });
  });

  describe("versions and calibration", () => {
    const registrationOf = (meta: VersionMetadata) => {
      const {
        description,
        tags,
        metrics,
        feature_set,
        feature_names,
        forecast,
        golden,
        data_cutoff,
        report,
      } = meta;
      return {
        description,
        tags,
        metrics,
        feature_set,
        feature_names,
        forecast,
        golden,
        data_cutoff,
        report,
      };
    };

    it("the same bytes with the same calibration are a duplicate; without calibration they are a new version, whose forecasts carry interval null", async () => {
      const meta = await metadataOf("BTC-24h", "1");
      const bytes = await readFile(join(REPO_ROOT, "models", "BTC-24h", "1", "model.onnx"));
      const same = await upload(api, "BTC-24h", bytes, {
        ...registrationOf(meta),
        calibration: meta.calibration,
      });
      expect(same.status).toBe(200);
      expect(same.headers.get("x-duplicate-of")).toBe("1");

      const uncalibrated = await upload(api, "BTC-24h", bytes, registrationOf(meta));
      expect(uncalibrated.status).toBe(201);
      const { version } = (await uncalibrated.json()) as { version: string };
      expect(version).not.toBe("1");
      await pin("BTC", version);
      const { res, body } = await serve({ symbol: "BTC", as_of: "2026-03-20" });
      expect(res.status).toBe(200);
      expect(body.model_version).toBe(version);
      expect(body.interval).toBeNull();
      await pin("BTC", "1");
      const withInterval = await serve({ symbol: "BTC", as_of: "2026-03-20" });
      // Same bytes, same features: the same point forecast, now with the interval its calibration gives.
      expect(withInterval.body.predicted_log_return).toBe(body.predicted_log_return);
      expect(withInterval.body.interval).not.toBeNull();
      await pin("BTC", null);
    });
  });
});
