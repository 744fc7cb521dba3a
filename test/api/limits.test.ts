import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asEdgeMLError, redactInternals } from "../../src/errors.js";
import { FeatureError } from "../../src/features/index.js";
import { BODY_LIMITS, jsonDepth, MAX_JSON_DEPTH, moreBracketsThan } from "../../src/routes/limits.js";
import { TrainingError } from "../../src/training/errors.js";
import { ADMIN_TOKEN, postJson, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel, twoByTwoModel } from "../support/onnx-models.js";

/**
 * Bounded work per request: every route that takes a body has a limit sized to what it needs (413 past it, the
 * body never read whole), and no JSON nests deep enough to overflow a recursive walk (400).
 */
const MAX_INFER_BYTES = 256 * 1024;
const MAX_MODEL_BYTES = 512 * 1024;

/** Every route with a body and its limit. A route the OpenAPI document lists that is missing here fails the test. */
const LIMITS: Record<string, number> = {
  "/v2/models/{name}/infer": MAX_INFER_BYTES,
  "/v2/models/{name}/versions/{version}/infer": MAX_INFER_BYTES,
  "/api/ml/serve": BODY_LIMITS.forecast,
  "/api/ml/batch": BODY_LIMITS.batch,
  "/api/ml/train": BODY_LIMITS.train,
  "/api/ml/models/{name}/versions": MAX_MODEL_BYTES,
  "/api/ml/models/{name}/promote": BODY_LIMITS.admin,
  "/api/ml/models/{name}/rollback": BODY_LIMITS.admin,
  "/api/ml/models/{name}/pin": BODY_LIMITS.admin,
  "/api/ml/models/{name}/versions/{version}/restore": BODY_LIMITS.admin,
  "/api/ml/models/{name}/backfill": BODY_LIMITS.admin,
  "/api/ml/performance/track": BODY_LIMITS.admin,
  "/api/ml/models/{name}/rollout": BODY_LIMITS.admin,
  "/api/ml/models/{name}/rollout/evaluate": BODY_LIMITS.admin,
};

const concrete = (path: string) => path.replace("{name}", "two").replace("{version}", "1");

/** A JSON document `{"x": …}` nesting `depth` levels in all. */
const nested = (depth: number) => `{"x":${"[".repeat(depth - 1)}${"]".repeat(depth - 1)}}`;

