import { LRUCache } from "lru-cache";
import * as ort from "onnxruntime-web/wasm";
import { EdgeMLError } from "../errors.js";
import { type OipDatatype, oipDatatypeOf } from "./datatypes.js";
import { identityModel } from "./onnx-model.js";

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
  initialize?: RuntimeInitializer;
}

export interface EngineStats {
  initMs: number | null;
  sessionsCreated: number;
  runs: number;
  warmSessions: number;
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
  timeoutMs?: number;
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

/** Rejects after `ms` with a 504 unless `work` settles first. */
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
 * Builds the onnxruntime-web engine. Threads and the worker proxy are off everywhere: edge runtimes have no
 * Worker and no SharedArrayBuffer, and a single thread keeps Node and the edge numerically identical.
 */
export function createOrtEngine(options: EngineOptions): InferenceEngine {
  let initPromise: Promise<void> | undefined;
  let initMs: number | null = null;
  let sessionsCreated = 0;
  let runs = 0;
  let queue: Promise<unknown> = Promise.resolve();
  const loading = new Map<string, Promise<Entry>>();

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
    initPromise ??= (async () => {
      const started = performance.now();
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      await options.initialize?.(ort);
      // onnxruntime instantiates its wasm on the first session; a one-node model makes that happen here, so the
      // cost is paid (and measured) once, at start-up, rather than by the first user request.
      const warmup = await ort.InferenceSession.create(identityModel());
      await warmup.release();
      initMs = performance.now() - started;
    })();
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
      const reason = error instanceof Error ? error.message : String(error);
      throw new EdgeMLError("model_load_failed", `onnxruntime could not load the model: ${reason}`, {
        cause: error,
      });
    }
  };

  const acquire = async (key: string, load: () => Promise<Uint8Array>): Promise<Entry> => {
    const hit = warm.get(key);
    if (hit) return hit;
    let pending = loading.get(key);
    if (!pending) {
      pending = (async () => {
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
        return entry;
      })().finally(() => loading.delete(key));
      loading.set(key, pending);
    }
    return pending;
  };

  return {
    init,
    async signature(key, load) {
      return (await acquire(key, load)).signature;
    },
    async run({ key, load, feeds, outputs, timeoutMs }) {
      let cancelled = false;
      const work = (async () => {
        const entry = await acquire(key, load);
        entry.inUse += 1;
        try {
          const turn = queue.then(async () => {
            // A run whose deadline passed while it queued is not started: nobody is waiting for it.
            if (cancelled) return {};
            runs += 1;
            try {
              return await entry.session.run(feeds, outputs ?? entry.session.outputNames);
            } catch (error) {
              // The inputs passed the signature checks, so what fails here is the model on these values (a
              // Reshape that does not fit the batch, say): the client's request, not the server, is what to change.
              const reason = error instanceof Error ? error.message : String(error);
              throw new EdgeMLError(
                "inference_failed",
                `onnxruntime could not run ${key} on this input: ${reason}`,
                {
                  cause: error,
                },
              );
            }
          });
          queue = turn.catch(() => {});
          return await turn;
        } finally {
          entry.inUse -= 1;
          if (entry.evicted && entry.inUse === 0) release(entry);
        }
      })();
      try {
        return await withDeadline(work, timeoutMs ?? options.timeoutMs, `inference on ${key}`);
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
      return { initMs, sessionsCreated, runs, warmSessions: warm.size };
    },
  };
}
