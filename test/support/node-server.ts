import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";

export interface RunningServer {
  /** http://127.0.0.1:<port>, the port the OS picked. */
  base: string;
  /** What the server printed so far (stdout and stderr). */
  output: () => string;
  /** SIGTERM, then waits for the exit. */
  stop: () => Promise<void>;
}

/**
 * `npm start`'s script (src/runtime/node/server.ts) in a child process on 127.0.0.1, on a port the OS picks (PORT=0),
 * with `env` over this process's. Node 24 from node_modules/.bin first on the PATH, as npm scripts run it (the
 * machine's bare `node` may be older). Resolves once the banner names the address.
 */
export async function startNodeServer(env: Record<string, string>): Promise<RunningServer> {
  const bin = join(REPO_ROOT, "node_modules/.bin");
  // As `npm start` runs it: Node with scripts/node-ts.mjs as the TypeScript loader.
  const child: ChildProcess = spawn(
    join(bin, "node"),
    ["--import", "./scripts/node-ts.mjs", "src/runtime/node/server.ts"],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, PORT: "0", HOST: "127.0.0.1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const base = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk;
      const match = /edgeml listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match?.[1]) resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
  });
  return {
    base,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
