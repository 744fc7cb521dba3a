import cluster, { type Worker } from "node:cluster";
import { mkdirSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import type { AppDeps } from "../../app.js";
import { consoleLogger, type Logger } from "../../logger.js";
import {
  createIpcCache,
  createIpcCounters,
  createIpcJobStore,
  createIpcMetricsStore,
  createIpcMutex,
  createIpcRateLimiter,
  createIpcSingleFlight,
  createWorkerArtifactStore,
  createWorkerPointerStore,
} from "../../storage/node/ipc-adapters.js";
import {
  batchingSender,
  createIpcClient,
  type IpcClient,
  isEdgemlMessage,
  type PrimaryMessage,
  type WorkerMessage,
} from "../../storage/node/ipc-channel.js";
import { createIpcHost, type IpcHost } from "../../storage/node/ipc-host.js";
import type { JsonFilePointerStore } from "../../storage/node/json-file-pointers.js";
import { openSqlitePredictionLog } from "../../storage/node/sqlite-prediction-log.js";
import type { Environment } from "../env-schema.js";
import { DEFAULT_PREDICTION_LOG_FILE } from "./paths.js";

/**
 * How many processes `npm start` runs: `WORKERS` when set, else the machine's available parallelism (every core).
 * One means today's single process, with no primary in between.
 */
export function workerCount(setting: number | undefined): number {
  return setting ?? Math.max(1, availableParallelism());
}

/** Consecutive workers that die before they listen, after which the primary stops: the setup is broken, not a worker. */
const MAX_FAILED_STARTS = 5;
/** How long a stopping primary waits for its workers to finish their requests before it kills them. */
const STOP_GRACE_MS = 10_000;

/** Primary → worker, beside the wire's messages: finish the requests in flight and exit. */
const STOP = { edgeml: "stop" } as const;

export interface PrimaryOptions {
  workers: number;
  /** Where every worker listens: a port number, never 0 (see freePort). */
  port: number;
  logger?: Logger;
  /** Run before the first fork, once: what must exist before several processes open it (the prediction log). */
  prepare?: () => void;
}

/**
 * The primary of a multi-process `npm start` (node:cluster): forks `workers` processes that share the listening
 * socket (on Linux the primary accepts and hands connections round-robin), hosts the stores they share
 * (src/storage/node/ipc-host.ts), replaces a worker that dies, and stops them all on SIGTERM or SIGINT. It never
 * loads the app or onnxruntime: a crash in serving cannot take it down.
 */
export function runPrimary(options: PrimaryOptions): void {
  if (options.port === 0)
    throw new Error("edgeml: runPrimary needs a port number; resolve PORT=0 with freePort");
  const logger = options.logger ?? consoleLogger;
  const host = createIpcHost();
  let stopping = false;
  let failedStarts = 0;
  let announced = false;
  const listening = new Set<number>();

  options.prepare?.();

  const fork = (): Worker => {
    const worker = cluster.fork({ PORT: String(options.port) });
    host.attach(
      worker.id,
      batchingSender<PrimaryMessage>((message) => {
        if (worker.isConnected()) worker.send(message, undefined, () => {});
      }),
    );
    worker.on("message", (message: unknown) => host.receive(worker.id, message));
    // A send to a worker that just died reports here; its exit event does the rest.
    worker.on("error", (error) => logger.warn(`worker ${worker.process.pid}: ${error.message}`));
    worker.on("listening", () => {
      failedStarts = 0;
      listening.add(worker.id);
      if (!announced && listening.size === options.workers) {
        announced = true;
        logger.info(`edgeml: all ${options.workers} workers listening (primary pid ${process.pid})`);
      }
    });
    worker.on("exit", (code, signal) => {
      host.detach(worker.id);
      const started = listening.delete(worker.id);
      if (stopping) return;
      if (!started && ++failedStarts >= MAX_FAILED_STARTS) {
        logger.error(
          `${failedStarts} workers in a row exited before listening (the last with ${signal ?? `code ${code}`}); stopping. Their errors are above.`,
        );
        stop(1);
        return;
      }
      logger.warn(
        `worker ${worker.process.pid} exited (${signal ?? `code ${code}`}); starting a replacement`,
      );
      fork();
    });
    return worker;
  };

  const stop = (exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    if (workers.length === 0) process.exit(exitCode);
    let left = workers.length;
    for (const worker of workers) {
      worker.once("exit", () => {
        if (--left === 0) process.exit(exitCode);
      });
      if (worker.isConnected()) worker.send(STOP, undefined, () => {});
      else worker.kill("SIGTERM");
    }
    setTimeout(() => {
      logger.warn(`workers still running ${STOP_GRACE_MS} ms after the stop; killing them`);
      for (const worker of workers) worker.process.kill("SIGKILL");
    }, STOP_GRACE_MS).unref();
  };

  logger.info(`edgeml: starting ${options.workers} workers (WORKERS; primary pid ${process.pid})`);
  for (let i = 0; i < options.workers; i++) fork();
  process.on("SIGINT", () => stop());
  process.on("SIGTERM", () => stop());
}

/**
 * A port the system has free on `hostname`, for PORT=0. The workers must all name the same port: node:cluster shares
 * one listening socket per address and port *as the workers ask for it*, and several `listen(0)` calls may each get a
 * port of their own (a replacement worker would then listen elsewhere). The port is free when asked; another process
 * could take it before the workers bind, which then fail loudly (EADDRINUSE).
 */
export function freePort(hostname: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, hostname, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * This worker's number (node:cluster's id: 1 to WORKERS for the first ones, higher for replacements) and whether it
 * prints the start-up banner (the first one only).
 */
export const workerPlace = () => {
  const id = cluster.worker?.id ?? 1;
  return { id, banner: id === 1 };
};

/**
 * A worker's end of the wire to its primary, over the cluster's IPC pipe. When the primary goes, so do the calls
 * waiting on it (node:cluster then ends the worker).
 */
export function connectToPrimary(): IpcClient {
  const client = createIpcClient({
    send: batchingSender<WorkerMessage>((message) => {
      process.send?.(message, undefined, {}, () => {});
    }),
    onMessage: (listener) => {
      process.on("message", listener);
      return () => process.off("message", listener);
    },
  });
  process.once("disconnect", () => client.close("edgeml: the primary process is gone"));
  return client;
}

/** Whether `message` is the primary's request to stop. */
export const isStopMessage = (message: unknown) => isEdgemlMessage(message) && message.edgeml === STOP.edgeml;

/**
 * A worker's dependencies: the Node runtime's (`base`), with every port the workers must share moved to the
 * primary: the embedded cache, counters, metrics, jobs and rate limits (a production adapter configured from the
 * environment, Upstash, is shared already and stays), the forecasts' single flight and the training lock; and the
 * pointer file and the model store, whose changes every worker hears of before the change is answered.
 */
export function workerDeps(base: AppDeps, client: IpcClient, logger: Logger = consoleLogger): AppDeps {
  const embedded = (adapter: { kind: string } | undefined) =>
    adapter === undefined || adapter.kind === "memory";
  const warn = (message: string, error: unknown) => logger.warn(message, error);
  const file = base.pointers as Partial<JsonFilePointerStore>;
  return {
    ...base,
    artifacts: createWorkerArtifactStore(base.artifacts, client, warn),
    // The file is what the workers share here; Edge Config (production) is read through its own short cache.
    pointers:
      typeof file.invalidate === "function"
        ? createWorkerPointerStore(base.pointers as JsonFilePointerStore, client, warn)
        : base.pointers,
    cache: embedded(base.cache) ? createIpcCache(client) : base.cache,
    counters: embedded(base.counters) ? createIpcCounters(client) : base.counters,
    metrics: embedded(base.metrics) ? createIpcMetricsStore(client) : base.metrics,
    jobs: embedded(base.jobs) ? createIpcJobStore(client) : base.jobs,
    rateLimiter: embedded(base.rateLimiter) ? createIpcRateLimiter(client) : base.rateLimiter,
    flights: createIpcSingleFlight(client, warn),
    trainingLock: createIpcMutex(client, "training"),
  };
}

/**
 * Creates the prediction log (its schema, write-ahead logging) before the workers start: each opens it on its first
 * forecast, and two processes must not race to create one file. A file that cannot be opened is left for the workers
 * to report (503 on use, as with one process). Nothing to do where Upstash holds the log.
 */
export function preparePredictionLog(env: Environment, logger: Logger = consoleLogger): void {
  if (env.UPSTASH_REDIS_REST_URL) return;
  const file = resolve(env.PREDICTION_LOG_FILE || DEFAULT_PREDICTION_LOG_FILE);
  try {
    mkdirSync(dirname(file), { recursive: true });
    openSqlitePredictionLog(file).close();
  } catch (error) {
    logger.warn(`the prediction log ${file} cannot be opened (forecasts will say why)`, error);
  }
}

export type { IpcHost };
