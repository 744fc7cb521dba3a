/**
 * `npx tsx bench/binary.bench.ts`: the OIP infer route with a batch of 1,024 rows, in JSON against the binary tensor
 * data extension (Triton's extension_binary_data.md), over HTTP: the request's tensor as JSON numbers or as raw
 * float32 bytes, and the response's the same way, in the four combinations.
 *
 * The server is bench/server.ts (the app as `npm start` wires it, in its own process); the model is the scikit-learn
 * HistGradientBoostingRegressor export (sk_hgb_f32, 30 features), registered through the admin API. The rows are
 * the fixture's 256 real rows four times over (the fixture holds no more; nothing is invented). Each variant's
 * answer is checked against the JSON one, bit for bit, before anything is timed. Rounds interleave the variants
 * (A/B), and the ratios against JSON→JSON come from the same run. Rewrites the "## Binary tensors" section of
 * docs/benchmarks.md.
 */
import type { ChildProcess } from "node:child_process";
import os from "node:os";
import autocannon from "autocannon";
import {
  InferInput,
  InferRequestedOutput,
  InferResult,
  inferenceRequest,
} from "../test/support/triton-client.js";
import { writeDocSection } from "./doc-section.js";
import { serverCpuMicros, startServer, table } from "./server-client.js";
import { loadCase, median, quantile } from "./support.js";

const COMMAND = "npx tsx bench/binary.bench.ts";
const SECTION = "## Binary tensors";
const ROWS = 1_024;
const HTTP = { connections: 8, warmupSeconds: 2, rounds: 3, seconds: 5 } as const;
const quick = process.argv.includes("--quick");
const seconds = quick ? 1 : HTTP.seconds;
const log = (line: string) => console.error(`bench: ${line}`);

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const int = (value: number) => Math.round(value).toLocaleString("en-US");

interface Variant {
  key: string;
  label: string;
  headers: Record<string, string>;
  body: Buffer;
}

interface Round {
  requests: number;
  seconds: number;
  cpuUs: number;
  times: number[];
  bad: number;
  responseBytes: number;
}

async function load(child: ChildProcess, url: string, variant: Variant, duration: number): Promise<Round> {
  const times: number[] = [];
  const cpuBefore = await serverCpuMicros(child);
  const result = await new Promise<autocannon.Result>((done, fail) => {
    const instance = autocannon(
      {
        url,
        method: "POST",
        headers: variant.headers,
        body: variant.body,
        connections: HTTP.connections,
        duration,
      },
      (error, r) => (error ? fail(error) : done(r)),
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => times.push(responseTime));
  });
  const cpuUs = (await serverCpuMicros(child)) - cpuBefore;
  return {
    requests: result.requests.total,
    seconds: result.duration,
    cpuUs,
    times,
    bad: result.non2xx + result.errors + result.timeouts,
    responseBytes: result.throughput.total / Math.max(1, result.requests.total),
  };
}

/** Every number as the hex of its float64 bits. */
const bits = (values: ArrayLike<unknown>) =>
  Array.from(values, (v) => {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, Number(v));
    return view.getBigUint64(0).toString(16);
  });

async function main() {
  const hgb = await loadCase("sk_hgb_f32.json");
  const real = hgb.batch(hgb.rows);
  const rows = Float32Array.from({ length: ROWS * hgb.features }, (_, i) => real[i % real.length] as number);
  const { child, port, adminToken } = await startServer();
  const base = `http://127.0.0.1:${port}`;
  try {
    const registered = await fetch(`${base}/api/ml/models/sk_hgb/versions`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/octet-stream" },
      body: hgb.bytes as Uint8Array<ArrayBuffer>,
    });
    if (registered.status !== 201)
      throw new Error(`registration: ${registered.status} ${await registered.text()}`);
    const url = `${base}/v2/models/sk_hgb/infer`;
    const output = hgb.spec.output_name;
    const shape = [ROWS, hgb.features];
    const jsonInput = { name: hgb.spec.input.name, shape, datatype: "FP32", data: Array.from(rows) };
    const binary = (binaryOut: boolean) =>
      inferenceRequest({
        inputs: [new InferInput(hgb.spec.input.name, shape, "FP32").setData(rows)],
        outputs: [new InferRequestedOutput(output, binaryOut)],
      });
    const framed = (request: ReturnType<typeof inferenceRequest>) => ({
      "inference-header-content-length": String(request.jsonSize),
    });
    const jsonBody = (binaryOut: boolean) =>
      Buffer.from(
        JSON.stringify({
          inputs: [jsonInput],
          ...(binaryOut && { outputs: [{ name: output, parameters: { binary_data: true } }] }),
        }),
      );
    const variants: Variant[] = [
      {
        key: "json",
        label: "JSON → JSON",
        headers: { "content-type": "application/json" },
        body: jsonBody(false),
      },
      {
        key: "binary",
        label: "binary → binary",
        headers: framed(binary(true)),
        body: Buffer.from(binary(true).body),
      },
      {
        key: "binary-in",
        label: "binary → JSON",
        headers: framed(binary(false)),
        body: Buffer.from(binary(false).body),
      },
      {
        key: "binary-out",
        label: "JSON → binary",
        headers: { "content-type": "application/json" },
        body: jsonBody(true),
      },
    ];

    // Correctness first: every variant answers the JSON request's outputs, bit for bit.
    let reference: string[] | undefined;
    for (const variant of variants) {
      const res = await fetch(url, {
        method: "POST",
        headers: variant.headers,
        body: new Uint8Array(variant.body),
      });
      if (res.status !== 200) throw new Error(`${variant.label}: ${res.status} ${await res.text()}`);
      const values = (await InferResult.of(res)).output(output) as ArrayLike<number>;
      const got = bits(values);
      if (got.length !== ROWS) throw new Error(`${variant.label}: ${got.length} outputs, not ${ROWS}`);
      reference ??= got;
      if (got.join() !== reference.join()) throw new Error(`${variant.label}: outputs differ from JSON's`);
    }
    log("every variant answers the JSON outputs bit for bit");

    for (const variant of variants) await load(child, url, variant, HTTP.warmupSeconds);
    const rounds = new Map<string, Round[]>(variants.map((v) => [v.key, []]));
    for (let round = 1; round <= HTTP.rounds; round++) {
      // A/B: each round runs every variant once, in a rotated order.
      const order = variants.map((_, i) => variants[(i + round) % variants.length] as Variant);
      for (const variant of order) {
        log(`round ${round}/${HTTP.rounds}: ${variant.label}`);
        rounds.get(variant.key)?.push(await load(child, url, variant, seconds));
      }
    }
    await report(variants, rounds);
  } finally {
    child.send("stop");
  }
}

