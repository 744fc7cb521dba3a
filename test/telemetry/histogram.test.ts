import { describe, expect, it } from "vitest";
import {
  bucketOf,
  cumulative,
  type HistogramCounts,
  LATENCY_BUCKETS_SECONDS,
  percentilesMs,
  quantile,
} from "../../src/telemetry/histogram.js";

const of = (buckets: Record<string, number>): HistogramCounts => ({
  buckets,
  count: Object.values(buckets).reduce((a, b) => a + b, 0),
  sumSeconds: 0,
});

describe("bucketOf(seconds)", () => {
  it.each([
    [0, "0.0001"],
    [0.0001, "0.0001"],
    [0.00011, "0.00025"],
    [0.3, "0.5"],
    [30, "30"],
    [31, "+Inf"],
  ])("%s s falls in le=%s (the smallest bound at or above it)", (seconds, le) => {
    expect(bucketOf(seconds)).toBe(le);
  });
});

describe("cumulative(h)", () => {
  it("counts every observation at or below each bound, +Inf last and equal to the count", () => {
    const c = cumulative(of({ "0.001": 2, "0.01": 3, "+Inf": 1 }));
    expect(c).toHaveLength(LATENCY_BUCKETS_SECONDS.length + 1);
    expect(c.find((b) => b.le === "0.0005")?.count).toBe(0);
    expect(c.find((b) => b.le === "0.001")?.count).toBe(2);
    expect(c.find((b) => b.le === "0.005")?.count).toBe(2);
    expect(c.find((b) => b.le === "0.01")?.count).toBe(5);
    expect(c.at(-1)).toEqual({ le: "+Inf", count: 6 });
  });
});

describe("quantile(h, q): Prometheus' histogram_quantile", () => {
  it("interpolates linearly inside the bucket holding rank q·count", () => {
    // 10 observations in (0.001, 0.0025]: the median sits halfway through that bucket.
    expect(quantile(of({ "0.0025": 10 }), 0.5)).toBeCloseTo(0.00175, 10);
    // 4 in the first bucket (from 0), 4 in (0.005, 0.01]: rank 6 is half-way through the second.
    expect(quantile(of({ "0.0001": 4, "0.01": 4 }), 0.75)).toBeCloseTo(0.0075, 10);
    expect(quantile(of({ "0.0001": 4 }), 0.5)).toBeCloseTo(0.00005, 10);
  });

  it("a rank in the +Inf bucket answers the highest finite bound", () => {
    expect(quantile(of({ "0.001": 1, "+Inf": 9 }), 0.99)).toBe(30);
  });

  it("no observation: NaN, and percentilesMs says null", () => {
    expect(quantile(of({}), 0.5)).toBeNaN();
    expect(percentilesMs(of({}))).toBeNull();
  });

  it("percentilesMs gives p50/p90/p99 in milliseconds with the count", () => {
    expect(percentilesMs(of({ "0.0025": 10 }))).toEqual({ count: 10, p50: 1.75, p90: 2.35, p99: 2.485 });
  });
});
