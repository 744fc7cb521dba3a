import { randomBytes } from "node:crypto";
import { createApp } from "../app.js";
import { nodeDeps } from "../runtime/node/deps.js";

/** How the CLI reaches the API: a running server by URL, or the app built in this process on the local registry. */
export interface ApiClient {
  readonly target: string;
  request(path: string, init?: RequestInit): Promise<Response>;
}

/**
 * With a URL, requests go to that server with `token` as the admin bearer. Without one, the CLI builds the app in
 * process on the embedded registry (MODELS_DIR, default ./models) with a one-off admin token: the same code path
 * as the server, no server needed.
 */
export function createApiClient(options: { url?: string; token?: string }): ApiClient {
  if (options.url) {
    const base = options.url.replace(/\/+$/, "");
    return {
      target: base,
      request(path, init = {}) {
        const headers = new Headers(init.headers);
        if (options.token) headers.set("authorization", `Bearer ${options.token}`);
        return fetch(`${base}${path}`, { ...init, headers });
      },
    };
  }
  const token = randomBytes(24).toString("hex");
  const env: Record<string, string | undefined> = { ...process.env, ADMIN_TOKEN: token };
  const { app } = createApp({ ...nodeDeps(env), logError: () => {} });
  return {
    target: `local registry (${env.MODELS_DIR || "models/"})`,
    async request(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${token}`);
      return app.request(path, { ...init, headers });
    },
  };
}

/** Throws the API's own error message when a response is not 2xx. */
export async function expectOk<T>(response: Response): Promise<T> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text };
  }
  if (!response.ok) {
    const error = (body as { error?: string; code?: string; details?: unknown }) ?? {};
    const details = error.details ? `\n${JSON.stringify(error.details, null, 2)}` : "";
    throw new CliError(
      `${error.error ?? `HTTP ${response.status}`} [${error.code ?? response.status}]${details}`,
    );
  }
  return body as T;
}

export class CliError extends Error {}
