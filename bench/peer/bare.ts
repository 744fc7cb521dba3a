/**
 * The ceiling of bench/peer.bench.ts: the least a correct server on edgeml's stack does for each measured path, in
 * as many processes as edgeml runs (node:cluster sharing one port, as `npm start` does). A bare Hono app on
 * @hono/node-server:
 * - infer: parses the JSON body, builds the float32 tensor from `inputs[0]`, runs the same ONNX export through
 *   onnxruntime-web's wasm build (one thread, as edgeml runs it) and answers the OIP response. No validation, no
 *   version resolution, no deadline, no limiter, no metrics.
 * - cached forecast: parses the JSON body and answers the stored bytes of that (symbol, as_of), which are edgeml's
 *   own answer, captured before the load. No validation, no aging, no limiter, no metrics.
 * Under the same load its req/s over the peer's is the most any server built on Node, Hono and onnxruntime-web can
 * show here: a goal above that ratio is a goal about the machine (loopback TCP, Node's HTTP, the wasm runtime), not
 * about edgeml's request path.
 *
 * Started by bench/peer/servers.ts (startBare) with BARE_PORT, BARE_WORKERS, BARE_MODEL (the .onnx file),
 * BARE_FLOAT64 ("1" when the model takes doubles) and BARE_FORECASTS ({"SYMBOL|as_of": response body}); prints
 * "bare listening" once every worker listens. bench/workers.bench.ts starts it too, as its ceiling.
 */
import cluster from "node:cluster";
import { readFile } from "node:fs/promises";
import { serve } from "@hono/node-server";
import { type Context, Hono } from "hono";
import * as ort from "onnxruntime-web/wasm";

const port = Number(process.env.BARE_PORT);
const workers = Number(process.env.BARE_WORKERS ?? "1");
const float64 = process.env.BARE_FLOAT64 === "1";
const forecasts = new Map(
  Object.entries(JSON.parse(process.env.BARE_FORECASTS ?? "{}") as Record<string, string>),
);

interface InferBody {
  id?: string;
  inputs: { shape: number[]; data: number[] }[];
}

async function listen(onListening: () => void): Promise<void> {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const session = await ort.InferenceSession.create(await readFile(process.env.BARE_MODEL ?? ""), {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  const app = new Hono();
  const json = { "content-type": "application/json" };
  const infer = async (c: Context) => {
    const body = await c.req.json<InferBody>();
    const input = body.inputs[0] as InferBody["inputs"][number];
    const tensor = float64
      ? new ort.Tensor("float64", Float64Array.from(input.data), input.shape)
      : new ort.Tensor("float32", Float32Array.from(input.data), input.shape);
    const output = (await session.run({ [inputName as string]: tensor }))[outputName as string] as ort.Tensor;
    return c.json({
      model_name: c.req.param("name"),
      model_version: c.req.param("version") ?? "1",
      ...(body.id === undefined ? {} : { id: body.id }),
      outputs: [
        {
          name: outputName,
          datatype: float64 ? "FP64" : "FP32",
          shape: output.dims,
          data: Array.from(output.data as Float32Array | Float64Array),
        },
      ],
    });
  };
  app.post("/v2/models/:name/infer", infer);
  app.post("/v2/models/:name/versions/:version/infer", infer);
  app.post("/api/ml/serve", async (c) => {
    const body = await c.req.json<{ symbol: string; as_of: string }>();
    const stored = forecasts.get(`${body.symbol}|${body.as_of}`);
    return stored === undefined ? c.json({ error: "not stored" }, 404) : c.body(stored, 200, json);
  });
  serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, onListening);
}

if (workers <= 1) {
  await listen(() => console.log("bare listening"));
} else if (cluster.isPrimary) {
  let listening = 0;
  cluster.on("listening", () => {
    listening += 1;
    if (listening === workers) console.log("bare listening");
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  process.once("SIGTERM", () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill("SIGTERM");
    process.exit(0);
  });
} else {
  await listen(() => {});
}
