import { LRUCache } from "lru-cache";
import * as ort from "onnxruntime-web/wasm";
import { createAsyncCache } from "../cache/async-cache.js";
import { EdgeMLError, errorMessage } from "../errors.js";
import { type OipDatatype, oipDatatypeOf } from "./datatypes.js";
import { untilTime } from "./deadline-clock.js";
import { identityModel } from "./identity-model.js";
import {
  guardOutputs,
  type RefusedOutput,
  tensorBytes,
  wasmGuardState,
  withWasmGuards,
} from "./wasm-guards.js";

/** Name, protocol datatype and shape of one model input or output; -1 marks a dynamic dimension. */
export interface TensorSpec {
  name: string;
  datatype: OipDatatype;
  shape: number[];
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** How the onnxruntime-web wasm is brought up. Node uses the default; the edge entries pass a precompiled module. */
export type RuntimeInitializer = (runtime: typeof ort) => Promise<void> | void;

export interface EngineOptions {
  /** Sessions kept warm, by count and by model bytes (the larger one evicts the least recently used). */
  maxSessions: number;
  maxSessionBytes: number;
  /** Default deadline of a run, queueing and session creation included. */
  timeoutMs: number;
  /** Largest output tensor a run may return, in bytes (413 `output_too_large` beyond it). Unset: no limit. */
  maxOutputBytes?: number;
  /**
   * Ceiling of this thread's wasm memory (inference workers): a run that needs more fails with 413 instead of
   * growing the heap, which never shrinks. Unset: onnxruntime's own 4 GiB.
   */
  memoryLimitBytes?: number;
  initialize?: RuntimeInitializer;
}

export interface EngineStats {
  initMs: number | null;
  sessionsCreated: number;
  runs: number;
  warmSessions: number;
  /** Sessions released after their run because the warm cache could not hold them. */
  sessionsNotCached?: number;
  /** Size of the wasm memory of the thread that runs this engine's sessions, when known. */
  memoryBytes?: number | null;
  /** Runs waiting for this thread's wasm runtime or running on it, now (shadow forecasts are dropped past a depth). */
  queued?: number;
  /** Inference workers (isolating engine only): started, killed at a deadline, recycled for their memory. */
  workers?: { started: number; killed: number; recycled: number; crashed: number };
}

interface Entry {
  session: ort.InferenceSession;
  signature: ModelSignature;
  bytes: number;
  inUse: number;
  evicted: boolean;
}

export interface RunRequest {
  /** Cache key of the session, `name@version`. */
  key: string;
  /** Called only when the session is not warm. */
  load: () => Promise<Uint8Array>;
  feeds: Record<string, ort.Tensor>;
  outputs?: string[];
  /** The run's budget when no `signal` is given; the worker-kill bound of an isolated run either way. */
  timeoutMs?: number;
  /**
   * The request's deadline, aborted when it passes: the run is bounded by it and arms no timer of its own (one
   * deadline per request, started where the request arrives).
   */
  signal?: AbortSignal;
  /**
   * The request's deadline as an epoch-ms instant, kept by the shared deadline clock (src/inference/deadline-clock.ts)
   * instead of a signal: preferred over `signal` when both are given.
   */
  deadlineAt?: number;
}

/**
 * The inference engine: one onnxruntime-web runtime per process, sessions created from bytes and kept in an LRU,
 * runs serialised (the wasm build runs one thread; interleaving runs only adds latency) and bounded by a deadline.
 */
export interface InferenceEngine {
  /** Brings the wasm runtime up; idempotent. */
  init(): Promise<void>;
  /** The warm session's signature, loading it when needed. */
  signature(key: string, load: () => Promise<Uint8Array>): Promise<ModelSignature>;
  run(request: RunRequest): Promise<Record<string, ort.Tensor>>;
  /** Drops a warm session (a version that failed verification, say). */
  evict(key: string): void;
  stats(): EngineStats;
}

const DIM_UNKNOWN = -1;

function toDim(dim: number | string): number {
  // Symbolic dims come back as strings; unnamed dynamic ones as -1 read as uint32 (4294967295).
  if (typeof dim === "string" || dim < 0 || dim > 2 ** 31) return DIM_UNKNOWN;
  return dim;
}

function specsOf(
  names: readonly string[],
  metadata: readonly ort.InferenceSession.ValueMetadata[],
  side: string,
): TensorSpec[] {
  return names.map((name, i) => {
    const meta = metadata[i];
    if (!meta?.isTensor) {
      throw new EdgeMLError(
        "model_load_failed",
        `${side} '${name}' is not a tensor; only tensor models can be served`,
      );
    }
    const datatype = oipDatatypeOf(meta.type);
    if (!datatype) {
      throw new EdgeMLError(
        "model_load_failed",
        `${side} '${name}' has element type ${meta.type}, not servable`,
      );
    }
    return { name, datatype, shape: meta.shape.map(toDim) };
  });
}

function signatureOf(session: ort.InferenceSession): ModelSignature {
  return {
    inputs: specsOf(session.inputNames, session.inputMetadata, "input"),
    outputs: specsOf(session.outputNames, session.outputMetadata, "output"),
  };
}

const BYTES_PER_ELEMENT: Partial<Record<ort.Tensor.Type, number>> = {
  bool: 1,
  int4: 1,
  uint4: 1,
  int8: 1,
  uint8: 1,
  float16: 2,
  int16: 2,
  uint16: 2,
  float32: 4,
  int32: 4,
  uint32: 4,
  // A string's pointer; its characters come on top and are bounded by the wasm heap they were made in.
  string: 4,
  float64: 8,
  int64: 8,
  uint64: 8,
};

const outputTooLarge = (key: string, name: string, output: RefusedOutput, limit: number) =>
  new EdgeMLError(
    "output_too_large",
    `output '${name}' of ${key} would be ${output.bytes} bytes (${output.type} [${output.dims.join(", ")}]), ` +
      `over the ${limit}-byte limit (MAX_OUTPUT_BYTES); send a smaller batch or input that asks for less`,
    { details: { output: name, ...output, limit } },
  );

/**
 * Refuses outputs over the limit: those the wasm guard kept out of JS (reported with their real size), then any
 * other whose dims and type say it is too large (read from the tensor, never from its data).
 */
function checkOutputs(
  key: string,
  outputs: Record<string, ort.Tensor>,
  refused: RefusedOutput[],
  limit: number,
): void {
  const first = refused[0];
  if (first) {
    const name = Object.keys(outputs).find((n) => outputs[n]?.size === 0) ?? "?";
    throw outputTooLarge(key, name, first, limit);
  }
  for (const [name, tensor] of Object.entries(outputs)) {
    const bytes = tensorBytes(tensor.dims, BYTES_PER_ELEMENT[tensor.type] ?? 8);
    if (bytes > limit)
      throw outputTooLarge(key, name, { dims: [...tensor.dims], type: tensor.type, bytes }, limit);
  }
}

// onnxruntime's C++ allocator failing: the run needed more wasm memory than the thread may have.
const OUT_OF_MEMORY = /bad_alloc|failed to allocate/i;

/**
 * One queue for every engine of a thread: they share one single-threaded wasm runtime, so runs never gain from
 * interleaving, and the output guard can tell whose outputs it is reading.
 */
let runQueue: Promise<unknown> = Promise.resolve();
/** Runs on `runQueue`, waiting or running: the depth optional work (shadow runs) is dropped beyond. */
let queuedRuns = 0;

/** Runs `work` after every run queued before it on this thread, counted in `queuedRuns` until it settles. */
function onRunQueue<T>(work: () => Promise<T>): Promise<T> {
  queuedRuns += 1;
  const turn = runQueue.then(work);
  runQueue = turn.catch(() => {});
  return turn.finally(() => {
    queuedRuns -= 1;
  });
}

/**
 * Settles with `work`, or rejects with `reason()` when `signal` aborts first: a deadline that a caller armed once,
 * listened to here without another timer. `work` is left to finish on its own; its late failure is observed.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, reason: () => Error): Promise<T> {
  work.catch(() => {});
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason());
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Rejects after `ms` with a 504 unless `work` settles first: for callers without a request's signal. */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new EdgeMLError("prediction_timeout", `${what} did not finish within ${ms} ms; try again`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts onnxruntime (one thread, no proxy) and resolves with the ms it took. onnxruntime instantiates its wasm on
 * the first session; a one-node model makes that happen here, so the cost is paid (and measured) once, at start-up,
 * rather than by the first user request. The edge's initializer starts the runtime itself, so it runs inside the
 * guards' window too.
 */
async function startRuntime(options: EngineOptions): Promise<number> {
  const started = performance.now();
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  await withWasmGuards({ memoryLimitBytes: options.memoryLimitBytes }, async () => {
    await options.initialize?.(ort);
    const warmup = await ort.InferenceSession.create(identityModel());
    await warmup.release();
  });
  return performance.now() - started;
}

/** A failed `session.run` as the client's error: out of memory for this input, or the model failing on it. */
function runFailure(key: string, error: unknown, memoryLimitBytes: number | undefined): EdgeMLError {
  const reason = errorMessage(error);
  if (OUT_OF_MEMORY.test(reason)) {
    return new EdgeMLError(
      "output_too_large",
      `${key} needed more memory than this server gives one run` +
        (memoryLimitBytes ? ` (${memoryLimitBytes} bytes, WORKER_MAX_MEMORY_BYTES)` : "") +
        ` for this input: its outputs or intermediate tensors are too large; send a smaller batch or input that asks for less`,
      { cause: error },
    );
  }
  // The inputs passed the signature checks, so what fails here is the model on these values (a Reshape that does
  // not fit the batch, say): the client's request, not the server, is what to change.
  return new EdgeMLError("inference_failed", `onnxruntime could not run ${key} on this input: ${reason}`, {
    cause: error,
  });
}

/**
 * Builds the onnxruntime-web engine. Threads and the worker proxy are off everywhere: edge runtimes have no
 * Worker and no SharedArrayBuffer, and a single thread keeps Node and the edge numerically identical.
 */
export function createOrtEngine(options: EngineOptions): InferenceEngine {
  let initPromise: Promise<void> | undefined;
  let initMs: number | null = null;
  let sessionsCreated = 0;
  let sessionsNotCached = 0;
  let runs = 0;
  const maxOutputBytes = options.maxOutputBytes ?? Number.POSITIVE_INFINITY;

  const release = (entry: Entry) => {
    entry.session.release().catch(() => {});
  };
  const warm = new LRUCache<string, Entry>({
    max: options.maxSessions,
    maxSize: options.maxSessionBytes,
    sizeCalculation: (entry) => Math.max(1, entry.bytes),
    dispose: (entry) => {
      entry.evicted = true;
      if (entry.inUse === 0) release(entry);
    },
  });

  const init = () => {
    initPromise ??= startRuntime(options).then((ms) => {
      initMs = ms;
    });
    return initPromise;
  };

  const createSession = async (bytes: Uint8Array): Promise<ort.InferenceSession> => {
    await init();
    try {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
      });
      sessionsCreated += 1;
      return session;
    } catch (error) {
      const reason = errorMessage(error);
      throw new EdgeMLError("model_load_failed", `onnxruntime could not load the model: ${reason}`, {
        cause: error,
      });
    }
  };

