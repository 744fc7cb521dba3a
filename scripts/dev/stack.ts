/**
 * `npm run dev:stack [-- --port 3000] [--models-dir models] [--market-data ../shared/data/market]`: the production
 * path on one machine. Starts redis-server, the Upstash REST bridge, the Edge Config and Blob emulators, deploys
 * models/ into them (`scripts/deploy_models.ts`), then starts the Node server wired to the production adapters
 * (Vercel Blob, Edge Config, Upstash Redis) through the same environment variables a deployment sets. Prints the
 * URLs and the environment; Ctrl-C stops everything.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_MODELS_DIR } from "../../src/runtime/node/deps.js";
import { deployModels } from "../deploy_models";
import { failCli, isMain, parsePort, runUntilSignal } from "./lib/cli";
import { type LocalStack, startLocalStack } from "./local-stack";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
/** The dev stack's admin token: a fixed, documented value; everything listens on 127.0.0.1 only. */
export const DEV_ADMIN_TOKEN = "edgeml-dev-admin-token";

export interface DevStackOptions {
  port: number;
  modelsDir: string;
  marketDataDir?: string;
  log?: (line: string) => void;
}

export interface DevStack {
  stack: LocalStack;
  app: ChildProcess;
  url: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Starts the services, deploys the models and starts the app; resolves once the app answers /v2/health/ready. */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const log = options.log ?? console.log;
  const stack = await startLocalStack();
  let app: ChildProcess | undefined;
  const close = async () => {
    if (app && app.exitCode === null && app.signalCode === null) {
      const exited = new Promise((done) => app?.once("exit", done));
      app.kill("SIGTERM");
      await exited;
    }
    await stack.close();
  };
  try {
    log(`redis-server        ${stack.redis.url}`);
    log(`Upstash REST bridge ${stack.upstash.url}`);
    log(`Edge Config         ${stack.edgeConfig.url}  (id ${stack.edgeConfig.id})`);
    log(`Vercel Blob         ${stack.blob.url}`);
    // The Blob client in this process (the deploy) reads its API URL from the environment.
    process.env.VERCEL_BLOB_API_URL = stack.env.VERCEL_BLOB_API_URL;
    const env: Record<string, string> = {
      ...stack.env,
      ADMIN_TOKEN: DEV_ADMIN_TOKEN,
      ...(options.marketDataDir ? { MARKET_DATA_DIR: options.marketDataDir } : {}),
    };
    log("");
    const report = await deployModels({ modelsDir: options.modelsDir, env, log });
    if (report.conflicts.length + report.errors.length > 0) log("deploy: finished with problems (see above)");

    const url = `http://127.0.0.1:${options.port}`;
    app = spawn(
      process.execPath,
      [resolve(REPO_ROOT, "node_modules/tsx/dist/cli.mjs"), resolve(REPO_ROOT, "src/runtime/node/server.ts")],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env, PORT: String(options.port), HOST: "127.0.0.1" },
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    await waitForReady(url, app);
    log("");
    log("the app runs on the production adapters; to point a shell (or `npm start`) at this stack:");
    for (const [key, value] of Object.entries(env)) log(`  export ${key}='${value}'`);
    log("");
    log(`try: curl -s ${url}/v2/health/ready`);
    log(`     curl -s -H 'authorization: Bearer ${DEV_ADMIN_TOKEN}' ${url}/api/ml/models`);
    log("Ctrl-C stops the app and every service.");
    return { stack, app, url, env, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Polls readiness; fails if the app exits first or does not come up in time. */
async function waitForReady(url: string, app: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (app.exitCode !== null)
      throw new Error(`the app exited with code ${app.exitCode} before it was ready`);
    const ready = await fetch(`${url}/v2/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the app did not answer ${url}/v2/health/ready within ${timeoutMs / 1000} s`);
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      "models-dir": { type: "string" },
      "market-data": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log("usage: npm run dev:stack -- [--port 3000] [--models-dir models] [--market-data DIR]");
    process.exit(0);
  }
  const marketData = values["market-data"] ?? process.env.MARKET_DATA_DIR;
  startDevStack({
    port: parsePort(values.port ?? process.env.PORT ?? "3000"),
    modelsDir: resolve(values["models-dir"] ?? process.env.MODELS_DIR ?? DEFAULT_MODELS_DIR),
    marketDataDir: marketData ? resolve(marketData) : undefined,
  }).then(
    (dev) => {
      let stopping = false;
      dev.app.once("exit", (code) => {
        if (stopping) return;
        console.error(`dev:stack: the app exited (code ${code}); stopping the services`);
        void dev.stack.close().then(() => process.exit(code ?? 1));
      });
      runUntilSignal("dev:stack", () => {
        stopping = true;
        return dev.close();
      });
    },
    (error: unknown) => failCli("dev:stack", error),
  );
}
