import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trainSymbol } from "../../src/forecast/training.js";
import { serveDocsAssets } from "../../src/runtime/node/docs-assets.js";
import { trainForecaster } from "../../src/training/forecaster.js";
import { type TestApp, testApp, upload } from "../support/app.js";
import { elementwiseModel, expandModel, twoByTwoModel } from "../support/onnx-models.js";
import { InferInput, InferRequestedOutput, inferenceRequest } from "../support/triton-client.js";

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
  "constructor",
  "toString",
  "pointers.json",
  { __proto__: { polluted: true } },
  JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {}}}'),
  // Nesting past the bound of any JSON body, and within it but past a tensor's rank.
  JSON.parse(`${"[".repeat(70)}1${"]".repeat(70)}`),
  JSON.parse(`${"[".repeat(20)}1${"]".repeat(20)}`),
];

/** Names a client may put in a path: prototype members, the registry's own files, reserved words, odd characters. */
const HOSTILE_NAMES = [
  "constructor",
  "__proto__",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "prototype",
  "pointers.json",
  "stats",
  "..",
  ".",
  "a..b",
  "%2e%2e",
  "x".repeat(200),
  "two",
  "0",
];

const pick = <T>(list: readonly T[], rand: () => number) => list[Math.floor(rand() * list.length)] as T;

function mutate(value: unknown, rand: () => number, depth = 0): unknown {
  const r = rand();
  if (r < 0.15 || depth > 4) return pick(weird, rand);
  if (Array.isArray(value)) {
    const copy = value.map((v) => (rand() < 0.3 ? mutate(v, rand, depth + 1) : v));
    if (rand() < 0.2) copy.push(pick(weird, rand));
    if (rand() < 0.2) copy.splice(Math.floor(rand() * copy.length), 1);
    return copy;
  }
  if (value && typeof value === "object") {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const key of Object.keys(copy)) {
      if (rand() < 0.35) copy[key] = mutate(copy[key], rand, depth + 1);
      else if (rand() < 0.08) delete copy[key];
    }
    if (rand() < 0.1) copy[pick(["extra", "__proto__", "constructor", "id"], rand)] = pick(weird, rand);
    return copy;
  }
  return rand() < 0.5 ? pick(weird, rand) : value;
}

