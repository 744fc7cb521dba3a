import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { trainSymbol } from "../../src/forecast/training.js";
import { plainServeRequest } from "../../src/routes/fast-serve.js";
import { ServeRequestSchema } from "../../src/routes/forecast.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { type TestApp, testApp } from "../support/app.js";
import { DATA_AS_OF } from "../support/paths.js";

/**
 * The serve route's fast path (src/routes/fast-serve.ts) against the zod schema it stands in for: whatever it takes,
 * zod accepts with the same output; whatever zod refuses, it leaves to the zod path (which answers). The table names
 * the boundaries; the seeded mutations look for a value the table forgot.
 */

const request = (over: Record<string, unknown> = {}) => ({ symbol: "BTC", ...over });

/** [case, body, whether the fast path takes it]. Every row is also checked against zod. */
const TABLE: [string, unknown, boolean][] = [
  ["the common request", request(), true],
  ["with every field", request({ horizon: "24h", as_of: "2026-03-28", interval_level: 0.8 }), true],
  ["a lower-case symbol (normalised later, as on the zod path)", request({ symbol: "btc" }), true],
  ["a symbol of 16 characters (the limit)", request({ symbol: "X".repeat(16) }), true],
  ["a symbol of 17 characters", request({ symbol: "X".repeat(17) }), false],
  ["an empty symbol", request({ symbol: "" }), false],
  ["no symbol", {}, false],
  ["a symbol that is a number", request({ symbol: 1 }), false],
  ["a horizon of 8 characters (the limit)", request({ horizon: "12345678" }), true],
  ["a horizon of 9 characters", request({ horizon: "123456789" }), false],
  ["an empty horizon", request({ horizon: "" }), false],
  ["a null horizon", request({ horizon: null }), false],
  ["an instant with its zone", request({ as_of: "2026-03-28T12:00:00Z" }), true],
  ["an instant with an offset", request({ as_of: "2026-03-28T12:00:00+02:00" }), true],
  ["an instant without a zone", request({ as_of: "2026-03-28T12:00:00" }), false],
  ["a date that is not one", request({ as_of: "2026-02-30" }), false],
  ["as_of a number", request({ as_of: 20260328 }), false],
  ["every calibrated level", request({ interval_level: 0.9 }), true],
  ["a level no calibration has", request({ interval_level: 0.85 }), false],
  ["a level as text", request({ interval_level: "0.8" }), false],
  ["an unknown field (zod strips it)", request({ extra: 1 }), false],
  ["a model_version (not in this schema: zod strips it)", request({ model_version: "1" }), false],
  ["a __proto__ key", JSON.parse('{"__proto__": {"x": 1}, "symbol": "BTC"}'), false],
  ["a list, not an object", [request()], false],
  ["null", null, false],
];

describe("the serve fast path's check against the zod schema", () => {
  it.each(TABLE)("%s", (_case, body, fast) => {
    const zod = ServeRequestSchema.safeParse(body);
    const checked = plainServeRequest(body);
    expect(checked !== undefined).toBe(fast);
    if (checked !== undefined) {
      expect(zod.success).toBe(true);
      expect(checked).toEqual(zod.data);
    }
  });

  it("seeded mutations of valid requests: never accepts what zod refuses, never outputs other than zod", () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const weird: unknown[] = [
      null,
      true,
      0,
      0.5,
      0.8,
      0.95,
      Number.NaN,
      -0,
      "",
      "24h",
      "x".repeat(9),
      "2026-03-28",
      "2026-03-28T00:00:00.000Z",
      "2026-13-01",
      [],
      {},
    ];
    const pick = () => weird[Math.floor(rand() * weird.length)];
    let taken = 0;
    for (let i = 0; i < 5_000; i++) {
      const body: Record<string, unknown> = request({
        horizon: "24h",
        as_of: "2026-03-28",
        interval_level: 0.8,
      });
      for (const key of Object.keys(body)) {
        if (rand() < 0.25) body[key] = pick();
        else if (rand() < 0.15) delete body[key];
      }
      if (rand() < 0.05) body.extra = pick();
      const checked = plainServeRequest(body);
      if (checked === undefined) continue;
      taken += 1;
      const zod = ServeRequestSchema.safeParse(body);
      expect(zod.success, JSON.stringify(body)).toBe(true);
      expect(checked).toEqual(zod.data);
    }
    expect(taken).toBeGreaterThan(500);
  });
});

describe("POST /api/ml/serve through the fast path and the zod path", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: t.deps.market,
      registry: t.app.registry,
    });
  }, 120_000);
  afterAll(() => t.cleanup());
  afterEach(() => vi.restoreAllMocks());

  const serve = (body: unknown, headers: Record<string, string> = {}) =>
    t.request("/api/ml/serve", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  it("a common request is answered without the route's zod validation, as the zod path answers it", async () => {
    const zod = vi.spyOn(ServeRequestSchema, "safeParseAsync");
    const fast = await serve({ symbol: "BTC", as_of: DATA_AS_OF }, { "x-client-id": "client-1" });
    expect(fast.status).toBe(200);
    expect(zod).not.toHaveBeenCalled();
    // The same request with a field zod strips goes the long way and gets the same forecast.
    const slow = await serve({ symbol: "BTC", as_of: DATA_AS_OF, extra: 1 }, { "x-client-id": "client-1" });
    expect(slow.status).toBe(200);
    expect(zod).toHaveBeenCalled();
    const [a, b] = [await fast.json(), await slow.json()];
    expect({ ...b, cached: a.cached, data_age_seconds: a.data_age_seconds }).toEqual(a);
    expect(slow.headers.get("x-model-version")).toBe(fast.headers.get("x-model-version"));
  });

  it.each([
    ["a malformed x-client-id", { symbol: "BTC", as_of: DATA_AS_OF }, { "x-client-id": "x".repeat(129) }],
    ["a symbol too long", { symbol: "X".repeat(17), as_of: DATA_AS_OF }, {}],
    ["a level no calibration has", { symbol: "BTC", as_of: DATA_AS_OF, interval_level: 0.85 }, {}],
  ])("%s is refused by the zod path, 400 invalid_request", async (_case, body, headers) => {
    const res = await serve(body, headers);
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe("invalid_request");
  });
});
