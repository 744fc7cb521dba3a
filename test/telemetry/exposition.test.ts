import { describe, expect, it } from "vitest";
import type { PerformanceSummary } from "../../src/performance/service.js";
import { liveGauges, serialize, storedFamilies } from "../../src/telemetry/exposition.js";
import { parseSeries } from "../../src/telemetry/series.js";
import { family, histograms, parseExposition, sampleValue } from "../support/prometheus.js";

describe("serialize(families)", () => {
  it("writes HELP and TYPE once per family, escapes label values and help text, ends with a newline", () => {
    const text = serialize([
      {
        name: "edgeml_x_total",
        type: "counter",
        help: "a\\b\nc",
        samples: [{ labels: { route: 'a"b\\c\nd' }, value: 3 }],
      },
      { name: "edgeml_empty", type: "gauge", help: "no samples: left out", samples: [] },
    ]);
    expect(text).toBe(
      '# HELP edgeml_x_total a\\\\b\\nc\n# TYPE edgeml_x_total counter\nedgeml_x_total{route="a\\"b\\\\c\\nd"} 3\n',
    );
    const parsed = parseExposition(text);
    expect(family(parsed, "edgeml_x_total")?.metrics[0]?.labels?.route).toBe('a"b\\c\nd');
  });
});

describe("storedFamilies(series)", () => {
  const series = Object.entries({
    "edgeml_serve_duration_seconds_bucket|le=0.001|model=m|version=1": 2,
    "edgeml_serve_duration_seconds_bucket|le=%2BInf|model=m|version=1": 1,
    "edgeml_serve_duration_seconds_sum_us|model=m|version=1": 31_000_000,
    "edgeml_serve_failed_duration_us|model=m|version=1": 1_500_000,
    "edgeml_last_inference_ms|model=m|version=1": 1_700_000_000_000,
  }).map(([k, v]) => parseSeries(k, v) as NonNullable<ReturnType<typeof parseSeries>>);

  it("histograms in base units: cumulative buckets, _sum in seconds, _count equal to +Inf", () => {
    const parsed = parseExposition(serialize(storedFamilies(series)));
    const [h] = histograms(parsed, "edgeml_serve_duration_seconds");
    expect(h?.labels).toEqual({ model: "m", version: "1" });
    expect(h?.buckets.find((b) => b.le === 0.001)?.count).toBe(2);
    expect(h?.buckets.find((b) => b.le === 30)?.count).toBe(2);
    expect(h?.buckets.at(-1)).toEqual({ le: Number.POSITIVE_INFINITY, count: 3 });
    expect(h?.count).toBe(3);
    expect(h?.sum).toBe(31);
  });

  it("microsecond and millisecond series come out in seconds", () => {
    const parsed = parseExposition(serialize(storedFamilies(series)));
    expect(sampleValue(parsed, "edgeml_serve_failed_duration_seconds_total", { model: "m" })).toBe(1.5);
    expect(sampleValue(parsed, "edgeml_last_inference_timestamp_seconds", { model: "m" })).toBe(
      1_700_000_000,
    );
  });

  it("a key this code did not write is not a series", () => {
    expect(parseSeries("usage:m@1:rows", 3)).toBeUndefined();
    expect(parseSeries("edgeml_x|route=%E0%A4%A", 3)).toBeUndefined();
  });
});

describe("liveGauges(models, summary)", () => {
  const figures = (skill: number | null, mape: number | null, resolved: number) => ({
    skill,
    mape,
    naive_mape: mape === null ? null : mape * 2,
    resolved,
  });
  const summary = (model: string) =>
    model === "broken"
      ? Promise.reject(new Error("log down"))
      : Promise.resolve({
          versions: [
            {
              version: "3",
              windows: {
                "7d": figures(null, null, 0),
                "30d": figures(0.5, 2, 10),
                all: figures(0.25, 3, 40),
              },
            },
          ],
        } as unknown as PerformanceSummary);

  it("skill, MAPE as a ratio and resolved count per version and window; no sample for a figure without data", async () => {
    const warnings: string[] = [];
    const families = await liveGauges(["BTC-24h", "broken"], summary, (m) => warnings.push(m));
    const parsed = parseExposition(serialize(families));
    const at = (window: string) => ({ model: "BTC-24h", version: "3", window });
    expect(sampleValue(parsed, "edgeml_live_skill", at("30d"))).toBe(0.5);
    expect(sampleValue(parsed, "edgeml_live_mape_ratio", at("30d"))).toBe(0.02);
    expect(sampleValue(parsed, "edgeml_live_naive_mape_ratio", at("all"))).toBe(0.06);
    expect(sampleValue(parsed, "edgeml_live_resolved_predictions", at("7d"))).toBe(0);
    expect(family(parsed, "edgeml_live_skill")?.metrics.some((m) => m.labels?.window === "7d")).toBe(false);
    expect(warnings).toEqual(["live performance gauges of broken left out"]);
  });
});
