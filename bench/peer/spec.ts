/** What bench/peer.bench.ts compares, shared by its parts (servers, load, report). */
import { availableParallelism } from "node:os";
import { z } from "zod";
import type { LoadResult } from "./load.js";

export const COMMAND = "npm run bench:peer";
export const SECTION = "## Side by side: edgeml against FastAPI + scikit-learn";
export const INSTALL = "apt-get install -y python3-fastapi python3-uvicorn python3-sklearn";
/** The goals: edgeml's req/s over the peer's. */
export const GOALS = { infer: 40, serve: 10 } as const;
/** The shipped CSVs' last daily close: a replay forecast, so the answer is cacheable (as in `npm run bench`). */
export const SERVE_AS_OF = "2026-03-28";
/** Counted by edgeml's limiter on every request, never reached: one client (127.0.0.1) sends the whole load. */
export const RATE_LIMIT_PUBLIC = "1000000000/60s";
/**
 * edgeml runs the float32 ONNX export (float32 thresholds, leaves summed in float32), the peer scikit-learn in float64:
 * the same trees, so their answers differ by float32 rounding only. The outputs are 24 h log returns of about ±0.03;
 * the skl2onnx exports agree with scikit-learn to 4e-8 (byo-models/README.md).
 */
export const TOLERANCE = 1e-6;
export const TOLERANCE_TEXT = "1e-6";

export type Route = "infer" | "serve";
/** "bare": the ceiling (bench/peer/bare.ts), a bare Hono app answering edgeml's captured bytes. */
export type Server = "edgeml" | "peer" | "bare";
export const ROUTES: readonly Route[] = ["infer", "serve"];
export const ROUTE_LABEL: Record<Route, string> = {
  infer: "OIP infer, batch 1 (sk_hgb)",
  serve: `cached forecast (BTC 24h, as_of ${SERVE_AS_OF})`,
};

export const Options = z.object({
  workers: z.coerce.number().int().min(1).max(64),
  rounds: z.coerce.number().int().min(1),
  seconds: z.coerce.number().int().min(1),
  connections: z.coerce.number().int().min(1),
  warmupSeconds: z.coerce.number().int().min(0),
  python: z.string().optional(),
  /** The page the section goes to (docs/benchmarks.md unless a test run names another). */
  doc: z.string(),
  write: z.boolean(),
});
export type Options = z.infer<typeof Options>;

/** The command that reproduces a run with these options. */
export function command(o: Options): string {
  const given = {
    workers: o.workers,
    rounds: o.rounds,
    seconds: o.seconds,
    connections: o.connections,
    "warmup-seconds": o.warmupSeconds,
  };
  const flags = Object.entries(given)
    .filter(([key, value]) => DEFAULTS[key as keyof typeof DEFAULTS] !== value)
    .map(([key, value]) => `--${key} ${value}`);
  return flags.length > 0 ? `${COMMAND} -- ${flags.join(" ")}` : COMMAND;
}

/** By default as many processes of each as `npm start` runs (WORKERS unset: every core); `--workers N` for N of each. */
export const DEFAULTS = {
  workers: availableParallelism(),
  rounds: 3,
  seconds: 10,
  connections: 16,
  "warmup-seconds": 5,
} as const;

/** One timed run: one path on one server in one round. */
export interface Run extends LoadResult {
  round: number;
  path: Route;
  server: Server;
  /** 1-minute load average of the machine when the run started. */
  load1: number;
}

/** The same rows through both servers, before any load: how far their answers are from scikit-learn's and apart. */
export interface Agreement {
  rows: number;
  edgemlVsSklearn: number;
  peerVsSklearn: number;
  edgemlVsPeer: number;
  /** The close the cached naive forecast gives, from the CSV. */
  closePrice: number;
}

/** The export's description (`sk_hgb_f32.json`): test rows and scikit-learn's predictions for them. */
export interface ExportCase {
  input: { name: string; shape: [number, number]; data: number[] };
  output_name: string;
  expected_sklearn_predict: number[];
}
