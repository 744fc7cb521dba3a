import { Worker } from "node:worker_threads";
import type { Tensor } from "onnxruntime-web/wasm";
import type { AppConfig } from "../../config.js";
import { EdgeMLError, errorMessage } from "../../errors.js";
import { untilTime } from "../deadline-clock.js";
import type { EngineStats, InferenceEngine, ModelSignature, RunRequest } from "../engine.js";
import {
  errorFromWire,
  fromWire,
  toWire,
  type WireTensor,
  type WorkerJob,
  type WorkerRequest,
  type WorkerResponse,
  type WorkerSettings,
} from "../worker-protocol.js";
import { type RunCost, runCostOf } from "./run-cost.js";

export interface IsolatingEngineOptions {
  /** The in-process engine that runs models whose cost the request's size bounds. */
  inline: InferenceEngine;
  /** Settings of the worker's own engine (its session cache, output limit and wasm memory ceiling). */
  worker: WorkerSettings;
  /** A worker whose wasm memory is past this after a request is replaced (wasm memory never shrinks). */
  recycleBytes: number;
  /** Default deadline of a run, as the inline engine's. */
  timeoutMs: number;
  /** Where a model runs; defaults to the graph rule of runCostOf. */
  classify?: (bytes: Uint8Array) => RunCost;
  /** The worker's entry; tests may point elsewhere. */
  workerUrl?: URL;
}

type Placement = { isolate: false } | { isolate: true; signature: ModelSignature };

type Reply = Extract<WorkerResponse, { ok: true }> | { ok: false; needBytes: true };

type Job = {
  request: WorkerJob;
  what: string;
  resolve: (reply: Reply) => void;
  reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
  settled: boolean;
};

// Resolved when a worker starts, not at import: a bundle without import.meta.url (the Vercel Node function's) still
// loads, and only an isolated model there fails, with a 503 that says why.
const defaultWorkerUrl = () => new URL("./inference-worker.mjs", import.meta.url);

/**
 * One worker thread that runs requests one at a time, each under its own deadline: a request whose deadline
 * passes while it waits is dropped; one whose deadline passes while it runs has its worker terminated (a wasm run
 * cannot be interrupted any other way) and the next request starts a fresh worker. A worker whose wasm memory grew
 * past the recycle bound is replaced after its request, which returns that memory to the system.
 */
function createWorkerRunner(options: IsolatingEngineOptions) {
  const counts = { started: 0, killed: 0, recycled: 0, crashed: 0 };
  const queue: Job[] = [];
  let worker: Worker | null = null;
  let current: { job: Job; id: number } | null = null;
  let nextId = 0;

  const settle = (job: Job, outcome: { reply: Reply } | { error: unknown }) => {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    if ("reply" in outcome) job.resolve(outcome.reply);
    else job.reject(outcome.error);
  };

  const retire = (which: Worker) => {
    if (worker === which) worker = null;
    which.removeAllListeners();
    // An 'error' after this point is the termination itself; nothing waits for it.
    which.on("error", () => {});
    void which.terminate();
  };

  const spawn = (): Worker => {
    const started = new Worker(options.workerUrl ?? defaultWorkerUrl(), { workerData: options.worker });
    counts.started += 1;
    // The HTTP server keeps the process alive; an idle worker must not.
    started.unref();
    started.on("message", (response: WorkerResponse) => {
      if (worker !== started || !current || current.id !== response.id) return;
      const { job } = current;
      current = null;
      if (response.ok || response.needBytes) settle(job, { reply: response as Reply });
      else settle(job, { error: errorFromWire(response.error) });
      if ((response.memoryBytes ?? 0) > options.recycleBytes) {
        counts.recycled += 1;
        retire(started);
      }
      pump();
    });
    const crashed = (reason: string) => {
      if (worker !== started) return;
      counts.crashed += 1;
      retire(started);
      const job = current?.job;
      current = null;
      if (job) {
        settle(job, {
          error: new EdgeMLError(
            "model_unavailable",
            `the inference worker stopped during ${job.what} (${reason}); try again`,
          ),
        });
      }
      pump();
    };
    started.on("error", (error) => crashed(error.message));
    started.on("exit", (code) => crashed(`exit code ${code}`));
    return started;
  };

  const pump = () => {
    if (current) return;
    const job = queue.shift();
    if (!job) return;
    try {
      worker ??= spawn();
    } catch (error) {
      settle(job, {
        error: new EdgeMLError(
          "model_unavailable",
          `the inference worker could not start (${errorMessage(error)})`,
          { cause: error },
        ),
      });
      pump();
      return;
    }
    nextId += 1;
    current = { job, id: nextId };
    // Model bytes and feeds are copied, not transferred: the caller may still hold them (a registration does).
    worker.postMessage({ ...job.request, id: nextId } as WorkerRequest);
  };

  const onDeadline = (job: Job, ms: number) => {
    if (job.settled) return;
    settle(job, {
      error: new EdgeMLError("prediction_timeout", `${job.what} did not finish within ${ms} ms; try again`),
    });
    if (current?.job === job) {
      current = null;
      counts.killed += 1;
      if (worker) retire(worker);
      pump();
    } else {
      const at = queue.indexOf(job);
      if (at >= 0) queue.splice(at, 1);
    }
  };

  return {
    counts,
    submit(request: WorkerJob, timeoutMs: number, what: string): Promise<Reply> {
      return new Promise<Reply>((resolve, reject) => {
        const ms = Math.max(0, timeoutMs);
        const job: Job = { request, what, resolve, reject, settled: false, timer: undefined as never };
        job.timer = setTimeout(() => onDeadline(job, ms), ms);
        queue.push(job);
        pump();
      });
    },
  };
}

