/**
 * The inference worker thread: its own onnxruntime-web runtime, with a ceiling on its wasm memory, running the
 * models the isolating engine does not trust inline (src/inference/node/isolated-engine.ts). One request at a time.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createOrtEngine } from "../engine.js";
import {
  errorToWire,
  fromWire,
  toWire,
  type WireTensor,
  type WorkerRequest,
  type WorkerResponse,
  type WorkerSettings,
} from "../worker-protocol.js";

const settings = workerData as WorkerSettings;
const port = parentPort;
if (!port) throw new Error("edgeml: inference-worker.ts runs as a worker thread only");

const engine = createOrtEngine({
  maxSessions: settings.maxSessions,
  maxSessionBytes: settings.maxSessionBytes,
  maxOutputBytes: settings.maxOutputBytes,
  memoryLimitBytes: settings.memoryLimitBytes,
  // The parent enforces deadlines by terminating this thread; a run here is never abandoned half-way.
  timeoutMs: 2 ** 31 - 1,
});

class NeedBytes extends Error {}

async function handle(request: WorkerRequest): Promise<WorkerResponse> {
  const memoryBytes = () => engine.stats().memoryBytes ?? null;
  const load = async () => {
    if (request.op === "evict" || !request.bytes) throw new NeedBytes();
    return request.bytes;
  };
  try {
    if (request.op === "evict") {
      engine.evict(request.key);
      return { id: request.id, ok: true, memoryBytes: memoryBytes() };
    }
    if (request.op === "signature") {
      const signature = await engine.signature(request.key, load);
      return { id: request.id, ok: true, signature, memoryBytes: memoryBytes() };
    }
    const feeds = Object.fromEntries(Object.entries(request.feeds).map(([name, t]) => [name, fromWire(t)]));
    const result = await engine.run({ key: request.key, load, feeds, outputs: request.outputs });
    const outputs: Record<string, WireTensor> = {};
    for (const [name, tensor] of Object.entries(result)) outputs[name] = toWire(tensor);
    return { id: request.id, ok: true, outputs, memoryBytes: memoryBytes() };
  } catch (error) {
    if (error instanceof NeedBytes)
      return { id: request.id, ok: false, needBytes: true, memoryBytes: memoryBytes() };
    return { id: request.id, ok: false, error: errorToWire(error), memoryBytes: memoryBytes() };
  }
}

port.on("message", (request: WorkerRequest) => {
  void handle(request).then((response) => {
    // Output buffers move to the parent instead of being copied: the worker has no further use for them.
    const transfer =
      response.ok && response.outputs
        ? Object.values(response.outputs).flatMap((t) =>
            ArrayBuffer.isView(t.data) && t.data.buffer instanceof ArrayBuffer ? [t.data.buffer] : [],
          )
        : [];
    port.postMessage(response, transfer);
  });
});