  // Policy: singleFlight: concurrent requests for a session not yet warm share one load and one session
  // creation; the session itself is kept by `warm` (sized by bytes), not here.
  const loading = createAsyncCache<string, Entry, () => Promise<Uint8Array>>({
    policy: { kind: "singleFlight" },
    load: async (key, load) => {
      const bytes = await load();
      const session = await createSession(bytes);
      let signature: ModelSignature;
      try {
        signature = signatureOf(session);
      } catch (error) {
        await session.release();
        throw error;
      }
      const entry: Entry = { session, signature, bytes: bytes.byteLength, inUse: 0, evicted: false };
      warm.set(key, entry);
      // lru-cache refuses an entry larger than its whole budget without calling dispose: such a session serves
      // the requests waiting for it and is released after the last one, instead of never.
      if (!warm.has(key)) {
        entry.evicted = true;
        sessionsNotCached += 1;
      }
      return entry;
    },
  });

  const acquire = async (key: string, load: () => Promise<Uint8Array>): Promise<Entry> =>
    warm.get(key) ?? loading.get(key, load);

  /** The session for `key`, held until `use` settles; a session no cache holds is released after its last use. */
  const withSession = async <T>(
    key: string,
    load: () => Promise<Uint8Array>,
    use: (entry: Entry) => Promise<T>,
  ): Promise<T> => {
    const entry = await acquire(key, load);
    entry.inUse += 1;
    try {
      return await use(entry);
    } finally {
      entry.inUse -= 1;
      if (entry.evicted && entry.inUse === 0) release(entry);
    }
  };

