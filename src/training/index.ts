/** Training of the crypto forecasters (Node only: runs onnxruntime-web from node_modules to evaluate). */
export { type ForecastMetrics, forecastMetrics } from "./evaluate.js";
export {
  type EvaluationReport,
  type ModelFamily,
  type SplitSummary,
  type TrainedForecaster,
  type TrainForecasterInput,
  trainForecaster,
} from "./forecaster.js";
export { GBDT_DEFAULTS, type GbdtModel, type GbdtParams, predictGbdt, trainGbdt } from "./gbdt.js";
export { exportGbdt, exportRidge, INPUT_NAME, OUTPUT_NAME } from "./onnx/export.js";
export { runForecaster } from "./onnx/runtime.js";
export { predictRidge, RIDGE_DEFAULTS, type RidgeModel, type RidgeParams, trainRidge } from "./ridge.js";
export { type ChronologicalSplit, chronologicalSplit, type SplitOptions } from "./split.js";