async function report(variants: Variant[], rounds: Map<string, Round[]>) {
  const stats = variants.map((v) => {
    const rs = rounds.get(v.key) ?? [];
    const times = rs.flatMap((r) => r.times);
    return {
      variant: v,
      reqPerSec: median(rs.map((r) => r.requests / r.seconds)),
      cpuUs: median(rs.map((r) => r.cpuUs / r.requests)),
      p50: quantile(times, 0.5),
      p99: quantile(times, 0.99),
      bad: rs.reduce((n, r) => n + r.bad, 0),
      requests: rs.reduce((n, r) => n + r.requests, 0),
      responseBytes: median(rs.map((r) => r.responseBytes)),
    };
  });
  const json = stats[0];
  if (!json) throw new Error("no results");
  const bad = stats.reduce((n, s) => n + s.bad, 0);
  if (bad > 0) throw new Error(`${bad} failed responses`);
  const rowsOut = stats.map((s) => [
    s.variant.label,
    int(s.variant.body.length),
    int(s.responseBytes),
    int(s.reqPerSec),
    `${fixed(s.reqPerSec / json.reqPerSec, 2)}×`,
    int(s.cpuUs),
    `${fixed(json.cpuUs / s.cpuUs, 2)}×`,
    fixed(s.p50, 2),
    fixed(s.p99, 2),
  ]);
  const body = [
    SECTION,
    "",
    `Command: \`${COMMAND}\`. The OIP infer route, one request = a batch of ${int(ROWS)} rows × 30 FP32 features into the scikit-learn HistGradientBoostingRegressor export (sk_hgb_f32), its tensor sent as JSON numbers or as raw bytes (the binary tensor data extension, the request built as tritonclient builds it), and the ${int(ROWS)} predictions answered either way. Ratios are against JSON → JSON in the same run.`,
    "",
    table(
      [
        "request → response",
        "request bytes",
        "response bytes",
        "req/s",
        "vs JSON",
        "server CPU µs/req",
        "CPU saving",
        "p50 ms",
        "p99 ms",
      ],
      rowsOut,
    ),
    "",
    `- Machine: ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores (shared by the server, autocannon and anything else running; load average ${os
      .loadavg()
      .map((l) => fixed(l, 2))
      .join(" / ")} at the end), Node ${process.version}.`,
    `- Load: autocannon, ${HTTP.connections} connections, a ${HTTP.warmupSeconds} s warm-up per variant, then ${HTTP.rounds} rounds of ${seconds} s per variant in rotated order; req/s and CPU per request are medians over rounds, latency percentiles pool every response. Server CPU is the server process's own (user + system) per request. ${int(stats.reduce((n, s) => n + s.requests, 0))} requests, 0 failed.`,
    "- Checks: before timing, each variant's answer was decoded (binary as tritonclient's `InferResult.as_numpy` reads it) and equals the JSON answer bit for bit.",
    `- Reading: the model's own time is the same in every row; what changes is parsing ${int(ROWS * 30)} numbers out of JSON text against copying ${int(ROWS * 30 * 4)} bytes (each element still checked), and printing ${int(ROWS)} numbers against copying ${int(ROWS * 4)} bytes. JSON → binary is a JSON request with \`parameters\` on its output: the infer route's fast path (src/routes/fast-infer.ts) takes plain requests only, so it goes the full validation path (zod over every element), which JSON → JSON does not.`,
  ].join("\n");
  console.log(body);
  if (!quick) await writeDocSection(SECTION, body);
}

await main();
