/**
 * One cold start on Node, in a fresh process: `probe` times onnxruntime-web's phases as `npm start` runs it (wasm
 * compiled from bytes); `app` times the app's first infer response from a registry directory.
 * Usage: node-child.ts probe|app <registry dir> <model name>
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

const [mode, dir, name] = process.argv.slice(2) as [string, string, string];
const metadata = JSON.parse(await readFile(join(dir, name, "1", "metadata.json"), "utf8"));
const features = Number(metadata.signature.inputs[0].shape[1]);

if (mode === "probe") {
  const t0 = performance.now();
  const { probe } = await import("./probe.js");
  const loadMs = performance.now() - t0;
  const bytes = new Uint8Array(await readFile(join(dir, name, "1", "model.onnx")));
  console.log(JSON.stringify({ loadMs, ...(await probe(bytes, features)) }));
} else {
  const t0 = performance.now();
  const { createApp } = await import("../../src/app.js");
  const { nodeDeps } = await import("../../src/runtime/node/deps.js");
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  const { silentLogger } = await import("../../src/logger.js");
  const { app } = createApp({ ...nodeDeps({ MODELS_DIR: dir }), logger: silentLogger });
  const response = await app.request(`/v2/models/${name}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      inputs: [
        {
          name: metadata.signature.inputs[0].name,
          datatype: "FP32",
          shape: [1, features],
          data: Array(features).fill(0.01),
        },
      ],
    }),
  });
  const firstInferMs = performance.now() - t1;
  if (response.status !== 200) throw new Error(`infer answered ${response.status}: ${await response.text()}`);
  console.log(JSON.stringify({ loadMs, firstInferMs }));
}
