import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";

/** Shared helpers of the benchmarks: fixture paths, the scikit-learn exports, statistics and child processes. */

export const REPO_ROOT = resolve(import.meta.dirname, "..");
/** How `npm start` loads its TypeScript (`node --import <this>`): the benchmarks' servers start the same way. */
export const NODE_TS_LOADER = join(REPO_ROOT, "scripts", "node-ts.mjs");
/** The real scikit-learn exports live beside the repository (as in CI) and are read in place, never copied. */
export const BYO_MODELS = resolve(REPO_ROOT, "../shared/data/byo-models");
export const MARKET_DATA = resolve(REPO_ROOT, "../shared/data/market");
/** The bench server's public rate limit: far above what the load sends, so it counts every request but refuses none. */
export const BENCH_RATE_LIMIT_PUBLIC = "1000000000/60s";

/** The tree ensembles the benchmark runs, by the name of their `.json` description. */
export const TREE_MODELS = [
  { key: "sk_gbr", file: "sk_gbr_f32.json", label: "sk_gbr (200 trees, depth 3)" },
  { key: "sk_rf", file: "sk_rf_f32.json", label: "sk_rf (50 trees, depth 8)" },
] as const;
export type TreeModelKey = (typeof TREE_MODELS)[number]["key"];

/** Results of bench/runtime.ts, read by bench/inference.bench.ts. */
export type RuntimeName = "web" | "node" | "node-default";

export interface Latency {
  medianUs: number;
  p99Us: number;
  iterations: number;
}

export interface ColdResult {
  runtime: RuntimeName;
  importMs: number;
  initMs: number;
  /** web only: time inside WebAssembly.instantiate (compile + instantiate of the .wasm) during the init. */
  wasmInstantiateMs: number | null;
  firstSessionMs: number;
}

export interface MeasureResult {
  runtime: RuntimeName;
  threads: string;
  sessionCreateMs: Record<TreeModelKey, number>;
  sessionCreations: number;
  runs: Record<TreeModelKey, { b1: Latency; b64: Latency }>;
  /** web only: the same runs through the app's engine (queue + deadline around session.run). */
  engineRuns?: Record<TreeModelKey, { b1: Latency; b64: Latency }>;
}

export const ITERATIONS = {
  sessionCreate: { warmup: 3, timed: 20 },
  b1: { warmup: 2_000, timed: 5_000 },
  b64: { warmup: 300, timed: 1_000 },
} as const;

export interface ByoCase {
  model: string;
  input: { name: string; datatype: "FP32"; shape: [number, number]; data: number[] };
  output_name: string;
  expected_sklearn_predict: number[];
}

export interface LoadedCase {
  spec: ByoCase;
  bytes: Uint8Array;
  /** Rows in the file and features per row. */
  rows: number;
  features: number;
  /** The first `n` rows of the file, flat row-major, as float32. */
  batch: (n: number) => Float32Array;
}

export async function loadCase(file: string): Promise<LoadedCase> {
  const spec = JSON.parse(await readFile(join(BYO_MODELS, file), "utf8")) as ByoCase;
  if (spec.input.datatype !== "FP32")
    throw new Error(`${file}: expected FP32 input, got ${spec.input.datatype}`);
  const bytes = new Uint8Array(await readFile(join(BYO_MODELS, spec.model)));
  const [rows, features] = spec.input.shape;
  return {
    spec,
    bytes,
    rows,
    features,
    batch: (n) => {
      if (n > rows) throw new Error(`${file} holds ${rows} rows; a batch of ${n} would need invented data`);
      return Float32Array.from(spec.input.data.slice(0, n * features));
    },
  };
}

/** The q-th quantile (0..1) of the samples, nearest rank on a sorted copy. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export const median = (samples: readonly number[]) => quantile(samples, 0.5);

/** Runs `bench/<script>` with the same Node and tsx as this process and returns its last stdout line as JSON. */
export function runChild<T>(script: string, args: string[]): Promise<T> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "--import", "tsx", join(REPO_ROOT, "bench", script), ...args],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
    });
    child.on("error", fail);
    child.on("close", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "";
      if (code !== 0) return fail(new Error(`bench/${script} ${args.join(" ")} exited with ${code}: ${out}`));
      try {
        done(JSON.parse(last) as T);
      } catch {
        fail(new Error(`bench/${script} ${args.join(" ")} printed no JSON result: ${out}`));
      }
    });
  });
}
