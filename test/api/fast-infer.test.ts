import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { plainInferRequest } from "../../src/routes/fast-infer.js";
import { InferRequestSchema } from "../../src/routes/schemas.js";
import { type TestApp, testApp, upload } from "../support/app.js";
import { twoByTwoModel } from "../support/onnx-models.js";

/**
 * The infer routes' fast path (src/routes/fast-infer.ts) against the zod schema it stands in for: whatever it
 * accepts, zod accepts with the same output; whatever zod refuses, it refuses to take (the zod path answers). The
 * table names the boundaries; the mutations below look for a value the table forgot.
 */

const tensor = (over: Record<string, unknown> = {}) => ({
  name: "a",
  shape: [1, 2],
  datatype: "FP64",
  data: [1, 2],
  ...over,
});
const request = (over: Record<string, unknown> = {}) => ({
  inputs: [tensor(), tensor({ name: "b" })],
  ...over,
});

/** [case, body, whether the fast path takes it]. Every row is also checked against zod. */
const TABLE: [string, unknown, boolean][] = [
  ["the common request", request(), true],
  ["with an id", request({ id: "req-1" }), true],
  ["an id of 256 characters (the limit)", request({ id: "x".repeat(256) }), true],
  ["an id of 257 characters", request({ id: "x".repeat(257) }), false],
  ["an id that is a number", request({ id: 7 }), false],
  ["outputs named", request({ outputs: [{ name: "sum" }] }), true],
  ["no outputs (empty list)", request({ outputs: [] }), true],
  ["an output with an empty name", request({ outputs: [{ name: "" }] }), false],
  ["an output with parameters (zod decides)", request({ outputs: [{ name: "sum", parameters: {} }] }), false],
  ["65 outputs", request({ outputs: Array.from({ length: 65 }, () => ({ name: "sum" })) }), false],
  ["64 inputs (the limit)", { inputs: Array.from({ length: 64 }, () => tensor()) }, true],
  ["65 inputs", { inputs: Array.from({ length: 65 }, () => tensor()) }, false],
  ["no inputs", { inputs: [] }, false],
  ["inputs not a list", { inputs: tensor() }, false],
  ["request parameters (zod decides)", request({ parameters: { binary_data_output: true } }), false],
  ["tensor parameters (zod decides)", { inputs: [tensor({ parameters: { binary_data_size: 16 } })] }, false],
  ["an unknown top-level field (zod strips it)", request({ extra: 1 }), false],
  ["an unknown tensor field (zod strips it)", { inputs: [tensor({ extra: 1 })] }, false],
  [
    "a __proto__ key",
    JSON.parse('{"__proto__": {"x": 1}, "inputs": [{"name":"a","shape":[1],"datatype":"FP64","data":[1]}]}'),
    false,
  ],
  ["an empty tensor name", { inputs: [tensor({ name: "" })] }, false],
  ["a tensor name that is not text", { inputs: [tensor({ name: 1 })] }, false],
  ["an unknown datatype", { inputs: [tensor({ datatype: "FP128" })] }, false],
  ["a lower-case datatype", { inputs: [tensor({ datatype: "fp64" })] }, false],
  [
    "every OIP datatype",
    { inputs: ["BOOL", "UINT8", "INT64", "FP16", "FP32", "BYTES"].map((d) => tensor({ datatype: d })) },
    true,
  ],
  ["a negative dimension", { inputs: [tensor({ shape: [-1, 2] })] }, false],
  ["a fractional dimension", { inputs: [tensor({ shape: [1.5, 2] })] }, false],
  ["a dimension past 2^53", { inputs: [tensor({ shape: [2 ** 53, 1] })] }, false],
  ["a dimension that is text", { inputs: [tensor({ shape: ["1", 2] })] }, false],
  ["rank 16 (the limit)", { inputs: [tensor({ shape: Array(16).fill(1), data: [1] })] }, true],
  ["rank 17", { inputs: [tensor({ shape: Array(17).fill(1), data: [1] })] }, false],
  ["a zero dimension", { inputs: [tensor({ shape: [0, 2], data: [] })] }, true],
  ["nested data (accepted, flattened later)", { inputs: [tensor({ data: [[1, 2]] })] }, true],
  ["data that is not a list", { inputs: [tensor({ data: 1 })] }, false],
  ["no data", { inputs: [{ name: "a", shape: [1, 2], datatype: "FP64" }] }, false],
  [
    "elements of any kind (checked when the tensor is built)",
    { inputs: [tensor({ data: ["x", null, true] })] },
    true,
  ],
  ["a list, not an object", [request()], false],
  ["null", null, false],
];

