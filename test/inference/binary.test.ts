import { describe, expect, it } from "vitest";
import { decodeTensor, ELEMENT_BYTES, encodeTensor } from "../../src/inference/binary.js";
import type { OipDatatype } from "../../src/inference/datatypes.js";
import { toOrtTensor } from "../../src/inference/tensors.js";

/**
 * The binary tensor codec on its own: every datatype's elements survive decode (the typed array onnxruntime takes)
 * and encode (what an output sends) unchanged, wherever in the body they start.
 */
const CASES: [OipDatatype, unknown[]][] = [
  ["BOOL", [true, false, true, false]],
  ["UINT8", [0, 1, 200, 255]],
  ["INT8", [-128, -1, 0, 127]],
  ["UINT16", [0, 1, 40_000, 65_535]],
  ["INT16", [-32_768, -1, 0, 32_767]],
  ["FP16", [0.5, -2, 65_504, 0.0999755859375]],
  ["UINT32", [0, 1, 3_000_000_000, 4_294_967_295]],
  ["INT32", [-2_147_483_648, -1, 0, 2_147_483_647]],
  ["FP32", [Math.fround(0.1), -0, Math.fround(3.4e38), Math.fround(1e-45)]],
  ["UINT64", [0, 1, 2 ** 40, 2 ** 53 - 1]],
  ["INT64", [-(2 ** 53) + 1, -1, 0, 2 ** 53 - 1]],
  ["FP64", [0.1, -0, 1.7e308, 5e-324]],
  ["BYTES", ["a", "", "ünï €", "𝔘"]],
];

describe("binary tensor codec", () => {
  it("knows the size of every fixed-size datatype", () => {
    expect(Object.keys(ELEMENT_BYTES).sort()).toEqual(
      CASES.map(([d]) => d)
        .filter((d) => d !== "BYTES")
        .sort(),
    );
  });

  describe.each(CASES)("%s", (datatype, data) => {
    const encoded = encodeTensor({ name: "y", datatype, shape: [2, 2], data: data as never });

    it("encodes to the datatype's size × elements (BYTES: length-prefixed)", () => {
      const size = datatype === "BYTES" ? undefined : ELEMENT_BYTES[datatype];
      if (size !== undefined) expect(encoded.length).toBe(size * data.length);
    });

    it.each([0, 1, 3])("decodes what it encoded, starting at byte %i of the body", (offset) => {
      const body = new Uint8Array(offset + encoded.length);
      body.set(encoded, offset);
      const decoded = decodeTensor("x", datatype, [2, 2], body.subarray(offset));
      // Through toOrtTensor, as a request goes, and back out as an output goes: the same elements.
      const tensor = toOrtTensor("x", datatype, [2, 2], decoded);
      expect(tensor.dims).toEqual([2, 2]);
      const again = encodeTensor({
        name: "y",
        datatype,
        shape: [2, 2],
        data: datatype === "BYTES" ? (decoded as string[]) : (data as never),
      });
      expect(again).toEqual(encoded);
      if (datatype === "BYTES") expect(decoded).toEqual(data);
      else {
        const raw = decoded as ArrayBufferView;
        expect(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)).toEqual(encoded);
      }
    });
  });
});