describe("request limits", () => {
  let t: TestApp;
  let bodyRoutes: { method: string; path: string; contentTypes: string[] }[];
  beforeAll(async () => {
    t = await testApp({ maxInferBytes: MAX_INFER_BYTES, maxModelBytes: MAX_MODEL_BYTES });
    expect((await upload(t, "two", twoByTwoModel())).status).toBe(201);
    expect(
      (await upload(t, "text", elementwiseModel({ op: "Identity", elem: "STRING", shape: ["batch", 1] })))
        .status,
    ).toBe(201);
    const doc = (await (await t.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
    };
    bodyRoutes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => op.requestBody)
        .map(([method, op]) => ({
          method: method.toUpperCase(),
          path,
          contentTypes: Object.keys(op.requestBody?.content ?? {}),
        })),
    );
  });
  afterAll(() => t.cleanup());

  it("every route with a body has a limit in this table", () => {
    expect(bodyRoutes.length).toBeGreaterThan(0);
    const missing = bodyRoutes.filter((r) => !(r.path in LIMITS)).map((r) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
  });

  describe("a body one byte over the route's limit is 413 payload_too_large", () => {
    for (const [path, limit] of Object.entries(LIMITS)) {
      it(`${path} (limit ${limit} bytes), declared by Content-Length`, async () => {
        const json = !path.endsWith("/versions");
        const res = await t.admin(concrete(path), {
          method: "POST",
          headers: { "content-type": json ? "application/json" : "application/octet-stream" },
          body: json ? `{"pad":"${"x".repeat(limit - 9)}"}` : new Uint8Array(limit + 1),
        });
        expect(res.status).toBe(413);
        const body = (await res.json()) as { code: string; error: string };
        expect(body.code).toBe("payload_too_large");
        expect(body.error).toContain(String(limit));
      });
    }

    it("a chunked body with no Content-Length is counted as it streams", async () => {
      const chunk = new TextEncoder().encode("[1,".repeat(1024));
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          // Endless unless the server stops reading: it must stop past the limit.
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      const res = await t.request("/api/ml/serve", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        duplex: "half",
      } as RequestInit);
      expect(res.status).toBe(413);
      expect(sent).toBeLessThan(BODY_LIMITS.forecast * 4);
    });

    it("a body at the limit is read (not 413)", async () => {
      const limit = BODY_LIMITS.forecast;
      const body = `{"symbol":"BTC","horizon":"24h","pad":"${"x".repeat(limit - 40)}"}`;
      const res = await t.request("/api/ml/serve", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: body.slice(0, limit - 2) + body.slice(-2),
      });
      expect(res.status).not.toBe(413);
    });
  });

  describe("nesting", () => {
    it("jsonDepth counts arrays and objects, not brackets inside strings", () => {
      expect(jsonDepth("1")).toBe(0);
      expect(jsonDepth('{"a":[1,[2]]}')).toBe(3);
      expect(jsonDepth('{"a":"[[[[\\"[["}')).toBe(1);
      expect(jsonDepth(nested(10))).toBe(10);
    });

    it.each([
      // [text, limit, more brackets than the limit?]: only such a text is scanned for its depth
      ["1", 0, false],
      ['{"a":[1,[2]]}', 3, false],
      ['{"a":[1,[2]]}', 2, true],
      ['{"a":"[[[["}', 4, true], // brackets in strings count: a bound, not the depth
      [nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH, false],
      [nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH, true],
      [`[${"[1],".repeat(MAX_JSON_DEPTH)}[1]]`, MAX_JSON_DEPTH, true], // shallow but many: scanned, and passes
    ])("moreBracketsThan(%j, %i) is %s", (text, limit, more) => {
      expect(moreBracketsThan(text as string, limit as number)).toBe(more);
    });

    it("a shallow body with more brackets than the depth bound is scanned and accepted (rows of a batch)", async () => {
      const rows = Array.from({ length: 2 * MAX_JSON_DEPTH }, () => [1, 2]);
      const res = await postJson(t, "/v2/models/two/infer", {
        inputs: [
          { name: "a", datatype: "FP64", shape: [rows.length, 2], data: rows },
          { name: "b", datatype: "FP64", shape: [rows.length, 2], data: rows },
        ],
      });
      expect(res.status).toBe(200);
    });

    const deep = nested(MAX_JSON_DEPTH + 1);
    for (const path of Object.keys(LIMITS).filter((p) => !p.endsWith("/versions"))) {
      it(`${path}: a body nesting ${MAX_JSON_DEPTH + 1} levels is 400`, async () => {
        const res = await t.admin(concrete(path), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: deep,
        });
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: string }).error).toContain("nests deeper");
      });
    }

    it("deeply nested infer `data` within the size limit is 400, not a stack overflow", async () => {
      const levels = 100_000;
      const data = `${"[".repeat(levels)}${"]".repeat(levels)}`;
      const res = await t.request("/v2/models/two/infer", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: `{"inputs":[{"name":"a","datatype":"FP64","shape":[1,2],"data":${data}}]}`,
      });
      expect(res.status).toBe(400);
    });

    it("nested `data` deeper than a tensor's rank is refused by name", async () => {
      const data = JSON.parse(`${"[".repeat(20)}1,2${"]".repeat(20)}`);
      const res = await postJson(t, "/v2/models/two/infer", {
        inputs: [
          { name: "a", datatype: "FP64", shape: [1, 2], data },
          { name: "b", datatype: "FP64", shape: [1, 2], data: [1, 2] },
        ],
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/input 'a'.*16 levels/);
    });

    it("registration metadata (header or multipart part) nesting too deep is 400", async () => {
      const deepMeta = `{"report":${nested(MAX_JSON_DEPTH + 5).slice(5, -1)}}`;
      const viaHeader = await upload(t, "deep", twoByTwoModel(), undefined, { "x-model-metadata": deepMeta });
      expect(viaHeader.status).toBe(400);
      const form = new FormData();
      form.set("model", new Blob([twoByTwoModel() as Uint8Array<ArrayBuffer>]), "model.onnx");
      form.set("metadata", deepMeta);
      const viaPart = await t.admin("/api/ml/models/deep/versions", { method: "POST", body: form });
      expect(viaPart.status).toBe(400);
      expect(((await viaPart.json()) as { error: string }).error).toContain("nests deeper");
    });
  });

  describe("malformed input is 400, not 500", () => {
    it("a multipart upload whose body does not match its boundary", async () => {
      const res = await t.admin("/api/ml/models/broken/versions", {
        method: "POST",
        headers: { "content-type": "multipart/form-data; boundary=XYZ" },
        body: "--ABC\r\nnot a part at all",
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_request");
    });

    it("a multipart content type without a boundary", async () => {
      const res = await t.admin("/api/ml/models/broken/versions", {
        method: "POST",
        headers: { "content-type": "multipart/form-data" },
        body: "model=x",
      });
      expect(res.status).toBe(400);
    });

    it("BYTES elements with a NUL character (onnxruntime would truncate them)", async () => {
      const res = await postJson(t, "/v2/models/text/infer", {
        inputs: [{ name: "x", datatype: "BYTES", shape: [1, 1], data: ["ab\u0000cd"] }],
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toContain("NUL");
      const ok = await postJson(t, "/v2/models/text/infer", {
        inputs: [{ name: "x", datatype: "BYTES", shape: [1, 1], data: ["abcd"] }],
      });
      expect(ok.status).toBe(200);
    });

    it("unauthenticated admin bodies are refused before they are read", async () => {
      const res = await t.request("/api/ml/models/two/versions", {
        method: "POST",
        headers: { "content-type": "application/octet-stream", authorization: `Bearer ${ADMIN_TOKEN}x` },
        body: new Uint8Array(MAX_MODEL_BYTES * 2),
      });
      expect(res.status).toBe(401);
    });
  });
});

describe("redactInternals: what a client may read of an error", () => {
  it.each([
    [
      "5xx: a file path",
      "the model store is unreachable (ENOENT: no such file or directory, open '/work/main/models/x/metadata.json')",
      503,
      "the model store is unreachable (ENOENT: no such file or directory, open '<source>')",
    ],
    [
      "5xx: a directory",
      "EACCES: permission denied, mkdir '/var/lib/edgeml/models'",
      503,
      "EACCES: permission denied, mkdir '<path>'",
    ],
    [
      "5xx: an Upstash error with the command it sent",
      'ERR wrong number of arguments, command was: ["set","edgeml:job:1","{…}"]',
      503,
      "ERR wrong number of arguments",
    ],
    [
      "5xx: a URL with a token",
      "fetch failed: https://edge-config.vercel.com/ecfg_abc/items?token=secret-token",
      503,
      "fetch failed: https://edge-config.vercel.com",
    ],
    [
      "4xx: onnxruntime's build path inside its message",
      "Non-zero status code returned while running Reshape node. Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:47 onnxruntime::ReshapeHelper input_shape_size == size was false.",
      422,
      "Non-zero status code returned while running Reshape node. Status Message: <source> onnxruntime::ReshapeHelper input_shape_size == size was false.",
    ],
    [
      "4xx: route paths stay (they are what the client sent)",
      "edgeml: no route POST /v2/models/x/infer2; see /docs",
      404,
      "edgeml: no route POST /v2/models/x/infer2; see /docs",
    ],
  ])("%s", (_case, message, status, expected) => {
    expect(redactInternals(message, status)).toBe(expected);
  });
});

describe("asEdgeMLError: the libraries' typed errors mapped to the API's codes, once", () => {
  it.each([
    [new TrainingError("invalid_parameters", "bad alpha"), "invalid_request", 400],
    [new TrainingError("insufficient_data", "too few rows"), "market_data_unavailable", 503],
    [new TrainingError("invalid_data", "a gap"), "market_data_unavailable", 503],
    [new TrainingError("export_mismatch", "onnx disagrees"), "internal", 500],
    [new FeatureError("insufficient_history", "60 bars"), "market_data_unavailable", 503],
    [new FeatureError("invalid_horizon", "0 bars"), "invalid_request", 400],
  ] as const)("%s → %s", (error, code, status) => {
    const mapped = asEdgeMLError(error);
    expect(mapped?.code).toBe(code);
    expect(mapped?.status).toBe(status);
    expect(mapped?.message).toBe(`edgeml: ${error.message}`);
  });

  it("leaves unknown errors unmapped (500, logged)", () => {
    expect(asEdgeMLError(new TypeError("x"))).toBeUndefined();
  });
});
