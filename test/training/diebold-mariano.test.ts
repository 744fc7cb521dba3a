import tCdf from "@stdlib/stats-base-dists-t-cdf";
import { describe, expect, it } from "vitest";
import { dieboldMariano } from "../../src/training/diebold-mariano.js";

// Reference numbers from SciPy 1.17.1 (scipy.stats), and for h > 1 from a NumPy transcription of the same formula:
//   e = d - d.mean(); g(k) = (e[k:] * e[:T-k]).sum() / T; L = h - 1
//   v = g(0) + sum(2 * (1 - k / (L + 1)) * g(k) for k in 1..L)
//   s = d.mean() / sqrt(v / T) * sqrt((T + 1 - 2h + h(h - 1) / T) / T);  p = stats.t.cdf(s, T - 1)

describe("the Student-t CDF (stdlib) against SciPy", () => {
  it.each([
    [2.228138851986274, 10, 0.975], // stats.t.ppf(0.975, 10)
    [-1.6991270265334977, 29, 0.05], // stats.t.ppf(0.05, 29)
    [-1.5, 10, 0.08225366322272007], // stats.t.cdf(-1.5, 10)
    [0, 3, 0.5],
  ])("t_cdf(%d, %d df) = %d", (x, df, p) => {
    expect(tCdf(x, df)).toBeCloseTo(p, 12);
  });
});

describe("dieboldMariano(differentials, horizon)", () => {
  it("at horizon 1 is the one-sample t-test: scipy.stats.ttest_1samp(d, 0, alternative='less')", () => {
    const d = [0.3, -1.2, 0.5, -0.8, -0.1, -0.6, 0.2, -0.9, -0.4, 0.1];
    const result = dieboldMariano(d, 1);
    expect(result.lag).toBe(0);
    expect(result.rows).toBe(10);
    expect(result.meanDifferential).toBeCloseTo(-0.29, 14);
    expect(result.statistic).toBeCloseTo(-1.5966662811004362, 12);
    expect(result.pValue).toBeCloseTo(0.07240227231823446, 12);
  });

  it("at horizon 2 uses the Newey–West variance with lag 1 and the HLN factor (worked by hand)", () => {
    // mean 0.5; γ0 = 17.5/6, γ1 = −11.25/6; var = γ0 + 2·½·γ1 = 1.041667; DM = 0.5 / sqrt(var/6) = 1.2;
    // HLN = sqrt((6 + 1 − 4 + 2/6) / 6) = 0.745356; statistic = 0.894427.
    const result = dieboldMariano([1, -1, 2, 0, 3, -2], 2);
    expect(result.lag).toBe(1);
    expect(result.statistic).toBeCloseTo(0.894427190999916, 12);
    expect(result.pValue).toBeCloseTo(0.7939625975844197, 12);
  });

  it("at horizon 3 matches the NumPy/SciPy reference on 60 autocorrelated differentials", () => {
    const d = Array.from(
      { length: 60 },
      (_, t) => 0.01 * Math.sin(0.7 * t) + 0.004 * Math.cos(2.1 * t) - 0.002,
    );
    const result = dieboldMariano(d, 3);
    expect(result.statistic).toBeCloseTo(-1.1614901269436844, 10);
    expect(result.pValue).toBeCloseTo(0.12506005471968537, 10);
  });

  it("is one-sided for 'the model's loss is lower': negating d gives 1 − p", () => {
    const d = Array.from({ length: 40 }, (_, t) => Math.sin(t * 1.3) - 0.2);
    const a = dieboldMariano(d, 2);
    const b = dieboldMariano(
      d.map((x) => -x),
      2,
    );
    expect(a.pValue).toBeLessThan(0.5);
    expect(a.pValue + b.pValue).toBeCloseTo(1, 12);
  });

  it("widens the variance when the overlap of h-step targets makes d autocorrelated", () => {
    // A persistent series: neighbours move together, so ignoring the overlap would overstate the evidence.
    const d = Array.from({ length: 200 }, (_, t) => Math.sin(t / 6) - 0.1);
    expect(Math.abs(dieboldMariano(d, 12).statistic)).toBeLessThan(Math.abs(dieboldMariano(d, 1).statistic));
  });

  describe("degenerate differentials (zero variance)", () => {
    it.each([
      ["the model is the benchmark (all zero)", 0, 1],
      ["the model is worse on every row by the same amount", 0.5, 1],
      ["the model is better on every row by the same amount", -0.5, 0],
    ])("%s: statistic 0, p %d", (_, value, p) => {
      const result = dieboldMariano(new Array(10).fill(value), 1);
      expect(result.statistic).toBe(0);
      expect(result.pValue).toBe(p);
    });
  });

  describe("refuses", () => {
    it("a horizon that is not a whole number >= 1", () => {
      expect(() => dieboldMariano([1, 2, 3, 4], 0)).toThrow(
        expect.objectContaining({ kind: "invalid_parameters" }),
      );
    });
    it("too few differentials for the horizon", () => {
      expect(() => dieboldMariano([1, 2, 3, 4], 2)).toThrow(
        expect.objectContaining({ kind: "insufficient_data", message: expect.stringMatching(/more than 4/) }),
      );
    });
    it("a non-finite differential, naming it", () => {
      expect(() => dieboldMariano([1, 2, Number.NaN, 4, 5], 1)).toThrow(
        expect.objectContaining({ kind: "invalid_data", message: "loss differential 2 is NaN" }),
      );
    });
  });
});
