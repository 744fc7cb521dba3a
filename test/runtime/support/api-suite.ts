import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleEdge, bundleVercelNode, type EdgeTarget } from "../../../scripts/edge/bundle.js";
import type { RunningEdge, StartOptions } from "../../../scripts/edge/runtimes.js";
import { DATA_AS_OF } from "../../support/paths.js";
import { InferInput, InferResult, inferenceRequest, inferInit } from "../../support/triton-client.js";
import { ADMIN_TOKEN, BYO, type RuntimeFixture, runtimeFixture } from "./fixture.js";
import { describeRollouts } from "./rollout-suite.js";

const json = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

/** Every number as the hex of its float64 bits: equal means bit for bit, -0 and NaN included. */
function bits(value: unknown): unknown {
  if (typeof value === "number") {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value);
    return `f64:${view.getBigUint64(0).toString(16).padStart(16, "0")}`;
  }
  if (Array.isArray(value)) return value.map(bits);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bits(v)]));
  }
  return value;
}

/** A forecast without what differs by design between two calls (its id and creation time). */
function forecastNumbers(body: Record<string, unknown>) {
  // The data's age is the moment of each answer: edge and Node answer milliseconds apart.
  const { prediction_id: _id, created_at: _at, data_age_seconds: _age, ...rest } = body;
  return bits(rest);
}

/**
 * The API on an edge runtime, against the same app on Node: same models (the edge bundle embeds the registry the
 * Node app reads from disk), same market data (both fetch Yahoo's chart API, served from the recorded bars).
 * `vercel-node` is the same app as a Vercel Node.js function (bundleVercelNode), which must answer as the edge does.
 */