describe("the fast path's check against the zod schema", () => {
  it.each(TABLE)("%s", (_case, body, fast) => {
    const zod = InferRequestSchema.safeParse(body);
    const checked = plainInferRequest(body);
    expect(checked !== undefined).toBe(fast);
    if (checked !== undefined) {
      expect(zod.success).toBe(true);
      expect(checked).toEqual(zod.data);
    }
  });

  it("seeded mutations of valid requests: never accepts what zod refuses, never outputs other than zod", () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const weird: unknown[] = [
      null,
      true,
      0,
      -1,
      1.5,
      -0,
      2 ** 53,
      "",
      "x",
      "FP32",
      [],
      {},
      [[1]],
      "x".repeat(300),
    ];
    const mutate = (value: unknown, depth = 0): unknown => {
      if (rand() < 0.1 || depth > 4) return weird[Math.floor(rand() * weird.length)];
      if (Array.isArray(value)) {
        const copy = value.map((v) => (rand() < 0.3 ? mutate(v, depth + 1) : v));
        if (rand() < 0.2) copy.push(weird[Math.floor(rand() * weird.length)]);
        if (rand() < 0.2) copy.splice(Math.floor(rand() * copy.length), 1);
        return copy;
      }
      if (value && typeof value === "object") {
        const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
        for (const key of Object.keys(copy)) {
          if (rand() < 0.3) copy[key] = mutate(copy[key], depth + 1);
          else if (rand() < 0.05) delete copy[key];
        }
        if (rand() < 0.05)
          copy[["extra", "parameters", "id", "outputs"][Math.floor(rand() * 4)] as string] = {};
        return copy;
      }
      return value;
    };
    let taken = 0;
    for (let i = 0; i < 5_000; i++) {
      const body = mutate(request({ id: "r", outputs: [{ name: "sum" }] }));
      const checked = plainInferRequest(body);
      if (checked === undefined) continue;
      taken += 1;
      const zod = InferRequestSchema.safeParse(body);
      expect(zod.success, JSON.stringify(body)).toBe(true);
      expect(checked).toEqual(zod.data);
    }
    // Enough of them took the fast path for the comparison to mean something.
    expect(taken).toBeGreaterThan(200);
  });
});

describe("POST /v2/models/{name}/infer through the fast path", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
    expect((await upload(t, "two", twoByTwoModel())).status).toBe(201);
  });
  afterAll(() => t.cleanup());

  const infer = (body: unknown, path = "/v2/models/two/infer", type = "application/json") =>
    t.request(path, { method: "POST", headers: { "content-type": type }, body: JSON.stringify(body) });

  it("a plain request is answered without running the zod validators", async () => {
    const parse = vi.spyOn(InferRequestSchema, "safeParseAsync");
    try {
      const res = await infer(request({ id: "fast" }));
      expect(res.status).toBe(200);
      expect(res.headers.get("x-model-version")).toBe("1");
      expect(parse).not.toHaveBeenCalled();
      // The same request the long way (a field the fast path leaves to zod) gets the same answer.
      const slow = await infer(request({ id: "fast", parameters: {} }));
      expect(parse).toHaveBeenCalledTimes(1);
      expect(await slow.json()).toEqual(await res.json());
    } finally {
      parse.mockRestore();
    }
  });

  it.each([
    ["a named version", "/v2/models/two/versions/1/infer", "application/json"],
    ["a charset", "/v2/models/two/infer", "application/json; charset=utf-8"],
  ])("%s: the same outputs", async (_case, path, type) => {
    const res = await infer(request(), path, type);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { outputs: { data: number[] }[] }).outputs.map((o) => o.data)).toEqual([
      [2, 4],
      [1, 4],
    ]);
  });

  it.each<[string, unknown, string, number, string]>([
    ["an invalid body: zod's 400", { inputs: [] }, "/v2/models/two/infer", 400, "inputs: Too small"],
    ["an invalid model name: the params' 400", request(), "/v2/models/-x/infer", 400, "name: model names"],
    ["an unknown model: 404", request(), "/v2/models/nope/infer", 404, "nope"],
    [
      "a wrong input name: the tensor check's 400",
      { inputs: [tensor({ name: "z" })] },
      "/v2/models/two/infer",
      400,
      "unknown input 'z'",
    ],
  ])("%s, as the long path answers it", async (_case, body, path, status, message) => {
    const res = await infer(body, path);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toContain(message);
  });
});
