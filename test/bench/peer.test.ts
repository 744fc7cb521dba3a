import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { verifier } from "../../bench/peer/checks.js";
import { processTree, treeCpuUs } from "../../bench/peer/procfs.js";

// bench:peer itself needs Python and is not part of CI; what decides its numbers is tested here: which answers
// count as correct, and whose CPU time a server's cost includes.

describe("bench:peer checks every response", () => {
  const infer = verifier({ kind: "infer", modelName: "sk_hgb", prediction: 0.000133347519, tolerance: 1e-6 });
  const answer = (fields: Record<string, unknown>) =>
    JSON.stringify({
      model_name: "sk_hgb",
      model_version: "1",
      outputs: [{ name: "variable", datatype: "FP32", shape: [1, 1], data: [0.0001333483960479498] }],
      ...fields,
    });

  it.each([
    ["edgeml's float32 answer (9e-10 from scikit-learn's)", answer({}), true],
    [
      "the peer's float64 answer",
      answer({ outputs: [{ name: "variable", datatype: "FP64", shape: [1, 1], data: [0.000133347519] }] }),
      true,
    ],
    ["another model's answer", answer({ model_name: "sk_gbr" }), false],
    ["a prediction 2e-6 away", answer({ outputs: [{ data: [0.000135347519] }] }), false],
    ["two predictions for one row", answer({ outputs: [{ data: [0.000133347519, 0.000133347519] }] }), false],
    ["no outputs", answer({ outputs: [] }), false],
    ["an error body", JSON.stringify({ error: "model not found" }), false],
    ["a body that is not JSON", "Internal Server Error", false],
    ["JSON that is not an object", "null", false],
  ])("infer: %s → %s", (_case, body, ok) => {
    expect(infer(body)).toBe(ok);
  });

  const serve = verifier({ kind: "serve", price: 66076.140625, asOf: "2026-03-28T00:00:00.000Z" });
  const forecast = (fields: Record<string, unknown>) =>
    JSON.stringify({
      prediction_id: "p",
      as_of: "2026-03-28T00:00:00.000Z",
      predicted_price: 66076.140625,
      cached: true,
      ...fields,
    });

  it.each([
    ["a cache hit of that forecast", forecast({}), true],
    ["the first, computed answer (not a hit)", forecast({ cached: false }), false],
    ["another price", forecast({ predicted_price: 66076.14 }), false],
    ["another bar", forecast({ as_of: "2026-03-27T00:00:00.000Z" }), false],
    ["no cached field", forecast({ cached: undefined }), false],
  ])("cached forecast: %s → %s", (_case, body, ok) => {
    expect(serve(body)).toBe(ok);
  });
});

describe("bench:peer counts a server's CPU over its whole process tree", () => {
  let parent: ChildProcess | undefined;
  let started: number[] = [];
  afterEach(() => {
    for (const pid of started) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    started = [];
  });

  it("includes a worker process's CPU time, read from /proc", async () => {
    // The parent starts a worker that spins until its own CPU clock says 300 ms, then reports and waits: the wait
    // is on CPU time, which only the worker's own work moves, never on the wall clock.
    const worker = `const t=process.cpuUsage();while(process.cpuUsage(t).user<3e5);console.log("spun");setInterval(()=>{},1e6)`;
    const script = `const c=require("node:child_process").spawn(process.execPath,["-e",${JSON.stringify(worker)}],{stdio:["ignore","inherit","ignore"]});process.on("exit",()=>c.kill());setInterval(()=>{},1e6)`;
    parent = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "ignore"] });
    const lines = createInterface(parent.stdout as NodeJS.ReadableStream);
    await once(lines, "line");
    const tree = processTree(parent.pid as number);
    started = tree.map((p) => p.pid);
    expect(tree.map((p) => p.pid)).toContain(parent.pid);
    expect(tree).toHaveLength(2);
    // 300 ms of the worker's user time, at /proc's 10 ms resolution; the parent's own start-up adds to it.
    expect(treeCpuUs(parent.pid as number)).toBeGreaterThanOrEqual(290_000);
    expect(tree.find((p) => p.pid !== parent?.pid)?.cpuUs).toBeGreaterThanOrEqual(290_000);
  });

  it("refuses a process that is gone", () => {
    expect(() => processTree(2 ** 22 + 1)).toThrow(/is gone/);
  });
});