  return {
    init,
    async signature(key, load) {
      return withSession(key, load, async (entry) => entry.signature);
    },
    async run({ key, load, feeds, outputs, timeoutMs, signal, deadlineAt }) {
      let cancelled = false;
      const work = withSession(key, load, async (entry) => {
        return onRunQueue(async (): Promise<Record<string, ort.Tensor>> => {
          // A run whose deadline passed while it queued is not started: nobody is waiting for it.
          if (cancelled) return {};
          runs += 1;
          let result: Record<string, ort.Tensor>;
          let refused: RefusedOutput[];
          try {
            ({ result, refused } = await guardOutputs(maxOutputBytes, () =>
              entry.session.run(feeds, outputs ?? entry.session.outputNames),
            ));
          } catch (error) {
            throw runFailure(key, error, options.memoryLimitBytes);
          }
          checkOutputs(key, result, refused, maxOutputBytes);
          return result;
        });
      });
      const passed = () =>
        new EdgeMLError(
          "prediction_timeout",
          `inference on ${key} did not finish within its deadline; try again`,
        );
      try {
        return await (deadlineAt !== undefined
          ? untilTime(work, deadlineAt, passed)
          : signal
            ? untilAborted(work, signal, passed)
            : withDeadline(work, timeoutMs ?? options.timeoutMs, `inference on ${key}`));
      } catch (error) {
        cancelled = true;
        work.catch(() => {});
        throw error;
      }
    },
    evict(key) {
      warm.delete(key);
    },
    stats() {
      return {
        initMs,
        sessionsCreated,
        runs,
        warmSessions: warm.size,
        sessionsNotCached,
        queued: queuedRuns,
        memoryBytes: wasmGuardState().memoryBytes,
      };
    },
  };
}