/**
 * The Node server's engine: models whose graph bounds their cost by the request's size (no control flow, no
 * output sized by input values; see runCostOf) run inline on `options.inline`, every other one in a worker thread
 * that a deadline can stop. The classification is made once per session key, from the model's bytes at load.
 */
export function createIsolatingEngine(options: IsolatingEngineOptions): InferenceEngine {
  const { inline } = options;
  const classify = options.classify ?? runCostOf;
  const runner = createWorkerRunner(options);
  const placements = new Map<string, Promise<Placement>>();
  let isolatedRuns = 0;

  const place = (key: string, load: () => Promise<Uint8Array>): Promise<Placement> => {
    let pending = placements.get(key);
    if (!pending) {
      pending = (async (): Promise<Placement> => {
        const bytes = await load();
        if (!classify(bytes).isolate) {
          // Warms the inline session from the bytes in hand, so the model is not fetched twice.
          await inline.signature(key, async () => bytes);
          return { isolate: false };
        }
        const reply = await runner.submit(
          { op: "signature", key, bytes },
          options.timeoutMs,
          `loading ${key} in the inference worker`,
        );
        if (!reply.ok || !reply.signature) {
          throw new EdgeMLError("model_unavailable", `the inference worker did not load ${key}; try again`);
        }
        return { isolate: true, signature: reply.signature };
      })();
      placements.set(key, pending);
      // A failure is not remembered: the next request tries again.
      pending.catch(() => placements.delete(key));
    }
    return pending;
  };

  const runIsolated = async (
    { key, load, feeds, outputs }: RunRequest,
    deadlineAt: number,
  ): Promise<Record<string, Tensor>> => {
    const what = `inference on ${key}`;
    const wireFeeds: Record<string, WireTensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) wireFeeds[name] = toWire(tensor);
    const request = { op: "run" as const, key, feeds: wireFeeds, outputs };
    isolatedRuns += 1;
    let reply = await runner.submit(request, deadlineAt - Date.now(), what);
    // The worker was replaced (or evicted the session) since the model was placed: send it the bytes.
    if (!reply.ok)
      reply = await runner.submit({ ...request, bytes: await load() }, deadlineAt - Date.now(), what);
    if (!reply.ok || !reply.outputs)
      throw new EdgeMLError("model_unavailable", `${what} returned nothing; try again`);
    return Object.fromEntries(Object.entries(reply.outputs).map(([name, wire]) => [name, fromWire(wire)]));
  };

  return {
    init: () => inline.init(),

    async signature(key, load) {
      const placement = await place(key, load);
      return placement.isolate ? placement.signature : inline.signature(key, load);
    },

    async run(request) {
      const ms = request.timeoutMs ?? options.timeoutMs;
      // The request's own instant when it has one (kept by the shared deadline clock, no timer of this run's own).
      const deadlineAt = request.deadlineAt ?? Date.now() + ms;
      const work = place(request.key, request.load).then((placement) =>
        placement.isolate
          ? runIsolated(request, deadlineAt)
          : inline.run({ ...request, timeoutMs: Math.max(0, deadlineAt - Date.now()) }),
      );
      return untilTime(
        work,
        deadlineAt,
        () =>
          new EdgeMLError(
            "prediction_timeout",
            `inference on ${request.key} did not finish within ${ms} ms; try again`,
          ),
      );
    },

    evict(key) {
      const placement = placements.get(key);
      placements.delete(key);
      inline.evict(key);
      void placement?.then(
        (p) => {
          if (p.isolate) {
            runner.submit({ op: "evict", key }, options.timeoutMs, `evicting ${key}`).catch(() => {});
          }
        },
        () => {},
      );
    },

    stats(): EngineStats {
      const base = inline.stats();
      return { ...base, runs: base.runs + isolatedRuns, workers: { ...runner.counts } };
    },
  };
}

/** The Node server's isolation, sized by the app's settings (see engineFromConfig). */
export function isolateInWorker(inline: InferenceEngine, settings: AppConfig): InferenceEngine {
  return createIsolatingEngine({
    inline,
    worker: {
      maxSessions: settings.sessionCacheMax,
      maxSessionBytes: settings.sessionCacheMaxBytes,
      maxOutputBytes: settings.maxOutputBytes,
      memoryLimitBytes: settings.workerMaxMemoryBytes,
    },
    recycleBytes: settings.workerRecycleBytes,
    timeoutMs: settings.inferTimeoutMs,
  });
}
