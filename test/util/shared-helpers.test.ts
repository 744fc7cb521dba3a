import { describe, expect, it } from "vitest";
import { embeddedModuleSource } from "../../scripts/edge/embed.js";
import { errorMessage } from "../../src/errors.js";
import { barStep, firstBreak } from "../../src/market/symbols.js";
import type { Bar } from "../../src/market/types.js";
import { createEmbeddedPointerStore } from "../../src/storage/embedded.js";
import {
  parsePointerDocument,
  pointerDocumentJson,
  serialisePointerDocument,
} from "../../src/storage/pointer-document.js";
import { base64ToBytes } from "../../src/util/base64.js";
import { sha256Hex } from "../../src/util/hash.js";

describe("sha256Hex", () => {
  it("hashes bytes and a string's UTF-8 alike (FIPS 180-2 test vector)", async () => {
    const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    expect(await sha256Hex("abc")).toBe(abc);
    expect(await sha256Hex(new Uint8Array([0x61, 0x62, 0x63]))).toBe(abc);
  });
});

describe("base64ToBytes", () => {
  it.each([
    ["standard, padded", "+/8="],
    ["URL-safe, unpadded", "-_8"],
  ])("reads %s", (_, text) => {
    expect([...base64ToBytes(text)]).toEqual([0xfb, 0xff]);
  });

  it("throws on text that is not base64", () => {
    expect(() => base64ToBytes("not base64!")).toThrow();
  });
});

describe("errorMessage", () => {
  it.each([
    [new TypeError("bad"), "bad"],
    ["a string", "a string"],
    [42, "42"],
    [undefined, "undefined"],
  ])("of %o is %s", (error, message) => {
    expect(errorMessage(error)).toBe(message);
  });
});

describe("the pointer document (file store, deploy script, edge embedding)", () => {
  const text = '{"models":{"__proto__":{"pinned":"1"},"m":{"champion":"2"}}}';

  it("keeps a model named __proto__ as data, through a parse and a write", () => {
    const doc = parsePointerDocument(text);
    expect(doc.models.get("__proto__")).toEqual({ pinned: "1" });
    expect(parsePointerDocument(serialisePointerDocument(doc)).models.get("__proto__")).toEqual({
      pinned: "1",
    });
  });

  it("the embedded store reads it with the same schema: a __proto__ model's pointers are served", async () => {
    const store = createEmbeddedPointerStore({ source: "test", models: {}, pointers: JSON.parse(text) });
    expect(await store.get("__proto__")).toEqual({ pinned: "1" });
    expect(await store.get("m")).toEqual({ champion: "2" });
    expect(await store.get("toString")).toEqual({});
  });

  it("survives the edge bundle's embedded module: a __proto__ model stays data", async () => {
    const source = embeddedModuleSource({ source: "test", models: {}, pointers: JSON.parse(text) });
    const { EMBEDDED_REGISTRY } = await import(`data:text/javascript,${encodeURIComponent(source)}`);
    const store = createEmbeddedPointerStore(EMBEDDED_REGISTRY);
    expect(await store.get("__proto__")).toEqual({ pinned: "1" });
  });

  it("refuses pointers of the wrong shape, in the embedded store as in the file", () => {
    const bad = { models: { m: { pinned: 1 } } };
    expect(() => parsePointerDocument(JSON.stringify(bad))).toThrow();
    expect(() => createEmbeddedPointerStore({ source: "test", models: {}, pointers: bad })).toThrow(
      /embedded pointers.json is not valid/,
    );
  });

  it("as JSON data: models as an object, audit as an array", () => {
    expect(pointerDocumentJson(parsePointerDocument('{"models":{"m":{"champion":"1"}}}'))).toEqual({
      models: { m: { champion: "1" } },
      audit: [],
    });
  });
});

describe("bar spacing (CSV parser, training, serving)", () => {
  const HOUR = 3_600_000;
  it.each([
    [0, HOUR, "ok"],
    [HOUR, HOUR, "duplicate"],
    [HOUR, 0, "out_of_order"],
    [0, 2 * HOUR, "gap"],
  ] as const)("%i → %i at 1h is %s", (prev, next, how) => {
    expect(barStep(prev, next, "1h")).toBe(how);
  });

  it("firstBreak: the first bar not one interval after its predecessor, or -1", () => {
    const bars = (times: number[]) => times.map((time) => ({ time }) as Bar);
    expect(firstBreak(bars([0, HOUR, 2 * HOUR]), "1h")).toBe(-1);
    expect(firstBreak(bars([0, HOUR, 3 * HOUR, 4 * HOUR]), "1h")).toBe(2);
  });
});
