/**
 * The bench server (bench/server.ts) from the benches' side: start it in a child process, ask it for its CPU time,
 * stop it; and the markdown tables the benches write. Shared by bench/inference.bench.ts and bench/binary.bench.ts.
 */
import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import type { ServerMessage } from "./server.js";
import { NODE_TS_LOADER, REPO_ROOT } from "./support.js";

/** A markdown table, first column left-aligned and the others right-aligned, padded as biome formats it. */
export function table(header: string[], rows: string[][]): string {
  const width = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${width.map((w, i) => (i === 0 ? (cells[i] ?? "").padEnd(w) : (cells[i] ?? "").padStart(w))).join(" | ")} |`;
  const rule = `| ${width.map((w, i) => (i === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

export function startServer(): Promise<{ child: ChildProcess; port: number; adminToken: string }> {
  return new Promise((done, fail) => {
    const child = fork(join(REPO_ROOT, "bench", "server.ts"), [], {
      cwd: REPO_ROOT,
      // As `npm start` loads the server (scripts/node-ts.mjs says why not tsx).
      execArgv: ["--import", NODE_TS_LOADER],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.once("error", fail);
    child.once("exit", (code) => fail(new Error(`bench/server.ts exited with ${code} before listening`)));
    child.once("message", (message: ServerMessage) => {
      if (message.type !== "listening")
        return fail(new Error(`unexpected message ${JSON.stringify(message)}`));
      child.removeAllListeners("exit");
      done({ child, port: message.port, adminToken: message.adminToken });
    });
  });
}

export function stopServer(child: ChildProcess): Promise<Extract<ServerMessage, { type: "stopped" }>> {
  return new Promise((done, fail) => {
    let stats: Extract<ServerMessage, { type: "stopped" }> | undefined;
    child.on("message", (message: ServerMessage) => {
      if (message.type === "stopped") stats = message;
    });
    child.once("exit", (code) =>
      code === 0 && stats ? done(stats) : fail(new Error(`bench/server.ts stopped with code ${code}`)),
    );
    child.send("stop");
  });
}

export function serverCpuMicros(child: ChildProcess): Promise<number> {
  return new Promise((done) => {
    const answer = (message: ServerMessage) => {
      if (message.type !== "cpu") return;
      child.off("message", answer);
      done(message.micros);
    };
    child.on("message", answer);
    child.send("cpu");
  });
}
