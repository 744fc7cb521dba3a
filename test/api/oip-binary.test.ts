import { readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { byoCase, postJson, type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel, twoByTwoModel } from "../support/onnx-models.js";
import { BYO_MODELS } from "../support/paths.js";
import {
  InferInput,
  InferRequestedOutput,
  InferResult,
  inferenceRequest,
  inferInit,
  type NumericArray,
  serializeByteTensor,
} from "../support/triton-client.js";

/**
 * The binary tensor data extension (Triton's extension_binary_data.md) on the infer routes, spoken by a client that
 * builds its requests as tritonclient.http does: binary inputs and outputs give the JSON path's numbers bit for bit,
 * and every malformed binary body is a 400 that says what is wrong, as the JSON path's are.
 */
const BYO = readdirSync(BYO_MODELS)
  .filter((f) => f.endsWith(".json"))
  .sort();

/** Every number as the hex of its float64 bits: equal means bit for bit, -0 included. */
const bits = (values: ArrayLike<unknown>) =>
  Array.from(values, (v) => {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, Number(v));
    return view.getBigUint64(0).toString(16);
  });

const TYPED = { FP32: Float32Array, FP64: Float64Array } as const;

describe("OIP binary tensor data extension", () => {
  let t: TestApp;
  const infer = (model: string, init: RequestInit) => t.request(`/v2/models/${model}/infer`, init);
  const send = (model: string, request: Parameters<typeof inferenceRequest>[0]) =>
    infer(model, inferInit(inferenceRequest(request)));

  beforeAll(async () => {
    t = await testApp({ maxInferBytes: 1 << 20 });
    for (const file of BYO) {
      const { bytes } = await byoCase(file);
      expect((await upload(t, file.replace(/\.json$/, ""), bytes)).status).toBe(201);
    }
    const models: [string, Uint8Array][] = [
      ["two", twoByTwoModel()],
      ["id-fp16", elementwiseModel({ op: "Identity", elem: "FP16", shape: ["batch", 2] })],
      ["id-fp32", elementwiseModel({ op: "Identity", elem: "FP32", shape: ["batch", 2] })],
      ["id-fp64", elementwiseModel({ op: "Identity", elem: "FP64", shape: ["batch", 2] })],
      ["id-int64", elementwiseModel({ op: "Identity", elem: "INT64", shape: ["batch", 2] })],
      ["id-int32", elementwiseModel({ op: "Identity", elem: "INT32", shape: ["batch", 2] })],
      ["id-int8", elementwiseModel({ op: "Identity", elem: "INT8", shape: ["batch", 2] })],
      ["id-uint8", elementwiseModel({ op: "Identity", elem: "UINT8", shape: ["batch", 2] })],
      ["id-bool", elementwiseModel({ op: "Identity", elem: "BOOL", shape: ["batch", 2] })],
      ["id-text", elementwiseModel({ op: "Identity", elem: "STRING", shape: ["batch", 2] })],
    ];
    for (const [name, bytes] of models) expect((await upload(t, name, bytes)).status).toBe(201);
  }, 120_000);
  afterAll(() => t.cleanup());

  it("GET /v2 lists binary_tensor_data among its extensions", async () => {
    const body = await (await t.request("/v2")).json();
    expect(body.extensions).toContain("binary_tensor_data");
  });

  describe.each(BYO)("%s, asked as tritonclient asks by default", (file) => {
    it("a binary input and binary output give the JSON request's outputs, bit for bit", async () => {
      const { spec } = await byoCase(file);
      const name = file.replace(/\.json$/, "");
      const json = await postJson(t, `/v2/models/${name}/infer`, { id: "r", inputs: [spec.input] });
      expect(json.status).toBe(200);
      const expected = (await json.json()).outputs[0];

      const input = new InferInput(spec.input.name, spec.input.shape, spec.input.datatype);
      input.setData(TYPED[spec.input.datatype].from(spec.input.data));
      const res = await send(name, { inputs: [input], requestId: "r" });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/octet-stream");
      expect(res.headers.get("x-model-version")).toBe("1");
      const result = await InferResult.of(res);
      expect(result.result).toMatchObject({ model_name: name, model_version: "1", id: "r" });
      const [output] = result.result.outputs;
      expect(output).toMatchObject({
        name: expected.name,
        datatype: expected.datatype,
        shape: expected.shape,
        parameters: { binary_data_size: expected.data.length * (expected.datatype === "FP64" ? 8 : 4) },
      });
      expect(output).not.toHaveProperty("data");
      expect(bits(result.output(expected.name) as NumericArray)).toEqual(bits(expected.data));

      // The same request asking its output as JSON: a plain JSON answer, equal to the JSON request's.
      const asJson = await send(name, {
        inputs: [input],
        outputs: [new InferRequestedOutput(expected.name, false)],
        requestId: "r",
      });
      expect(asJson.headers.get("content-type")).toMatch(/^application\/json/);
      expect(asJson.headers.get("inference-header-content-length")).toBeNull();
      expect(bits((await asJson.json()).outputs[0].data)).toEqual(bits(expected.data));
    });
  });

  it("mixes JSON and binary inputs, and JSON and binary outputs, in one request", async () => {
    const a = [1.5, -0, 3.25, 1e-300];
    const b = [2, 0.1, -4, 7];
    const json = await postJson(t, "/v2/models/two/infer", {
      inputs: [
        { name: "a", datatype: "FP64", shape: [2, 2], data: a },
        { name: "b", datatype: "FP64", shape: [2, 2], data: b },
      ],
    });
    const expected = (await json.json()).outputs as { name: string; data: number[] }[];
    const res = await send("two", {
      inputs: [
        new InferInput("a", [2, 2], "FP64").setData(Float64Array.from(a)),
        new InferInput("b", [2, 2], "FP64").setData(Float64Array.from(b), false),
      ],
      outputs: [new InferRequestedOutput("sum"), new InferRequestedOutput("prod", false)],
    });
    expect(res.status).toBe(200);
    const result = await InferResult.of(res);
    expect(
      result.result.outputs.map((o) => [o.name, o.parameters?.binary_data_size, o.data !== undefined]),
    ).toEqual([
      ["sum", 32, false],
      ["prod", undefined, true],
    ]);
    for (const { name, data } of expected) expect(bits(result.output(name) as number[])).toEqual(bits(data));
  });

  it.each<[string, string, NumericArray | string[] | boolean[], unknown[]]>([
    ["id-fp16", "FP16", Uint16Array.from([0x3800, 0xbc00, 0x6400, 0x2e66]), [0.5, -1, 1024, 0.0999755859375]],
    [
      "id-fp32",
      "FP32",
      Float32Array.from([0.1, -0, 3.4e38, 1e-45]),
      Array.from(Float32Array.from([0.1, -0, 3.4e38, 1e-45])),
    ],
    ["id-fp64", "FP64", Float64Array.from([0.1, -0, 1.7e308, 5e-324]), [0.1, -0, 1.7e308, 5e-324]],
    [
      "id-int64",
      "INT64",
      BigInt64Array.from([-(2n ** 53n) + 1n, 0n, 42n, 2n ** 53n - 1n]),
      [-(2 ** 53) + 1, 0, 42, 2 ** 53 - 1],
    ],
    [
      "id-int32",
      "INT32",
      Int32Array.from([-(2 ** 31), -1, 0, 2 ** 31 - 1]),
      [-(2 ** 31), -1, 0, 2 ** 31 - 1],
    ],
    ["id-int8", "INT8", Int8Array.from([-128, -1, 0, 127]), [-128, -1, 0, 127]],
    ["id-uint8", "UINT8", Uint8Array.from([0, 1, 128, 255]), [0, 1, 128, 255]],
    ["id-bool", "BOOL", [true, false, false, true], [true, false, false, true]],
    ["id-text", "BYTES", ["a", "", "ünï €", "𝔘"], ["a", "", "ünï €", "𝔘"]],
  ])("%s: %s round-trips in binary as the JSON path carries it", async (model, datatype, values, asJson) => {
    const input = new InferInput("x", [2, 2], datatype).setData(values);
    const res = await send(model, { inputs: [input] });
    expect(res.status).toBe(200);
    const result = await InferResult.of(res);
    const raw = input.binaryData() as Uint8Array;
    expect(result.result.outputs[0]?.parameters?.binary_data_size).toBe(raw.length);
    // The output's bytes are the input's bytes: nothing converted on the way, both ways.
    const out = result.output("y");
    const outBytes =
      datatype === "BYTES"
        ? serializeByteTensor(out as string[])
        : new Uint8Array((out as NumericArray).buffer);
    expect(outBytes).toEqual(raw);
    // And the JSON path answers the same elements for them.
    const json = await postJson(t, `/v2/models/${model}/infer`, {
      inputs: [{ name: "x", datatype, shape: [2, 2], data: asJson }],
    });
    expect(json.status).toBe(200);
    const jsonData = (await json.json()).outputs[0].data;
    // JSON has no -0 (it prints as 0); the binary answer above kept it.
    expect(jsonData).toEqual(asJson.map((v) => (Object.is(v, -0) ? 0 : v)));
    const binaryAsJson = await send(model, {
      inputs: [input],
      outputs: [new InferRequestedOutput("y", false)],
    });
    expect((await binaryAsJson.json()).outputs[0].data).toEqual(jsonData);
  });

  it("answers a JSON request that asks binary outputs in the binary framing", async () => {
    const res = await postJson(t, "/v2/models/two/infer", {
      parameters: { binary_data_output: true },
      inputs: [
        { name: "a", datatype: "FP64", shape: [1, 2], data: [1, 2] },
        { name: "b", datatype: "FP64", shape: [1, 2], data: [3, 4] },
      ],
      outputs: [{ name: "sum" }, { name: "prod", parameters: { binary_data: false } }],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    const result = await InferResult.of(res);
    expect(result.result.outputs.map((o) => o.parameters?.binary_data_size)).toEqual([16, undefined]);
    expect(Array.from(result.output("sum") as Float64Array)).toEqual([4, 6]);
    expect(result.output("prod")).toEqual([3, 8]);
  });

  it("serves a JSON body sent with no content type, as tritonclient sends an all-JSON request", async () => {
    const request = inferenceRequest({
      inputs: [
        new InferInput("a", [1, 2], "FP64").setData(Float64Array.of(1, 2), false),
        new InferInput("b", [1, 2], "FP64").setData(Float64Array.of(3, 4), false),
      ],
    });
    expect(request.jsonSize).toBeUndefined();
    const res = await infer("two", inferInit(request));
    expect(res.status).toBe(200);
    const result = await InferResult.of(res);
    expect(Array.from(result.output("prod") as Float64Array)).toEqual([3, 8]);
  });

  it("takes a binary body sent as application/json too (the header decides, as in Triton)", async () => {
    // 80 bytes of '[': read as JSON text they would nest past the bound, so only the header may be scanned as JSON.
    const brackets = new Float64Array(Uint8Array.from({ length: 80 }, () => 0x5b).buffer);
    const { body, jsonSize } = inferenceRequest({
      inputs: [
        new InferInput("a", [5, 2], "FP64").setData(brackets),
        new InferInput("b", [5, 2], "FP64").setData(brackets),
      ],
    });
    const res = await infer("two", {
      method: "POST",
      headers: { "content-type": "application/json", "inference-header-content-length": String(jsonSize) },
      body: body as Uint8Array<ArrayBuffer>,
    });
    expect(res.status).toBe(200);
    const sum = (await InferResult.of(res)).output("sum") as Float64Array;
    expect(Array.from(sum)).toEqual(Array.from(brackets, (v) => v + v));
  });

  describe("refuses malformed binary bodies with a 400 that says what is wrong", () => {
    const fp32 = (values: number[]) =>
      new InferInput("x", [values.length / 2, 2], "FP32").setData(Float32Array.from(values));
    const raw = (datatype: string, bytes: number[], declared?: number) =>
      new InferInput("x", [1, 2], datatype).setRaw(Uint8Array.from(bytes), declared);
    const body = (request: Parameters<typeof inferenceRequest>[0]) => inferenceRequest(request);
    const withHeader = (
      request: ReturnType<typeof inferenceRequest>,
      header: string,
      type?: string,
    ): RequestInit => ({
      method: "POST",
      headers: { "inference-header-content-length": header, ...(type && { "content-type": type }) },
      body: request.body as Uint8Array<ArrayBuffer>,
    });
    const cases: [string, string, () => RequestInit, string, RegExp][] = [
      [
        "a header length that is not a number",
        "id-fp32",
        () => withHeader(body({ inputs: [fp32([1, 2])] }), "12a"),
        "invalid_request",
        /Inference-Header-Content-Length must be the byte length/,
      ],
      [
        "a negative header length",
        "id-fp32",
        () => withHeader(body({ inputs: [fp32([1, 2])] }), "-4"),
        "invalid_request",
        /must be the byte length/,
      ],
      [
        "a header length past the body",
        "id-fp32",
        () => withHeader(body({ inputs: [fp32([1, 2])] }), "100000"),
        "invalid_request",
        /is 100000 but the body has only \d+ bytes/,
      ],
      [
        "a header length of 0 (Triton's raw binary request)",
        "id-fp32",
        () => withHeader(body({ inputs: [fp32([1, 2])] }), "0"),
        "invalid_request",
        /\(a raw binary body without a JSON header\) is not supported/,
      ],
      [
        "a header length that cuts the JSON short",
        "id-fp32",
        () => {
          const request = body({ inputs: [fp32([1, 2])] });
          return withHeader(request, String((request.jsonSize ?? 0) - 3));
        },
        "invalid_request",
        /the JSON header \(the first \d+ bytes of the body.*\) is not valid JSON/,
      ],
      [
        "a header length that takes binary bytes into the JSON",
        "id-fp32",
        () => {
          const request = body({ inputs: [fp32([1, 2])] });
          return withHeader(request, String((request.jsonSize ?? 0) + 2));
        },
        "invalid_request",
        /is not valid JSON/,
      ],
      [
        "an octet-stream body without the header",
        "id-fp32",
        () => ({
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
          body: body({ inputs: [fp32([1, 2])] }).body as Uint8Array<ArrayBuffer>,
        }),
        "invalid_request",
        /needs Inference-Header-Content-Length/,
      ],
      [
        "a binary_data_size that does not fit shape × datatype",
        "id-fp32",
        () => inferInit(body({ inputs: [raw("FP32", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])] })),
        "invalid_tensor",
        /binary_data_size is 12 bytes but shape \[1, 2\] of FP32 takes 8 \(2 elements × 4 bytes\)/,
      ],
      [
        "bytes after the last input",
        "id-fp32",
        () => {
          const request = body({ inputs: [raw("FP32", [0, 0, 0, 0, 0, 0, 0, 0, 9], 8)] });
          return inferInit(request);
        },
        "invalid_request",
        /the body has 9 bytes after the JSON header but the inputs' binary_data_size add up to 8/,
      ],
      [
        "fewer bytes than the sizes say",
        "id-fp32",
        () => inferInit(body({ inputs: [raw("FP32", [0, 0, 0, 0], 8)] })),
        "invalid_request",
        /the body has 4 bytes after the JSON header but the inputs' binary_data_size add up to 8/,
      ],
      [
        "both data and binary_data_size",
        "id-fp32",
        () => {
          const input = fp32([1, 2]);
          const request = body({ inputs: [input] });
          const json = JSON.parse(new TextDecoder().decode(request.body.subarray(0, request.jsonSize)));
          json.inputs[0].data = [1, 2];
          return inferInit(rebuild(json, input.binaryData() as Uint8Array));
        },
        "invalid_request",
        /input 'x' has both `data` and parameters.binary_data_size/,
      ],
      [
        "a negative binary_data_size",
        "id-fp32",
        () => inferInit(body({ inputs: [raw("FP32", [], -8)] })),
        "invalid_request",
        /binary_data_size must be the byte length of its binary data/,
      ],
      [
        "a binary_data_size that is not a number",
        "id-fp32",
        () => inferInit(body({ inputs: [raw("FP32", [], "8" as never)] })),
        "invalid_request",
        /binary_data_size must be the byte length/,
      ],
      [
        "an input with neither data nor binary_data_size",
        "two",
        () =>
          inferInit(
            body({
              inputs: [
                new InferInput("a", [1, 2], "FP64").setData(Float64Array.of(1, 2)),
                new InferInput("b", [1, 2], "FP64"),
              ],
            }),
          ),
        "invalid_request",
        /input 'b' has no data/,
      ],
      [
        "a BOOL byte other than 0 and 1",
        "id-bool",
        () => inferInit(body({ inputs: [raw("BOOL", [1, 2])] })),
        "invalid_tensor",
        /element 1 is the byte 2; a BOOL element is 0 \(false\) or 1 \(true\)/,
      ],
      [
        "an INT64 past 2^53",
        "id-int64",
        () =>
          inferInit(
            body({
              inputs: [new InferInput("x", [1, 2], "INT64").setData(BigInt64Array.of(1n, 2n ** 53n + 1n))],
            }),
          ),
        "invalid_tensor",
        /element 1 = 9007199254740993 is beyond ±2\^53/,
      ],
      [
        "a BYTES element that is not UTF-8",
        "id-text",
        () => inferInit(body({ inputs: [raw("BYTES", [1, 0, 0, 0, 0x61, 1, 0, 0, 0, 0xff])] })),
        "invalid_tensor",
        /element 1 is not valid UTF-8/,
      ],
      [
        "a BYTES element cut short",
        "id-text",
        () => inferInit(body({ inputs: [raw("BYTES", [1, 0, 0, 0, 0x61, 5, 0, 0, 0, 0x61])] })),
        "invalid_tensor",
        /element 1 claims 5 bytes but only 1 remain/,
      ],
      [
        "a BYTES length prefix cut short",
        "id-text",
        () => inferInit(body({ inputs: [raw("BYTES", [1, 0, 0, 0, 0x61, 1, 0])] })),
        "invalid_tensor",
        /element 1 is cut short/,
      ],
      [
        "fewer BYTES elements than the shape",
        "id-text",
        () => inferInit(body({ inputs: [raw("BYTES", [1, 0, 0, 0, 0x61])] })),
        "invalid_tensor",
        /shape \[1, 2\] holds 2 elements but its binary data holds 1/,
      ],
      [
        "more BYTES elements than the shape",
        "id-text",
        () => inferInit(body({ inputs: [new InferInput("x", [1, 2], "BYTES").setData(["a", "b", "c"])] })),
        "invalid_tensor",
        /holds 2 elements but its binary data holds more/,
      ],
      [
        "a binary_data_output that is not a boolean",
        "id-fp32",
        () => inferInit(body({ inputs: [fp32([1, 2])], parameters: { binary_data_output: "yes" } })),
        "invalid_request",
        /parameters.binary_data_output/,
      ],
      [
        "a BF16 input (not a datatype this server serves)",
        "id-fp32",
        () => inferInit(body({ inputs: [new InferInput("x", [1, 2], "BF16").setRaw(new Uint8Array(4))] })),
        "invalid_request",
        /inputs.0.datatype/,
      ],
      [
        "a JSON header nested past the bound",
        "id-fp32",
        () => {
          const request = body({
            inputs: [fp32([1, 2])],
            parameters: { deep: JSON.parse(`${"[".repeat(70)}${"]".repeat(70)}`) },
          });
          return inferInit(request);
        },
        "invalid_request",
        /the JSON header nests deeper than 64 levels/,
      ],
      [
        "an invalid model name",
        "bad name!",
        () => inferInit(body({ inputs: [fp32([1, 2])] })),
        "invalid_request",
        /invalid request: name/,
      ],
    ];
    it.each(cases)("%s", async (_label, model, init, code, message) => {
      const res = await t.request(`/v2/models/${encodeURIComponent(model)}/infer`, init());
      const answer = await res.json();
      expect({ status: res.status, code: answer.code }).toEqual({ status: 400, code });
      expect(answer.error).toMatch(message);
    });

    it("an unknown model is the JSON path's 404", async () => {
      const res = await send("nope", { inputs: [fp32([1, 2])] });
      expect(res.status).toBe(404);
      expect((await res.json()).code).toBe("model_not_found");
    });

    it.each<[string, string, NumericArray, unknown[]]>([
      ["a NaN FP32", "FP32", Float32Array.of(1, Number.NaN), [1, null]],
      ["an infinite FP64", "FP64", Float64Array.of(Number.POSITIVE_INFINITY, 1), [null, 1]],
      ["an infinite FP16 (0x7c00)", "FP16", Uint16Array.of(0x3c00, 0x7c00), [1, null]],
    ])("%s is refused in the JSON path's words", async (_label, datatype, values, json) => {
      const model = `id-${datatype.toLowerCase()}`;
      const binary = await send(model, { inputs: [new InferInput("x", [1, 2], datatype).setData(values)] });
      const viaJson = await postJson(t, `/v2/models/${model}/infer`, {
        inputs: [{ name: "x", datatype, shape: [1, 2], data: json }],
      });
      expect(binary.status).toBe(400);
      expect(await binary.json()).toEqual(await viaJson.json());
    });

    it("a NUL inside a BYTES element is refused in the JSON path's words", async () => {
      const binary = await send("id-text", {
        inputs: [new InferInput("x", [1, 2], "BYTES").setData(["a", "b\0c"])],
      });
      const viaJson = await postJson(t, "/v2/models/id-text/infer", {
        inputs: [{ name: "x", datatype: "BYTES", shape: [1, 2], data: ["a", "b\0c"] }],
      });
      expect(binary.status).toBe(400);
      expect(await binary.json()).toEqual(await viaJson.json());
    });

    it("a body past MAX_INFER_BYTES is the JSON path's 413", async () => {
      const rows = 40_000; // 40,000 × 2 × 8 bytes = 640 KB… doubled past the 1 MiB limit of this app
      const res = await send("id-fp64", {
        inputs: [new InferInput("x", [rows * 2, 2], "FP64").setData(new Float64Array(rows * 4))],
      });
      expect(res.status).toBe(413);
      expect((await res.json()).code).toBe("payload_too_large");
    });
  });
});

/** A binary request from an edited JSON header, as a client with its own serialiser would send it. */
function rebuild(json: unknown, binary: Uint8Array): { body: Uint8Array; jsonSize: number } {
  const header = new TextEncoder().encode(JSON.stringify(json));
  const body = new Uint8Array(header.length + binary.length);
  body.set(header, 0);
  body.set(binary, header.length);
  return { body, jsonSize: header.length };
}
