/**
 * Runs a Vercel Node.js function locally the way Vercel's own launcher does, for the runtime suites, the check of
 * `vercel build`'s output and the cold-start benchmark: @vercel/node's dev server (dist/dev-server.mjs, what
 * `vercel dev` runs for a Node.js function) in a child process on Node 24, in the function's directory. It loads the
 * entry, takes its per-method Web handlers as Vercel does, serves them over HTTP on 127.0.0.1 (a port the OS picks),
 * and provides Vercel's request context (`waitUntil`). We drive its IPC protocol: it sends its address once
 * listening, and settles pending work then exits on "shutdown".
 *
 * The function's "internet" is `outbound`, as in scripts/edge/runtimes.ts: a module preloaded into the child
 * (`--import`) sends every fetch to a host other than 127.0.0.1 to a server of this process, which answers it with
 * `outbound` (tests serve Yahoo Finance's chart API from recorded bars), or fails.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { getRequestListener } from "@hono/node-server";
import { vercelEntry } from "../build_vercel.js";
import { REPO_ROOT } from "../edge/embed.js";
import type { Outbound, RunningEdge, StartOptions } from "../edge/runtimes.js";

/** The header that carries the address a function fetched, from the preloaded module to the outbound server. */
const OUTBOUND_URL = "x-edgeml-outbound-url";

/** Preloaded into the function's process: every fetch that leaves 127.0.0.1 goes to the outbound server instead. */
const OUTBOUND_PRELOAD = `
const outbound = process.env.EDGEML_OUTBOUND_URL;
const local = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  const { hostname } = new URL(request.url);
  if (hostname === "127.0.0.1" || hostname === "localhost") return local(request);
  const headers = new Headers(request.headers);
  headers.set(${JSON.stringify(OUTBOUND_URL)}, request.url);
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
  return local(outbound, { method: request.method, headers, body });
};
`;

function vercelDevServer(): string {
  const require = createRequire(import.meta.url);
  const vercelNode = dirname(
    require.resolve("@vercel/node/package.json", {
      paths: [dirname(require.resolve("vercel/package.json"))],
    }),
  );
  return join(vercelNode, "dist/dev-server.mjs");
}

const refuse: Outbound = async (request) => {
  throw new TypeError(`edgeml test runtime: no network (outbound fetch of ${request.url})`);
};

/** Where `vercel build` puts the serving function's entry inside its directory. */
export const NODE_ENTRY = "api/[[...route]].js";

export interface NodeFunction {
  /** The function's directory: a `.func` of `.vercel/output`, or one laid out like it. */
  dir: string;
  /** The entry, relative to `dir`: `api/[[...route]].js`. */
  entrypoint: string;
}

/** Starts the function in Vercel's launcher and answers once it listens. */
export async function launchNodeFunction(
  fn: NodeFunction,
  options: Omit<StartOptions, "bundle"> = {},
): Promise<RunningEdge> {
  await mkdir(join(REPO_ROOT, ".tmp"), { recursive: true });
  const scratch = await mkdtemp(join(REPO_ROOT, ".tmp/vercel-node-launcher-"));
  const preload = join(scratch, "outbound.mjs");
  await writeFile(preload, OUTBOUND_PRELOAD);
  const answer = options.outbound ?? refuse;
  const outbound = createServer(
    getRequestListener(async (request) => {
      const url = request.headers.get(OUTBOUND_URL) ?? "";
      const headers = new Headers(request.headers);
      headers.delete(OUTBOUND_URL);
      headers.delete("host");
      const body =
        request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      return answer(new Request(url, { method: request.method, headers, body }));
    }),
  );
  outbound.listen(0, "127.0.0.1");
  await once(outbound, "listening");
  const outboundPort = (outbound.address() as AddressInfo).port;

  const logs: string[] = [];
  const child: ChildProcess = spawn(process.execPath, [vercelDevServer()], {
    cwd: fn.dir,
    // Only what the function is given: no variable of this process (a store's URL, say) leaks into it.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...options.env,
      VERCEL_DEV_ENTRYPOINT: fn.entrypoint,
      NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
      EDGEML_OUTBOUND_URL: `http://127.0.0.1:${outboundPort}/`,
    },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      for (const text of chunk.split("\n")) if (text.trim()) logs.push(text);
    });
  }
  const exited = once(child, "exit");
  const stop = async () => {
    try {
      if (child.exitCode === null && child.signalCode === null) {
        // The launcher settles pending waitUntil work, then exits. A channel that closed meanwhile (the launcher
        // exits by itself when the entry failed to load) reports to the callback instead of throwing.
        child.send?.("shutdown", (error) => {
          if (error) child.kill();
        });
        await exited;
      }
    } finally {
      outbound.close();
      await rm(scratch, { recursive: true, force: true });
    }
  };
  const listening = await Promise.race([
    once(child, "message").then(([address]) => address as AddressInfo),
    exited.then(([code]) => {
      throw new Error(
        `edgeml: Vercel's Node launcher exited with ${code} before listening:\n${logs.join("\n")}`,
      );
    }),
  ]).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  const base = `http://127.0.0.1:${listening.port}`;
  return {
    logs,
    async fetch(path, init = {}) {
      const headers = new Headers(init.headers);
      // Vercel's proxy sets these; the launcher rebuilds the request's URL from them.
      headers.set("x-forwarded-host", "edgeml.test");
      headers.set("x-forwarded-proto", "http");
      try {
        return await fetch(new URL(path, base), { ...init, headers });
      } catch (error) {
        // The launcher closes the connection when the entry failed to load: what the function logged says why.
        throw new Error(`edgeml: the Node function did not answer ${path}; its log:\n${logs.join("\n")}`, {
          cause: error,
        });
      }
    },
    close: stop,
  };
}

/**
 * A Node.js function bundle (bundleVercelNode) laid out as `vercel build` lays it out, in a new directory: the
 * generated entry at api/[[...route]].js re-exporting dist/vercel/node.js. The directory sits under the repository, so
 * that onnxruntime-web resolves from its node_modules as it does from the function's. Remove it when done.
 */
export async function writeNodeFunction(bundle: string): Promise<NodeFunction> {
  await mkdir(join(REPO_ROOT, ".tmp"), { recursive: true });
  const dir = await mkdtemp(join(REPO_ROOT, ".tmp/vercel-node-"));
  await mkdir(join(dir, "api"), { recursive: true });
  await mkdir(join(dir, "dist/vercel"), { recursive: true });
  await writeFile(join(dir, "package.json"), '{ "type": "module" }\n');
  await writeFile(join(dir, NODE_ENTRY), vercelEntry("nodejs"));
  await writeFile(join(dir, "dist/vercel/node.js"), bundle);
  return { dir, entrypoint: NODE_ENTRY };
}

/** A Node.js function bundle (bundleVercelNode) in Vercel's launcher (see writeNodeFunction). */
export async function startVercelNode(options: StartOptions): Promise<RunningEdge> {
  const fn = await writeNodeFunction(options.bundle);
  try {
    const running = await launchNodeFunction(fn, options);
    return {
      ...running,
      async close() {
        await running.close();
        await rm(fn.dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(fn.dir, { recursive: true, force: true });
    throw error;
  }
}
