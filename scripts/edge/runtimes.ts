/**
 * Runs an edge bundle in a local stand-in of its platform, for the runtime suites and the cold-start benchmark:
 *
 * - Vercel Edge: Vercel's `edge-runtime` package with code generation from strings and wasm disallowed, as in
 *   production (its default allows both, which would let tests pass that production fails). The wasm is compiled
 *   here, outside the sandbox, as Vercel compiles `?module` imports at deploy time, and bound as a global.
 * - workerd: Cloudflare's runtime through miniflare, the wasm a CompiledWasm module. Miniflare's socket listens on
 *   127.0.0.1 on a port the OS picks.
 *
 * Both take the process's "internet" as a function: every outbound fetch of the bundle goes to `outbound` (tests
 * serve Yahoo Finance's chart API from recorded bars), or fails.
 */
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import { EdgeRuntime } from "edge-runtime";
import { Miniflare } from "miniflare";
import { type EdgeRuntimeScript, edgeRuntimeScript, OUTPUTS } from "./bundle.js";
import { installedOrtWasm, REPO_ROOT, WASM_NAME } from "./embed.js";

export type Outbound = (request: Request) => Promise<Response>;

export interface RunningEdge {
  /** Sends a request to the bundle's fetch handler; `path` is resolved against http://edgeml.test. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Lines the bundle logged (console.log/warn/error), newest last. */
  logs: string[];
  /** Evaluates an expression inside the sandbox (edge-runtime only), for checks of the sandbox itself. */
  evaluate?: (code: string) => Promise<unknown>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** The bundle's code (bundleEdge of the matching target). */
  bundle: string;
  /** Environment variables of the deployment. */
  env?: Record<string, string>;
  outbound?: Outbound;
  /** A module compiled already (the benchmark times compiling); default: compiled from the installed wasm. */
  wasmModule?: WebAssembly.Module;
}

const BASE = "http://edgeml.test";

const refuseOutbound: Outbound = async (request) => {
  throw new TypeError(`edgeml test runtime: no network (outbound fetch of ${request.url})`);
};

/**
 * A request of another realm (the sandbox's, or miniflare's undici) as one of this process: URL, method, headers and
 * body only. The signal stays behind: an AbortSignal cannot cross realms, and the tests' outbound answers at once.
 */
async function toLocalRequest(
  input: { url: string; method: string; headers: Iterable<[string, string]> } & Partial<Body>,
): Promise<Request> {
  const body = input.method === "GET" || input.method === "HEAD" ? undefined : await input.arrayBuffer?.();
  return new Request(input.url, { method: input.method, headers: [...input.headers], body });
}

function captureConsole(logs: string[]) {
  const line =
    (level: string) =>
    (...args: unknown[]) =>
      logs.push(
        `${level}: ${args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : typeof a === "string" ? a : JSON.stringify(a))).join(" ")}`,
      );
  return {
    log: line("log"),
    info: line("info"),
    warn: line("warn"),
    error: line("error"),
    debug: line("debug"),
  };
}

/** The Vercel bundle in edge-runtime, strict. */
export async function startEdgeRuntime(options: StartOptions): Promise<RunningEdge> {
  return runEdgeRuntimeScript(await edgeRuntimeScript(options.bundle, OUTPUTS.vercel.file), options);
}

/** A script prepared by edgeRuntimeScript, in a new strict edge-runtime (the benchmark prepares it ahead). */
export async function runEdgeRuntimeScript(
  { script, wasm }: EdgeRuntimeScript,
  options: Omit<StartOptions, "bundle">,
): Promise<RunningEdge> {
  const bindings: Record<string, WebAssembly.Module> = {};
  for (const [name, file] of Object.entries(wasm)) {
    bindings[name] =
      options.wasmModule && basename(file) === WASM_NAME
        ? options.wasmModule
        : await WebAssembly.compile(await readFile(file));
  }
  const logs: string[] = [];
  const outbound = options.outbound ?? refuseOutbound;
  const runtime = new EdgeRuntime({
    initialCode: script,
    codeGeneration: { strings: false, wasm: false },
    extend: (context) => {
      Object.assign(context, {
        module: {},
        process: { env: { ...options.env } },
        console: captureConsole(logs),
        ...bindings,
        fetch: async (input: RequestInfo | URL, init: RequestInit = {}) => {
          const url = typeof input === "string" || input instanceof URL ? String(input) : input.url;
          const method =
            init.method ?? (typeof input === "object" && "method" in input ? input.method : "GET");
          const headers = new Headers(
            init.headers ?? (typeof input === "object" && "headers" in input ? input.headers : {}),
          );
          return outbound(new Request(url, { method, headers, body: init.body ?? undefined }));
        },
      });
      return context;
    },
  });
  const pending: Promise<unknown>[] = [];
  return {
    logs,
    evaluate: async (code) => runtime.evaluate(code),
    async fetch(path, init = {}) {
      const headers = new Headers(init.headers);
      // Vercel's fetch-event wrapper rebuilds the URL from these, as Vercel's proxy sets them.
      headers.set("x-forwarded-host", "edgeml.test");
      headers.set("x-forwarded-proto", "http");
      const response = await runtime.dispatchFetch(new URL(path, BASE).toString(), { ...init, headers });
      pending.push(response.waitUntil());
      // Copied into this realm, so callers can use it like any Response.
      return new Response(await response.arrayBuffer(), {
        status: response.status,
        headers: new Headers([...response.headers]),
      });
    },
    async close() {
      await Promise.allSettled(pending);
    },
  };
}

/** The compatibility date of wrangler.toml, so that the suites run the worker as it is deployed. */
export async function wranglerCompatibilityDate(): Promise<string> {
  const toml = await readFile(join(REPO_ROOT, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"(\d{4}-\d{2}-\d{2})"/m.exec(toml)?.[1];
  if (!date) throw new Error("edgeml: wrangler.toml has no compatibility_date");
  return date;
}

/** The worker bundle in workerd (miniflare). */
export async function startMiniflare(options: StartOptions): Promise<RunningEdge> {
  const logs: string[] = [];
  const outbound = options.outbound ?? refuseOutbound;
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    compatibilityDate: await wranglerCompatibilityDate(),
    modules: [
      { type: "ESModule", path: "/edgeml/worker.js", contents: options.bundle },
      { type: "CompiledWasm", path: `/edgeml/${WASM_NAME}`, contents: await readFile(installedOrtWasm()) },
    ],
    modulesRoot: "/edgeml",
    bindings: { ...options.env },
    outboundService: async (request: Parameters<typeof toLocalRequest>[0]) =>
      outbound(await toLocalRequest(request)) as never,
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      for (const stream of [stdout, stderr]) {
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => {
          for (const text of chunk.split("\n")) if (text.trim()) logs.push(text);
        });
      }
    },
  });
  await mf.ready;
  return {
    logs,
    async fetch(path, init = {}) {
      const response = await mf.dispatchFetch(new URL(path, BASE).toString(), init as never);
      return new Response(await response.arrayBuffer(), {
        status: response.status,
        headers: new Headers([...response.headers]),
      });
    },
    close: () => mf.dispose(),
  };
}
