/**
 * Runs exported forecasters in onnxruntime-web, the runtime that serves them, so that training measures and checks
 * exactly what production computes. (Training runs in Node: the wasm is loaded from node_modules as is.)
 */
import * as ort from "onnxruntime-web/wasm";
import { INPUT_NAME, OUTPUT_NAME } from "./export.js";

let configured = false;

function configure(): void {
  if (configured) return;
  // No worker threads and no proxy worker: the edge runtimes have neither, and the results must match theirs.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  configured = true;
}

/** The version of onnxruntime-web that evaluated a model, for the report. */
export function ortVersion(): string {
  return ort.env.versions.web ?? "unknown";
}

/** Runs `rows` (each of `nFeatures` doubles) through the model in one batch; returns the `log_return` column. */
export async function runForecaster(
  onnxBytes: Uint8Array,
  rows: readonly ArrayLike<number>[],
  nFeatures: number,
): Promise<Float64Array> {
  configure();
  const data = new Float64Array(rows.length * nFeatures);
  rows.forEach((row, i) => {
    if (row.length !== nFeatures)
      throw new Error(`runForecaster: row ${i} has ${row.length} features, expected ${nFeatures}`);
    data.set(Array.from(row), i * nFeatures);
  });
  const session = await ort.InferenceSession.create(onnxBytes);
  try {
    const result = await session.run({
      [INPUT_NAME]: new ort.Tensor("float64", data, [rows.length, nFeatures]),
    });
    const output = result[OUTPUT_NAME];
    if (output?.type !== "float64" || !(output.data instanceof Float64Array)) {
      throw new Error(`runForecaster: model output ${OUTPUT_NAME} is missing or not float64`);
    }
    if (output.data.length !== rows.length) {
      throw new Error(`runForecaster: ${output.data.length} outputs for ${rows.length} rows`);
    }
    return Float64Array.from(output.data);
  } finally {
    await session.release();
  }
}
