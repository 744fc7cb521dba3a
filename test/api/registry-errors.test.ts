import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, byoCase, postJson, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";

/** Every file under the registry's directory: what "the registry as it was" means on disk. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.map((e) => join(e.parentPath, e.name).slice(dir.length)).sort();
}

const add = elementwiseModel({ op: "Add", elem: "FP32", shape: ["batch", 3] });
const infer = (data: unknown, extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data, ...extra }],
});

describe("bad requests get their documented 4xx and leave the registry as it was", () => {
  let t: TestApp;
  let gbr: Awaited<ReturnType<typeof byoCase>>;
  let before: { files: string[]; pointers: string; models: unknown };

  const snapshot = async () => ({
    files: await tree(t.dir),
    pointers: JSON.stringify((await (await t.admin("/api/ml/models/add")).json()).pointers),
    models: await (await t.admin("/api/ml/models")).json(),
  });

  beforeAll(async () => {
    t = await testApp();
    gbr = await byoCase("sk_gbr_f32.json");
    expect((await upload(t, "add", add)).status).toBe(201);
    expect((await upload(t, "gbr", gbr.bytes)).status).toBe(201);
    before = await snapshot();
  });
  afterAll(() => t.cleanup());

  const width = 30;
  const cases: [string, () => Promise<Response>, number, string][] = [
    [
      "golden rows the model does not reproduce",
      () =>
        upload(t, "gbr", gbr.bytes, {
          golden: {
            cases: [
              {
                inputs: [{ ...gbr.spec.input, shape: [1, width], data: gbr.spec.input.data.slice(0, width) }],
                outputs: [{ name: "variable", datatype: "FP32", shape: [1, 1], data: [0.5] }],
              },
            ],
          },
        }),
      422,
      "golden_mismatch",
    ],
    [
      "a truncated ONNX file",
      () => upload(t, "gbr", gbr.bytes.slice(0, Math.floor(gbr.bytes.length / 2))),
      400,
      "invalid_onnx",
    ],
    [
      "a file that is not ONNX",
      () => upload(t, "gbr", new TextEncoder().encode("%PDF-1.7 not a model")),
      400,
      "invalid_onnx",
    ],
    ["an empty upload", () => upload(t, "gbr", new Uint8Array()), 400, "invalid_onnx"],
    [
      "metadata that is not JSON",
      () => upload(t, "gbr", gbr.bytes, undefined, { "x-model-metadata": "{nope" }),
      400,
      "invalid_request",
    ],
    [
      "metadata with unknown fields",
      () => upload(t, "gbr", gbr.bytes, { colour: "red" }),
      400,
      "invalid_request",
    ],
    ["an invalid model name", () => upload(t, "bad%20name!", add), 400, "invalid_request"],
    [
      "a JSON body instead of ONNX bytes",
      () => upload(t, "gbr", add, undefined, { "content-type": "application/json" }),
      415,
      "unsupported_media_type",
    ],
    ["no admin token", () => upload(t, "gbr", add, undefined, { authorization: "" }), 401, "unauthorized"],
    [
      "a wrong admin token",
      () => upload(t, "gbr", add, undefined, { authorization: `Bearer ${ADMIN_TOKEN}x` }),
      401,
      "unauthorized",
    ],
    [
      "a token in the wrong scheme",
      () => upload(t, "gbr", add, undefined, { authorization: `Basic ${ADMIN_TOKEN}` }),
      401,
      "unauthorized",
    ],
    ["listing models without a token", () => t.request("/api/ml/models"), 401, "unauthorized"],
    [
      "promoting without a token",
      () => postJson(t, "/api/ml/models/add/promote", { version: "1" }),
      401,
      "unauthorized",
    ],
    [
      "promoting an unknown version",
      () =>
        t.admin("/api/ml/models/add/promote", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ version: "9" }),
        }),
      404,
      "version_not_found",
    ],
    [
      "promoting a version of an unknown model",
      () =>
        t.admin("/api/ml/models/nope/promote", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ version: "1" }),
        }),
      404,
      "model_not_found",
    ],
    [
      "promoting with a malformed version",
      () =>
        t.admin("/api/ml/models/add/promote", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ version: "latest" }),
        }),
      400,
      "invalid_request",
    ],
    [
      "rolling back with no champion",
      () =>
        t.admin("/api/ml/models/add/rollback", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        }),
      409,
      "conflict",
    ],
    [
      "malformed JSON",
      () =>
        t.admin("/api/ml/models/add/pin", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{",
        }),
      400,
      "invalid_request",
    ],
    [
      "a wrong datatype",
      () =>
        postJson(t, "/v2/models/add/infer", {
          inputs: [{ name: "x", datatype: "FP64", shape: [1, 3], data: [1, 2, 3] }],
        }),
      400,
      "invalid_tensor",
    ],
    [
      "an unknown datatype",
      () =>
        postJson(t, "/v2/models/add/infer", {
          inputs: [{ name: "x", datatype: "FLOAT", shape: [1, 3], data: [1, 2, 3] }],
        }),
      400,
      "invalid_request",
    ],
    [
      "a wrong shape",
      () =>
        postJson(t, "/v2/models/add/infer", {
          inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }],
        }),
      400,
      "invalid_tensor",
    ],
    [
      "a wrong rank",
      () =>
        postJson(t, "/v2/models/add/infer", {
          inputs: [{ name: "x", datatype: "FP32", shape: [3], data: [1, 2, 3] }],
        }),
      400,
      "invalid_tensor",
    ],
    [
      "data that does not fill the shape",
      () => postJson(t, "/v2/models/add/infer", infer([1, 2])),
      400,
      "invalid_tensor",
    ],
    [
      "a string in FP32 data",
      () => postJson(t, "/v2/models/add/infer", infer([1, "2", 3])),
      400,
      "invalid_tensor",
    ],
    [
      "an unknown input name",
      () =>
        postJson(t, "/v2/models/add/infer", {
          inputs: [{ name: "z", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }],
        }),
      400,
      "invalid_tensor",
    ],
    [
      "an unknown output name",
      () => postJson(t, "/v2/models/add/infer", { ...infer([1, 2, 3]), outputs: [{ name: "nope" }] }),
      400,
      "invalid_tensor",
    ],
    ["no inputs", () => postJson(t, "/v2/models/add/infer", { inputs: [] }), 400, "invalid_request"],
    [
      "an infer body that is not JSON",
      () =>
        t.request("/v2/models/add/infer", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "inputs",
        }),
      400,
      "invalid_request",
    ],
    [
      "an unknown model",
      () => postJson(t, "/v2/models/nope/infer", infer([1, 2, 3])),
      404,
      "model_not_found",
    ],
    [
      "an unknown version",
      () => postJson(t, "/v2/models/add/versions/7/infer", infer([1, 2, 3])),
      404,
      "version_not_found",
    ],
    ["metadata of an unknown model", () => t.request("/v2/models/nope"), 404, "model_not_found"],
    [
      "readiness of an unknown version",
      () => t.request("/v2/models/add/versions/3/ready"),
      404,
      "version_not_found",
    ],
    ["an unknown route", () => t.request("/v3/models"), 404, "not_found"],
  ];

  it.each(cases)("%s", async (_label, send, status, code) => {
    const res = await send();
    const body = await res.json();
    expect({ status: res.status, code: body.code }).toEqual({ status, code });
    expect(typeof body.error).toBe("string");
    expect(body.error).not.toMatch(/\n\s+at /); // never a stack trace
    if (status === 401) expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await snapshot()).toEqual(before);
  });

  it("a golden mismatch says which element differed", async () => {
    const res = await upload(t, "add", add, {
      golden: {
        cases: [
          {
            inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }],
            outputs: [{ name: "y", datatype: "FP32", shape: [1, 3], data: [2, 4, 7] }],
          },
        ],
      },
    });
    expect(res.status).toBe(422);
    expect((await res.json()).error).toContain("'y'[2] is 6, golden row says 7");
  });

  it("an upload over the size limit answers 413", async () => {
    const small = await testApp({ maxModelBytes: 1024 });
    try {
      const res = await upload(small, "gbr", gbr.bytes);
      expect(res.status).toBe(413);
      expect((await res.json()).code).toBe("payload_too_large");
      expect(await tree(small.dir)).toEqual([]);
    } finally {
      await small.cleanup();
    }
  });

  it("without ADMIN_TOKEN the admin API is refused, never open", async () => {
    const closed = await testApp({ adminToken: undefined });
    try {
      for (const res of [await upload(closed, "add", add), await closed.request("/api/ml/models")]) {
        expect(res.status).toBe(403);
        expect((await res.json()).code).toBe("admin_disabled");
      }
      expect(await tree(closed.dir)).toEqual([]);
    } finally {
      await closed.cleanup();
    }
  });

  it("an admin token shorter than 16 characters is refused when the app is built", async () => {
    await expect(testApp({ adminToken: "short" })).rejects.toThrow(
      /ADMIN_TOKEN must be at least 16 characters/,
    );
  });

  it.each([
    ["a trailing newline (a secrets file written with echo)", "admin-token-0123456789\n"],
    ["a space inside", "admin token 0123456789"],
    ["a leading space", " admin-token-0123456789"],
  ])(
    "an admin token with %s, which no Authorization header can match, is refused at start with the reason",
    async (_, adminToken) => {
      await expect(testApp({ adminToken })).rejects.toThrow(
        /ADMIN_TOKEN must be printable ASCII without spaces or line breaks .*can never match an Authorization header/,
      );
    },
  );
});