describe("fuzz: mutated requests never answer 500", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
    // The Node server's offline docs assets: a whitelist keyed by the path a client sends.
    serveDocsAssets(t.app.app);
    await upload(t, "two", twoByTwoModel());
    await upload(t, "add", elementwiseModel({ op: "Add", elem: "INT64", shape: ["batch", 2] }));
    // A 16-byte `shape` input asks for a 36 MB output: past MAX_OUTPUT_BYTES (16 MiB), refused before it is copied.
    await upload(t, "expand", expandModel());
    await trainSymbol({
      trainer: trainForecaster,
      symbol: "BTC",
      market: t.deps.market,
      registry: t.app.registry,
      plan: { families: ["ridge"] },
    });
  });
  afterAll(() => t.cleanup());

  const tensor = (name: string) => ({ name, datatype: "FP64", shape: [1, 2], data: [1, 2] });
  const targets: { template: string; path: string; admin: boolean; body: unknown }[] = [
    {
      template: "/v2/models/{name}/infer",
      path: "/v2/models/two/infer",
      admin: false,
      body: { id: "x", inputs: [tensor("a"), tensor("b")], outputs: [{ name: "sum" }] },
    },
    {
      template: "/v2/models/{name}/versions/{version}/infer",
      path: "/v2/models/add/versions/1/infer",
      admin: false,
      body: { inputs: [{ name: "x", datatype: "INT64", shape: [1, 2], data: [1, 2] }] },
    },
    {
      template: "/v2/models/{name}/infer",
      path: "/v2/models/expand/infer",
      admin: false,
      body: {
        inputs: [
          { name: "x", datatype: "FP32", shape: [1], data: [1] },
          { name: "shape", datatype: "INT64", shape: [2], data: [3000, 3000] },
        ],
      },
    },
    {
      template: "/api/ml/serve",
      path: "/api/ml/serve",
      admin: false,
      body: { symbol: "BTC", horizon: "24h", as_of: "2026-03-20" },
    },
    {
      template: "/api/ml/batch",
      path: "/api/ml/batch",
      admin: false,
      body: { symbols: ["BTC", "ETH"], horizon: "24h", as_of: "2026-03-20T12:00:00Z" },
    },
    {
      template: "/api/ml/models/{name}/promote",
      path: "/api/ml/models/two/promote",
      admin: true,
      body: { version: "1", reason: "r" },
    },
    {
      template: "/api/ml/models/{name}/rollback",
      path: "/api/ml/models/two/rollback",
      admin: true,
      body: { to: "1" },
    },
    {
      template: "/api/ml/models/{name}/pin",
      path: "/api/ml/models/two/pin",
      admin: true,
      body: { version: null },
    },
    {
      template: "/api/ml/models/{name}/versions/{version}/restore",
      path: "/api/ml/models/two/versions/1/restore",
      admin: true,
      body: { reason: "fuzz" },
    },
    {
      template: "/api/ml/models/{name}/backfill",
      path: "/api/ml/models/BTC-24h/backfill",
      admin: true,
      body: { from: "2026-03-01", to: "2026-03-27", version: "1" },
    },
    {
      template: "/api/ml/models/{name}/rollout",
      path: "/api/ml/models/BTC-24h/rollout",
      admin: true,
      body: { challenger: "1", mode: "canary", weight: 0.2, min_outcomes: 30, max_duration_seconds: 3600 },
    },
    {
      template: "/api/ml/models/{name}/rollout/evaluate",
      path: "/api/ml/models/BTC-24h/rollout/evaluate?dry_run=true",
      admin: true,
      body: { source: "backfill", from: "2026-03-01", to: "2026-03-27" },
    },
    { template: "/api/ml/train", path: "/api/ml/train", admin: true, body: { model_id: "NOPE" } },
    {
      template: "/api/ml/performance/track",
      path: "/api/ml/performance/track",
      admin: true,
      body: { model_id: "BTC", prediction_id: "p", predicted_value: 1, actual_value: 2 },
    },
    // Registration is fuzzed below with its own bodies (ONNX bytes + metadata).
    {
      template: "/api/ml/models/{name}/versions",
      path: "/api/ml/models/two/versions",
      admin: true,
      body: {},
    },
  ];
  /** Routes without a body: fuzzed through their path parameters and query. */
  const GET_ROUTES = [
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}",
    "/v2/models/{name}/versions/{version}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/versions/{version}/ready",
    "/v2/models/stats",
    "/v2/models/{name}/stats",
    "/v2/models/{name}/versions/{version}/stats",
    "/api/ml/models",
    "/api/ml/models/{name}",
    "/api/ml/models/{name}/versions/{version}",
    "/api/ml/models/{name}/rollout",
    "/api/ml/train/status",
    "/api/ml/performance/{model_id}",
    "/api/ml/performance/{model_id}/series",
    "/api/ml/performance/{model_id}/predictions",
    "/docs/assets/swagger-ui-dist/{name}",
  ];

  /** Every answer is JSON in the one error shape (or a success), never a 500 / `internal`. */
  const check = async (failures: string[], label: string, res: Response) => {
    const text = await res.text();
    let json: { error?: unknown; code?: unknown } | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      failures.push(`${label}: not JSON: ${text.slice(0, 80)}`);
      return;
    }
    const documented5xx = res.status >= 500 && res.status !== 500 && json?.code !== "internal";
    if (res.status >= 500 && !documented5xx) failures.push(`${label} → ${res.status} ${text.slice(0, 160)}`);
    if (res.status >= 400 && (typeof json?.error !== "string" || typeof json?.code !== "string")) {
      failures.push(`${label}: ${res.status} without the error shape: ${text.slice(0, 120)}`);
    }
  };

  it("an oversize output is 413 output_too_large, and the model still serves small ones", async () => {
    const send = (rows: number) =>
      t.request("/v2/models/expand/infer", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          inputs: [
            { name: "x", datatype: "FP32", shape: [1], data: [1] },
            { name: "shape", datatype: "INT64", shape: [2], data: [rows, 3000] },
          ],
        }),
      });
    const big = await send(3000);
    expect(big.status).toBe(413);
    expect(((await big.json()) as { code: string }).code).toBe("output_too_large");
    expect((await send(2)).status).toBe(200);
  });

  it("covers every route of the OpenAPI document", async () => {
    const doc = (await (await t.request("/openapi.json")).json()) as { paths: Record<string, object> };
    // GET /metrics takes no parameters, only its token: test/api/metrics.test.ts covers it.
    const covered = new Set([...targets.map((x) => x.template), ...GET_ROUTES, "/metrics"]);
    const missing = Object.keys(doc.paths).filter((path) => !covered.has(path));
    expect(missing).toEqual([]);
  });

  it(`${SEEDS} seeds × ${targets.length} routes`, async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = prng(seed);
      for (const target of targets) {
        const body = mutate(target.body, rand);
        const path =
          rand() < 0.1
            ? target.path.replace(/\/models\/[^/]+/, `/models/${pick(HOSTILE_NAMES, rand)}`)
            : target.path;
        const init: RequestInit = {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: rand() < 0.03 ? JSON.stringify(body).slice(0, -1) : JSON.stringify(body),
        };
        const res = await (target.admin ? t.admin(path, init) : t.request(path, init));
        await check(failures, `seed ${seed} ${path} ${JSON.stringify(body).slice(0, 160)}`, res);
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);

  it("every GET route with hostile names and versions", async () => {
    const failures: string[] = [];
    const versions = ["1", "99", "0", "constructor", "1.0", "-1"];
    for (const template of GET_ROUTES) {
      for (const name of HOSTILE_NAMES) {
        for (const version of template.includes("{version}") ? versions : ["1"]) {
          const path = template
            .replace("{name}", encodeURIComponent(name))
            .replace("{model_id}", encodeURIComponent(name))
            .replace("{version}", encodeURIComponent(version));
          for (const query of [
            "",
            "?request_id=constructor",
            "?request_id=00000000-0000-4000-8000-000000000000",
            "?source=constructor&limit=-1&cursor=%FF&from=x&resolved=2&version=__proto__",
          ]) {
            await check(failures, `GET ${path}${query}`, await t.admin(`${path}${query}`));
            await check(failures, `GET ${path}${query} (public)`, await t.request(`${path}${query}`));
          }
        }
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);

  it(`binary tensor bodies: ${SEEDS} seeds of mutated JSON headers, header lengths, bytes and content types`, async () => {
    const failures: string[] = [];
    const LENGTHS = ["", "abc", "-1", "1e3", "0x10", " 12 ", "99999999999999999999", "0", "1"];
    const TYPES = [undefined, "application/octet-stream", "application/json", "text/plain"];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = prng(10_000 + seed);
      const rows = 1 + Math.floor(rand() * 3);
      const values = Float64Array.from({ length: rows * 2 }, () => (rand() - 0.5) * 10);
      const [path, inputs] =
        rand() < 0.5
          ? [
              "/v2/models/two/infer",
              [
                new InferInput("a", [rows, 2], "FP64").setData(values),
                new InferInput("b", [rows, 2], "FP64").setData(values, rand() < 0.5),
              ],
            ]
          : [
              "/v2/models/add/infer",
              [
                new InferInput("x", [rows, 2], "INT64").setData(
                  BigInt64Array.from(values, (v) => BigInt(Math.round(v))),
                ),
              ],
            ];
      const outputs =
        rand() < 0.5 ? [] : [new InferRequestedOutput(path.includes("two") ? "sum" : "y", rand() < 0.5)];
      const request = inferenceRequest({ inputs, outputs });
      const jsonSize = request.jsonSize ?? request.body.length;
      let header = new TextDecoder().decode(request.body.subarray(0, jsonSize));
      let binary = request.body.slice(jsonSize);
      if (rand() < 0.5) header = JSON.stringify(mutate(JSON.parse(header), rand));
      if (rand() < 0.2) binary = binary.slice(0, Math.floor(rand() * binary.length));
      if (rand() < 0.2)
        binary = Uint8Array.from([
          ...binary,
          ...Array.from({ length: 1 + Math.floor(rand() * 9) }, () => Math.floor(rand() * 256)),
        ]);
      if (rand() < 0.3 && binary.length > 0)
        binary[Math.floor(rand() * binary.length)] = Math.floor(rand() * 256);
      const head = new TextEncoder().encode(header);
      const body = new Uint8Array(head.length + binary.length);
      body.set(head, 0);
      body.set(binary, head.length);
      const length =
        rand() < 0.6
          ? String(head.length)
          : rand() < 0.5
            ? String(head.length + Math.floor(rand() * 21) - 10)
            : pick(LENGTHS, rand);
      const type = pick(TYPES, rand);
      const headers: Record<string, string> = {
        ...(rand() < 0.9 && { "inference-header-content-length": length }),
        ...(type && { "content-type": type }),
      };
      const res = await t.request(path, { method: "POST", headers, body });
      const label = `binary seed ${seed} ${JSON.stringify(headers)} ${header.slice(0, 120)}`;
      // A binary answer is a success the client asked for; everything else is JSON in the one error shape.
      if (res.status === 200 && res.headers.get("content-type") === "application/octet-stream") {
        if (!res.headers.get("inference-header-content-length"))
          failures.push(`${label}: binary without its header`);
        continue;
      }
      await check(failures, label, res);
    }
    expect(failures).toEqual([]);
  }, 120_000);

  it("registrations under hostile names with mutated metadata", async () => {
    const failures: string[] = [];
    const rand = prng(7);
    for (const name of HOSTILE_NAMES) {
      const metadata = mutate({ tags: { a: "b" }, metrics: { skill: 0.1 }, report: { x: [1, 2] } }, rand);
      const res = await upload(t, encodeURIComponent(name), twoByTwoModel(), metadata);
      await check(failures, `register ${name} ${JSON.stringify(metadata).slice(0, 120)}`, res);
    }
    expect(failures).toEqual([]);
    // The models registered before still serve after all of that, and the registry still lists.
    expect((await t.request("/v2/models/two")).status).toBe(200);
    expect((await t.admin("/api/ml/models")).status).toBe(200);
  }, 120_000);
});
