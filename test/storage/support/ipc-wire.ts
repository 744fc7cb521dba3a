import {
  batchingSender,
  createIpcClient,
  type IpcClient,
  type PrimaryMessage,
  type WorkerMessage,
} from "../../../src/storage/node/ipc-channel.js";
import { createIpcHost, type HostedStores, type IpcHost } from "../../../src/storage/node/ipc-host.js";

/**
 * A primary and its workers in one process, wired as node:cluster wires them: every message is JSON text on the way
 * (what `process.send` does), batched per turn as src/runtime/node/cluster.ts sends them, and arrives on a later
 * turn, in the order it was sent. `kill` is a worker's death as the
 * primary sees it (its exit event): its wire goes dead both ways and the host detaches it.
 */
export function ipcWire(stores: HostedStores = {}) {
  const host: IpcHost = createIpcHost(stores);
  let nextId = 1;
  const workers = new Map<number, { alive: boolean; client: IpcClient }>();
  const deliver = (alive: () => boolean, message: unknown, to: (message: unknown) => void) => {
    const text = JSON.stringify(message);
    setImmediate(() => {
      if (alive()) to(JSON.parse(text));
    });
  };
  return {
    host,
    /** A new worker's client, attached to the host. */
    worker(): { id: number; client: IpcClient } {
      const id = nextId++;
      const listeners = new Set<(message: unknown) => void>();
      const alive = () => workers.get(id)?.alive === true;
      host.attach(
        id,
        batchingSender<PrimaryMessage>((message) =>
          deliver(alive, message, (m) => {
            for (const listener of listeners) listener(m);
          }),
        ),
      );
      const client = createIpcClient({
        send: batchingSender<WorkerMessage>((message) => deliver(alive, message, (m) => host.receive(id, m))),
        onMessage: (listener) => {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      });
      workers.set(id, { alive: true, client });
      return { id, client };
    },
    kill(id: number) {
      const worker = workers.get(id);
      if (!worker) return;
      worker.alive = false;
      worker.client.close("worker killed");
      host.detach(id);
    },
  };
}
