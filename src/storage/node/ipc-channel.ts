import { EdgeMLError, ERROR_STATUS, type ErrorCode, errorMessage } from "../../errors.js";

/**
 * The wire between `npm start`'s workers and their primary (src/runtime/node/cluster.ts), which hosts what the
 * workers must share: the prediction cache and its single flight, metrics, usage counters, rate limits, training
 * jobs and the training lock (src/storage/node/ipc-host.ts). A worker calls a port's method and gets its answer;
 * the primary asks a worker to flush its telemetry before a metrics read. Messages are plain JSON objects: on
 * node:cluster they travel over the worker's IPC pipe (`process.send`), in tests over any pair of channels.
 */

/** The ports the primary hosts, by the name a call gives. */
export type HostedPort = "cache" | "ratelimit" | "counters" | "metrics" | "jobs" | "flights" | "locks";

/** Worker → primary: call `port.method(...args)`; the primary answers with a reply of the same id. */
export interface CallMessage {
  edgeml: "call";
  id: number;
  port: HostedPort;
  method: string;
  args: unknown[];
}

/** An error as it crosses the wire: an EdgeMLError keeps its code, message and details; anything else its message. */
export interface WireError {
  code?: string;
  message: string;
  details?: unknown;
}

export type ReplyMessage =
  | { edgeml: "reply"; id: number; ok: true; value: unknown }
  | { edgeml: "reply"; id: number; ok: false; error: WireError };

/** Primary → worker: write every telemetry record made so far, then answer `flushed` with the same id. */
export interface FlushMessage {
  edgeml: "flush";
  id: number;
}

export interface FlushedMessage {
  edgeml: "flushed";
  id: number;
}

export type WorkerMessage = CallMessage | FlushedMessage;
export type PrimaryMessage = ReplyMessage | FlushMessage;

/** One side of the wire: what a process sends, and the messages it receives. */
export interface IpcChannel<Out, In = unknown> {
  send(message: Out): void;
  /** Subscribes to what arrives; returns the unsubscribe. */
  onMessage(listener: (message: In) => void): () => void;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null;

/** Whether `message` is one of ours (a cluster's IPC pipe also carries node's own internal messages). */
export function isEdgemlMessage(message: unknown): message is { edgeml: string } & Record<string, unknown> {
  return isObject(message) && typeof message.edgeml === "string";
}

const PREFIX = "edgeml: ";

export function toWireError(error: unknown): WireError {
  if (error instanceof EdgeMLError) {
    const message = error.message.startsWith(PREFIX) ? error.message.slice(PREFIX.length) : error.message;
    return { code: error.code, message, ...(error.details !== undefined && { details: error.details }) };
  }
  return { message: errorMessage(error) };
}

/** The error a wire error stands for: the same EdgeMLError (code, message, details) when it was one. */
export function fromWireError(wire: WireError): Error {
  if (wire.code !== undefined && Object.hasOwn(ERROR_STATUS, wire.code)) {
    return new EdgeMLError(wire.code as ErrorCode, wire.message, { details: wire.details });
  }
  return new Error(wire.message);
}

export interface IpcClient {
  /** Calls `port.method(...args)` in the primary. Rejects with the primary's error, or when the wire is gone. */
  call(port: HostedPort, method: string, args: unknown[]): Promise<unknown>;
  /** What this process runs when the primary asks for a flush (its telemetry's flush); until set, a flush is immediate. */
  onFlush(flush: () => Promise<void>): void;
  /** Fails every call waiting for an answer (the primary is gone), and every later call. */
  close(reason: string): void;
  /** Calls sent and not yet answered. */
  readonly pending: number;
}

/**
 * The worker's end of the wire: numbered calls with their answers, and flushes on request. A flush that fails is
 * answered all the same (a metrics read must not hang on one worker's outage); the failure is the flush's to report.
 */
export function createIpcClient(channel: IpcChannel<WorkerMessage, unknown>): IpcClient {
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let next = 1;
  let closed: string | undefined;
  let flush: () => Promise<void> = async () => {};

  channel.onMessage((message) => {
    if (!isEdgemlMessage(message)) return;
    if (message.edgeml === "reply") {
      const reply = message as unknown as ReplyMessage;
      const call = waiting.get(reply.id);
      if (!call) return;
      waiting.delete(reply.id);
      if (reply.ok) call.resolve(reply.value);
      else call.reject(fromWireError(reply.error));
    } else if (message.edgeml === "flush") {
      const { id } = message as unknown as FlushMessage;
      void flush()
        .catch(() => {})
        .then(() => {
          if (closed === undefined) channel.send({ edgeml: "flushed", id });
        });
    }
  });

  return {
    call(port, method, args) {
      if (closed !== undefined) return Promise.reject(new Error(closed));
      const id = next++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        try {
          channel.send({ edgeml: "call", id, port, method, args });
        } catch (error) {
          waiting.delete(id);
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    },
    onFlush(handler) {
      flush = handler;
    },
    close(reason) {
      closed = reason;
      for (const call of waiting.values()) call.reject(new Error(reason));
      waiting.clear();
    },
    get pending() {
      return waiting.size;
    },
  };
}
