import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trainSymbol } from "../../src/forecast/training.js";
import { type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel, twoByTwoModel } from "../support/onnx-models.js";

/**
 * No client input yields a 500: seeded random mutations of valid requests, sent to every route. Every answer must
 * be JSON in the one error shape (or a success), with a status below 500 — 503 and 504 excepted only for what they
 * document (no model, market data, verification, timeout), never `internal`.
 */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = 400;

const weird: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  -0,
  "",
  "x",
  "24h",
  "BTC",
  "FP32",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "a".repeat(300),
  [],
  [null],
  [[[]]],
  {},
  { nested: { deep: [1, { x: "y" }] } },
  Number.MAX_SAFE_INTEGER + 2,
  "__proto__",
  { __proto__: { polluted: true } },
];

function mutate(value: unknown, rand: () => number, depth = 0): unknown {
  const pick = <T>(list: readonly T[]) => list[Math.floor(rand() * list.length)] as T;
  const r = rand();
  if (r < 0.15 || depth > 4) return pick(weird);
  if (Array.isArray(value)) {
    const copy = value.map((v) => (rand() < 0.3 ? mutate(v, rand, depth + 1) : v));
    if (rand() < 0.2) copy.push(pick(weird));
    if (rand() < 0.2) copy.splice(Math.floor(rand() * copy.length), 1);
    return copy;
  }
  if (value && typeof value === "object") {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const key of Object.keys(copy)) {
      if (rand() < 0.35) copy[key] = mutate(copy[key], rand, depth + 1);
      else if (rand() < 0.08) delete copy[key];
    }
    if (rand() < 0.1) copy[pick(["extra", "__proto__", "constructor", "id"])] = pick(weird);
    return copy;
  }
  return rand() < 0.5 ? pick(weird) : value;
}

describe("fuzz: mutated requests never answer 500", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
    await upload(t, "two", twoByTwoModel());
    await upload(t, "add", elementwiseModel({ op: "Add", elem: "INT64", shape: ["batch", 2] }));
    await trainSymbol({
      symbol: "BTC",
      market: t.deps.market,
      registry: t.app.registry,
      plan: { families: ["ridge"] },
    });
  });
  afterAll(() => t.cleanup());

  const tensor = (name: string) => ({ name, datatype: "FP64", shape: [1, 2], data: [1, 2] });
  const targets: { path: string; admin: boolean; body: unknown }[] = [
    {
      path: "/v2/models/two/infer",
      admin: false,
      body: { id: "x", inputs: [tensor("a"), tensor("b")], outputs: [{ name: "sum" }] },
    },
    {
      path: "/v2/models/add/versions/1/infer",
      admin: false,
      body: { inputs: [{ name: "x", datatype: "INT64", shape: [1, 2], data: [1, 2] }] },
    },
    { path: "/api/ml/serve", admin: false, body: { symbol: "BTC", horizon: "24h" } },
    { path: "/api/ml/batch", admin: false, body: { symbols: ["BTC", "ETH"], horizon: "24h" } },
    { path: "/api/ml/models/two/promote", admin: true, body: { version: "1", reason: "r" } },
    { path: "/api/ml/models/two/rollback", admin: true, body: { to: "1" } },
    { path: "/api/ml/models/two/pin", admin: true, body: { version: null } },
    { path: "/api/ml/train", admin: true, body: { model_id: "NOPE" } },
  ];

  it(`${SEEDS} seeds × ${targets.length} routes`, async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = prng(seed);
      for (const target of targets) {
        const body = mutate(target.body, rand);
        const init: RequestInit = {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: rand() < 0.03 ? JSON.stringify(body).slice(0, -1) : JSON.stringify(body),
        };
        const res = await (target.admin ? t.admin(target.path, init) : t.request(target.path, init));
        const text = await res.text();
        let json: { error?: unknown; code?: unknown } | undefined;
        try {
          json = JSON.parse(text);
        } catch {
          failures.push(`seed ${seed} ${target.path}: not JSON: ${text.slice(0, 80)}`);
          continue;
        }
        const documented5xx = res.status >= 500 && res.status !== 500 && json?.code !== "internal";
        if (res.status >= 500 && !documented5xx) {
          failures.push(
            `seed ${seed} ${target.path} ${JSON.stringify(body).slice(0, 160)} → ${res.status} ${text.slice(0, 160)}`,
          );
        }
        if (res.status >= 400 && (typeof json?.error !== "string" || typeof json?.code !== "string")) {
          failures.push(
            `seed ${seed} ${target.path}: ${res.status} without the error shape: ${text.slice(0, 120)}`,
          );
        }
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
