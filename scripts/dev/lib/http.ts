import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";

/** The one address every dev stand-in listens on: nothing here may be reachable from outside this machine. */
export const LOOPBACK = "127.0.0.1";

type FetchHandler = (request: Request) => Response | Promise<Response>;

/**
 * An HTTP server on 127.0.0.1 that can be stopped and started again on the same port, so that a test can
 * simulate an outage (connection refused) and a recovery without the clients under test changing their URL.
 */
export class RestartableServer {
  readonly #fetch: FetchHandler;
  #server: Server | undefined;
  #port: number;

  constructor(fetch: FetchHandler, port = 0) {
    this.#fetch = fetch;
    this.#port = port;
  }

  /** The bound port; 0 until the first `start()` when the OS was asked to pick. */
  get port(): number {
    return this.#port;
  }

  get origin(): string {
    return `http://${LOOPBACK}:${this.#port}`;
  }

  get listening(): boolean {
    return this.#server?.listening ?? false;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    // overrideGlobalObjects: false keeps Node's own Request/Response in place; the clients under test run in
    // the same process and must see the globals they would see in production.
    const server = createServer(getRequestListener(this.#fetch, { overrideGlobalObjects: false }));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#port, LOOPBACK, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Clients keep connections alive; without this, close() waits for them to go idle and time out.
      server.closeAllConnections();
    });
  }
}

/** A JSON response; `init.headers` may add headers. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  return match?.[1];
}
