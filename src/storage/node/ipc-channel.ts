import { EdgeMLError, ERROR_STATUS, type ErrorCode, errorMessage } from "../../errors.js";

/**
 * The wire between `npm start`'s workers and their primary (src/runtime/node/cluster.ts), which hosts what the
 * workers must share: the prediction cache and its single flight, metrics, usage counters, rate limits, training
 * jobs and the training lock (src/storage/node/ipc-host.ts). A worker calls a port's method and gets its answer;
 * the primary asks every worker to act on a topic and waits for each one's answer (flush its telemetry before a
 * metrics read; drop its cached pointers after another worker changed them). Messages are plain JSON objects: on
 * node:cluster they travel over the worker's IPC pipe (`process.send`), in tests over any pair of channels.
 */

/** The ports the primary hosts, by the name a call gives. */
export type HostedPort =
  | "cache"
  | "ratelimit"
  | "counters"
  | "metrics"
  | "jobs"
  | "flights"
  | "locks"
  | "pointers"
  | "registry";

/**
 * Worker → primary: call `port.method(...args)`; the primary answers with a reply of the same id, except to id 0 (a
 * `send`: a write nobody waits for).
 */
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

/**
 * What the primary asks every worker to do before it answers a call: `flush`, write every telemetry record made so
 * far (a metrics read); `pointers`, forget the pointers read from the file (another worker changed them);
 * `registry`, forget the registry's listing (another worker registered a version).
 */
export type Topic = "flush" | "pointers" | "registry";

/** Primary → worker: act on `topic`, then answer `done` with the same id. */
export interface NotifyMessage {
  edgeml: "notify";
  id: number;
  topic: Topic;
}

export interface DoneMessage {
  edgeml: "done";
  id: number;
}

export type WorkerMessage = CallMessage | DoneMessage;
export type PrimaryMessage = ReplyMessage | NotifyMessage;

/** Several messages in one: what `batchingSender` sends; receivers unpack it in order. */
export interface BatchMessage<M> {
  edgeml: "batch";
  messages: M[];
}

/**
 * A sender that sends what it is given during one turn of the event loop as one message, in order, once the turn's
 * I/O callbacks have run (setImmediate). Under load a worker handles many requests per turn, each making a call or
 * two: one pipe write and one parse for all of them instead of one each (docs/benchmarks.md, Multi-core). A lone
 * message is sent as itself.
 */
export function batchingSender<M>(send: (message: M | BatchMessage<M>) => void): (message: M) => void {
  let queue: M[] = [];
  const flush = () => {
    const messages = queue;
    queue = [];
    if (messages.length === 1) send(messages[0] as M);
    else send({ edgeml: "batch", messages });
  };
  return (message) => {
    queue.push(message);
    if (queue.length === 1) setImmediate(flush);
  };
}

/** The messages `message` carries: a batch's, in order, or itself. */
export function unpack(message: unknown): unknown[] {
  return isEdgemlMessage(message) && message.edgeml === "batch" && Array.isArray(message.messages)
    ? message.messages
    : [message];
}

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
  /**
   * Sends `port.method(...args)` with no answer: for writes to the primary's memory, which cannot fail. It still
   * takes effect before anything sent after it (a later call, a notification's `done`). Throws when the wire is gone.
   */
  send(port: HostedPort, method: string, args: unknown[]): void;
  /** What this process runs when the primary notifies `topic`; a topic with no handler is done at once. */
  on(topic: Topic, handler: () => void | Promise<void>): void;
  /** Fails every call waiting for an answer (the primary is gone), and every later call. */
  close(reason: string): void;
  /** Calls sent and not yet answered. */
  readonly pending: number;
}

/**
 * The worker's end of the wire: numbered calls with their answers, and notifications answered once handled. A
 * handler that fails is answered all the same (a metrics read must not hang on one worker's outage); the failure is
 * the handler's to report.
 */
export function createIpcClient(channel: IpcChannel<WorkerMessage, unknown>): IpcClient {
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let next = 1;
  let closed: string | undefined;
  const handlers = new Map<Topic, () => void | Promise<void>>();

  const receive = (message: unknown) => {
    if (!isEdgemlMessage(message)) return;
    if (message.edgeml === "reply") {
      const reply = message as unknown as ReplyMessage;
      const call = waiting.get(reply.id);
      if (!call) return;
      waiting.delete(reply.id);
      if (reply.ok) call.resolve(reply.value);
      else call.reject(fromWireError(reply.error));
    } else if (message.edgeml === "notify") {
      const { id, topic } = message as unknown as NotifyMessage;
      void Promise.resolve()
        .then(() => handlers.get(topic)?.())
        .catch(() => {})
        .then(() => {
          if (closed === undefined) channel.send({ edgeml: "done", id });
        });
    }
  };
  channel.onMessage((message) => {
    for (const one of unpack(message)) receive(one);
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
    send(port, method, args) {
      if (closed !== undefined) throw new Error(closed);
      channel.send({ edgeml: "call", id: 0, port, method, args });
    },
    on(topic, handler) {
      handlers.set(topic, handler);
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
