/** The probe as an edge entry (Vercel's GET export, workerd's fetch), with the model from the embedded registry. */
import { EMBEDDED_REGISTRY } from "edgeml:embedded-registry";
import wasm from "../../wasm/ort-wasm-simd-threaded.wasm?module";
import { probe } from "./probe.js";

async function handle(): Promise<Response> {
  const [name, versions] = Object.entries(EMBEDDED_REGISTRY.models)[0] ?? [];
  const files = versions && Object.values(versions)[0];
  if (!name || !files) return Response.json({ error: "no model embedded" }, { status: 500 });
  const binary = atob(files.model);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  const features = Number(JSON.parse(files.metadata).signature.inputs[0].shape[1]);
  return Response.json(await probe(bytes, features, wasm));
}

export const GET = handle;
export default { fetch: handle };
