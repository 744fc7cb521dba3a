import onnxProto from "onnx-proto";
import { describe, expect, it } from "vitest";
import { FEATURE_NAMES, FEATURE_SET } from "../../src/features/index.js";
import { runCostOf } from "../../src/inference/node/run-cost.js";
import { exportNaive, exportRidge } from "../../src/training/onnx/export.js";
import { runForecaster } from "../../src/training/onnx/runtime.js";

const meta = {
  featureSet: FEATURE_SET,
  featureNames: FEATURE_NAMES,
  symbol: "BTC",
  interval: "1d",
  horizonBars: 1,
  description: "naive",
};
const F = FEATURE_NAMES.length;
const decode = (bytes: Uint8Array) => onnxProto.onnx.ModelProto.decode(bytes);

describe("exportNaive: the naive baseline as an ONNX forecaster", () => {
  it.each([
    ["zeros", new Array(F).fill(0)],
    ["a market row", Array.from({ length: F }, (_, i) => Math.sin(i) / 10)],
    [
      "NaN and ±Infinity (a zero-weight MatMul would give NaN)",
      [Number.NaN, Infinity, -Infinity, ...new Array(F - 3).fill(1)],
    ],
  ])("predicts a log return of exactly +0 for %s", async (_, row) => {
    const out = await runForecaster(exportNaive(meta), [row, row], F);
    expect(Array.from(out)).toEqual([0, 0]);
    expect(Object.is(out[0], 0)).toBe(true);
  });

  it("has the trained forecasters' contract: input features FP64 [N, 30], output log_return FP64 [N, 1], metadata", () => {
    const naive = decode(exportNaive(meta));
    const ridge = decode(
      exportRidge(
        {
          family: "ridge",
          nFeatures: F,
          weights: new Float64Array(F),
          intercept: 0,
          standardizedWeights: new Float64Array(F),
          alpha: 1,
        } as Parameters<typeof exportRidge>[0],
        meta,
      ),
    );
    const io = (m: ReturnType<typeof decode>) => JSON.stringify([m.graph?.input, m.graph?.output]);
    expect(io(naive)).toBe(io(ridge));
    const props = Object.fromEntries((naive.metadataProps ?? []).map((p) => [p.key, p.value]));
    expect(props).toMatchObject({ family: "naive", feature_set: FEATURE_SET.name, target: "log_return" });
  });

  it("runs inline in the serving engine: every operator's output size follows its input's", () => {
    expect(runCostOf(exportNaive(meta))).toMatchObject({ isolate: false });
  });

  it("the same bytes whenever it is built (no dates inside)", () => {
    expect(exportNaive(meta)).toEqual(exportNaive(meta));
  });
});
