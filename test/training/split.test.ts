import { describe, expect, it } from "vitest";
import { chronologicalSplit } from "../../src/training/split.js";

describe("chronologicalSplit(rows, horizonBars, options)", () => {
  it.each([
    // rows, horizon, options, train, validation, test
    [4149, 1, {}, [0, 2903], [2904, 3526], [3527, 4149]],
    [16235, 24, {}, [0, 11331], [11355, 13783], [13807, 16235]],
    [
      1000,
      5,
      { embargoRows: 10, validationFraction: 0.2, testFraction: 0.1 },
      [0, 686],
      [696, 892],
      [902, 1000],
    ],
  ] as const)(
    "%i rows at horizon %i %j → train %j, validation %j, test %j",
    (rows, h, options, train, validation, test) => {
      const split = chronologicalSplit(rows, h, options);
      expect([split.train.start, split.train.end]).toEqual(train);
      expect([split.validation.start, split.validation.end]).toEqual(validation);
      expect([split.test.start, split.test.end]).toEqual(test);
    },
  );

  it.each([
    [300, 1],
    [4149, 1],
    [16235, 24],
    [2000, 48],
  ])(
    "keeps %i rows at horizon %i in time order, disjoint, with an embargo of at least the horizon at each boundary",
    (rows, h) => {
      const { train, validation, test, embargoRows } = chronologicalSplit(rows, h);
      expect(embargoRows).toBeGreaterThanOrEqual(h);
      expect(train.start).toBe(0);
      expect(validation.start - train.end).toBe(embargoRows);
      expect(test.start - validation.end).toBe(embargoRows);
      expect(test.end).toBe(rows);
      // Row i's target is close[i + h]: the last training target is still before the first validation row's bar.
      expect(train.end - 1 + h).toBeLessThan(validation.start);
      expect(validation.end - 1 + h).toBeLessThan(test.start);
    },
  );

  it("refuses an embargo shorter than the horizon", () => {
    expect(() => chronologicalSplit(1000, 24, { embargoRows: 23 })).toThrow(
      /embargo \(23 rows\) must be a whole number >= the horizon \(24 bars\)/,
    );
  });

  it("refuses fractions that leave no training set", () => {
    expect(() => chronologicalSplit(1000, 1, { validationFraction: 0.5, testFraction: 0.5 })).toThrow(
      /fractions/,
    );
  });

  it("refuses a history too short to give every split 30 rows", () => {
    expect(() => chronologicalSplit(150, 1)).toThrow(expect.objectContaining({ kind: "insufficient_data" }));
  });
});