export function describeEdgeRuntime(
  title: string,
  target: EdgeTarget | "vercel-node",
  start: (options: StartOptions) => Promise<RunningEdge>,
  extra?: (context: () => { edge: RunningEdge; fixture: RuntimeFixture }) => void,
): void {
  describe(title, () => {
    let fixture: RuntimeFixture;
    let edge: RunningEdge;
    let bundle: string;
    const node = (path: string, init?: RequestInit) => fixture.node.app.request(path, init);

    beforeAll(async () => {
      fixture = await runtimeFixture();
      bundle =
        target === "vercel-node"
          ? await bundleVercelNode({ registry: fixture.embedded })
          : await bundleEdge(target, { registry: fixture.embedded });
      edge = await start({
        bundle,
        env: { ADMIN_TOKEN },
        outbound: (request) => fixture.yahoo.fetch(request),
      });
    }, 120_000);
    afterAll(async () => {
      await edge?.close();
      await fixture?.cleanup();
    });

    it("answers the first request after starting onnxruntime-web, and reports the time of that cold start", async () => {
      const first = await edge.fetch("/v2/health/live");
      expect(first.status).toBe(200);
      expect(await first.json()).toEqual({ live: true });
      const initMs = Number(first.headers.get("x-edgeml-init-ms"));
      expect(initMs).toBeGreaterThan(0);
      expect(first.headers.get("server-timing")).toMatch(/^edgeml-init;dur=\d+(\.\d+)?;desc="/);
      expect(edge.logs.join("\n")).toMatch(/edgeml: cold start: .*onnxruntime-web ready in \d+(\.\d+)? ms/);

      const second = await edge.fetch("/v2/health/live");
      expect(second.headers.get("x-edgeml-init-ms")).toBeNull();
      expect(second.headers.get("server-timing")).toBeNull();
    });

    it("is ready, and lists the embedded models as Node does", async () => {
      expect((await edge.fetch("/v2/health/ready")).status).toBe(200);
      for (const name of [...BYO, "BTC-24h", "ETH-24h"]) {
        const [onEdge, onNode] = await Promise.all([
          edge.fetch(`/v2/models/${name}`),
          node(`/v2/models/${name}`),
        ]);
        expect(onEdge.status).toBe(200);
        expect(await onEdge.json()).toEqual(await onNode.json());
      }
    });

    it.each(BYO)("POST /v2/models/%s/infer gives Node's outputs, bit for bit", async (name) => {
      const { input } = fixture.byo[name];
      const width = input.shape[1] ?? 0;
      const rows = 16;
      const body = {
        id: `parity-${name}`,
        inputs: [{ ...input, shape: [rows, width], data: input.data.slice(0, rows * width) }],
      };
      const [onEdge, onNode] = await Promise.all([
        edge.fetch(`/v2/models/${name}/infer`, json(body)),
        node(`/v2/models/${name}/infer`, json(body)),
      ]);
      expect(onEdge.status).toBe(200);
      expect(onNode.status).toBe(200);
      const edgeBody = await onEdge.json();
      expect(edgeBody.id).toBe(`parity-${name}`);
      expect(edgeBody.outputs[0].data).toHaveLength(rows);
      expect(bits(edgeBody)).toEqual(bits(await onNode.json()));
    });

    it.each(BYO)(
      "POST /v2/models/%s/infer with binary tensors (as tritonclient sends them) gives Node's JSON outputs, bit for bit",
      async (name) => {
        const { input } = fixture.byo[name];
        const width = input.shape[1] ?? 0;
        const rows = 16;
        const data = input.data.slice(0, rows * width);
        const typed = input.datatype === "FP64" ? Float64Array.from(data) : Float32Array.from(data);
        const binary = inferInit(
          inferenceRequest({
            inputs: [new InferInput(input.name, [rows, width], input.datatype).setData(typed)],
          }),
        );
        const path = `/v2/models/${name}/infer`;
        const [onEdge, onNode] = await Promise.all([
          edge.fetch(path, binary),
          node(path, json({ inputs: [{ ...input, shape: [rows, width], data }] })),
        ]);
        expect(onEdge.status).toBe(200);
        expect(onEdge.headers.get("content-type")).toBe("application/octet-stream");
        const result = await InferResult.of(onEdge);
        const expected = (await onNode.json()).outputs[0];
        expect(result.result.outputs[0]).toMatchObject({ name: expected.name, shape: expected.shape });
        expect(bits(Array.from(result.output(expected.name) as Float32Array))).toEqual(bits(expected.data));
      },
    );

    it("POST /v2/models/BTC-24h/versions/{v}/infer runs each named version as Node does, bit for bit", async () => {
      const features = Array.from({ length: 2 * 30 }, (_, i) => Math.sin(i) / 50);
      const body = { inputs: [{ name: "features", datatype: "FP64", shape: [2, 30], data: features }] };
      for (const version of ["1", "2"]) {
        const path = `/v2/models/BTC-24h/versions/${version}/infer`;
        const [onEdge, onNode] = await Promise.all([edge.fetch(path, json(body)), node(path, json(body))]);
        expect(onEdge.status).toBe(200);
        expect(bits(await onEdge.json())).toEqual(bits(await onNode.json()));
      }
    });

    it.each(["BTC", "ETH"])(
      "POST /api/ml/serve {symbol: %s} gives Node's forecast, bit for bit, from the same Yahoo bars",
      async (symbol) => {
        const request = { symbol, horizon: "24h", as_of: DATA_AS_OF };
        const [onEdge, onNode] = await Promise.all([
          edge.fetch("/api/ml/serve", json(request)),
          node("/api/ml/serve", json(request)),
        ]);
        expect(onEdge.status).toBe(200);
        expect(onNode.status).toBe(200);
        expect(onEdge.headers.get("x-model-version")).toBe(onNode.headers.get("x-model-version"));
        expect(onEdge.headers.get("x-cache")).toBe("MISS");
        const edgeBody = await onEdge.json();
        expect(edgeBody).toMatchObject({ symbol, model_name: `${symbol}-24h`, cached: false });
        expect(Number.isFinite(edgeBody.predicted_log_return)).toBe(true);
        expect(forecastNumbers(edgeBody)).toEqual(forecastNumbers(await onNode.json()));
      },
    );

    it("serves the promoted version (the embedded pointers), and the repeat from the cache written off the response path", async () => {
      const first = await edge.fetch("/api/ml/serve", json({ symbol: "BTC", as_of: DATA_AS_OF }));
      const meta = await (await node("/v2/models/BTC-24h")).json();
      expect(meta.versions).toContain(first.headers.get("x-model-version"));
      const champion = (await fixture.node.registry.getModel("BTC-24h")).serving;
      expect(champion).toMatchObject({ via: "champion" });
      expect(first.headers.get("x-model-version")).toBe(champion?.version);
      // The cache write went through waitUntil; once the runtime has let it finish, the same call is a hit.
      const again = await edge.fetch("/api/ml/serve", json({ symbol: "BTC", as_of: DATA_AS_OF }));
      expect(again.headers.get("x-cache")).toBe("HIT");
      expect((await again.json()).cached).toBe(true);
    });

    it("POST /api/ml/batch forecasts both symbols as Node does", async () => {
      const request = { symbols: ["BTC", "ETH"], horizon: "24h", as_of: DATA_AS_OF };
      const [onEdge, onNode] = await Promise.all([
        edge.fetch("/api/ml/batch", json(request)),
        node("/api/ml/batch", json(request)),
      ]);
      expect(onEdge.status).toBe(onNode.status);
      type Item = { symbol: string; ok: boolean; forecast?: Record<string, unknown> };
      // Whether an item came from the cache depends on what each side served before; the numbers may not.
      const strip = (body: { results?: Item[] }) =>
        (body.results ?? []).map((item) => ({
          symbol: item.symbol,
          ok: item.ok,
          forecast: item.forecast && forecastNumbers({ ...item.forecast, cached: undefined }),
        }));
      const edgeBody = await onEdge.json();
      expect(edgeBody.results.map((item: Item) => item.ok)).toEqual([true, true]);
      expect(strip(edgeBody)).toEqual(strip(await onNode.json()));
    });

    it("keeps the error contract: same status and body as Node for an unknown model and a malformed tensor", async () => {
      const cases: [string, RequestInit][] = [
        ["/v2/models/nope/infer", json({ inputs: [] })],
        [
          `/v2/models/${BYO[0]}/infer`,
          json({ inputs: [{ name: "X", datatype: "FP32", shape: [1, 30], data: [1, 2, 3] }] }),
        ],
        ["/api/ml/serve", json({ symbol: "DOGE" })],
      ];
      for (const [path, init] of cases) {
        const [onEdge, onNode] = await Promise.all([edge.fetch(path, init), node(path, init)]);
        expect(onEdge.status).toBe(onNode.status);
        expect(onEdge.status).toBeGreaterThanOrEqual(400);
        expect(onEdge.status).toBeLessThan(500);
        expect(await onEdge.json()).toEqual(await onNode.json());
      }
    });

    it("refuses to register into the embedded registry, with a 403 that says where models go", async () => {
      const onnx = Buffer.from(fixture.embedded.models[BYO[0]]?.["1"]?.model ?? "", "base64");
      const upload = (name: string) =>
        edge.fetch(`/api/ml/models/${name}/versions`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/octet-stream" },
          body: new Uint8Array(onnx),
        });
      // The bytes of a version it has are a duplicate: answered, nothing to write.
      const duplicate = await upload(BYO[0] ?? "");
      expect(duplicate.status).toBe(200);
      expect(duplicate.headers.get("x-duplicate-of")).toBe("1");
      const response = await upload("a-new-model");
      expect(response.status).toBe(403);
      const body = await response.json();
      expect(body.code).toBe("forbidden");
      expect(body.error).toMatch(/read-only on the edge.*BLOB_READ_WRITE_TOKEN/);
    });

    it("serves the OpenAPI document and the API docs page as Node does", async () => {
      const [onEdge, onNode] = await Promise.all([edge.fetch("/openapi.json"), node("/openapi.json")]);
      expect(onEdge.status).toBe(200);
      expect(await onEdge.json()).toEqual(await onNode.json());
      expect((await edge.fetch("/docs")).status).toBe(200);
    });

    // The function holds no dashboard file: the platform serves them from the static output (dist/static/dashboard).
    it.each(["/dashboard", "/dashboard/"])(
      "sends %s to the dashboard's static path, which the platform serves from the static output",
      async (path) => {
        const response = await edge.fetch(path, { redirect: "manual" });
        expect(response.status).toBe(302);
        expect(response.headers.get("location")).toBe("/dashboard/index.html");
      },
    );

    it("does not train on the edge: a training request answers 501 training_unavailable, saying where training runs", async () => {
      const response = await edge.fetch("/api/ml/train", {
        ...json({ model_id: "BTC" }),
        headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(response.status).toBe(501);
      const body = await response.json();
      expect(body.code).toBe("training_unavailable");
      expect(body.error).toMatch(/training does not run in this deployment.*vercel\.json.*npm run train/);
    });

    describeRollouts(() => ({ bundle, fixture, start }));

    extra?.(() => ({ edge, fixture }));
  });
}
