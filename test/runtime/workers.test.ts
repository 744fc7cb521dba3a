import { type ChildProcess, spawn } from "node:child_process";
import { cp, readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BYO_MODELS, DATA_AS_OF, MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";

/**
 * `npm start` with WORKERS=2, as a user runs it: real processes (node:cluster) on one port, the shipped models in
 * a directory of their own, the shipped CSVs. Every request opens its own connection, so the primary's round robin
 * spreads concurrent requests over both workers; `x-edgeml-worker` says which one answered.
 */
const TSX = join(REPO_ROOT, "node_modules/.bin/tsx");
const ADMIN_TOKEN = "workers-test-admin-token-0123";
const METRICS_TOKEN = "workers-test-metrics-token-01";
/** One client identity per test (API_KEYS): each has a budget of its own under the public rate limit. */
const KEY = {
  forecasts: "key-forecasts-0123456789",
  metrics: "key-metrics-0123456789ab",
  limits: "key-limits-0123456789abc",
  promotes: "key-promotes-0123456789a",
  restart: "key-restart-0123456789ab",
};
/** The public budget per client; its window (10 days) is one no test run crosses, so the count is exact. */
const LIMIT = 20;

interface Answer {
  status: number;
  worker: string;
  body: string;
}

/** One request on a connection of its own (no keep-alive), so that the primary hands it to the next worker. */
function send(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
) {
  const raw = init.body instanceof Uint8Array;
  const body =
    init.body === undefined ? undefined : raw ? (init.body as Uint8Array) : JSON.stringify(init.body);
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(
      `${base}${path}`,
      {
        method: init.method ?? "GET",
        agent: false,
        headers: {
          ...(body !== undefined && {
            "content-type": raw ? "application/octet-stream" : "application/json",
          }),
          ...init.headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            worker: String(res.headers["x-edgeml-worker"]),
            body: text,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    // A connection handed to a worker as it was killed is never answered: give up on it rather than hang the test.
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer to ${path}`)));
    req.end(body);
  });
}

/** Starts `npm start`'s script with WORKERS=2 on a port the system picks; resolves once both workers listen. */
async function start(env: Record<string, string>) {
  const child = spawn(TSX, ["src/runtime/node/server.ts"], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", WORKERS: "2", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = { text: "" };
  const base = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output.text += chunk;
      const match = /edgeml listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.text);
      if (match?.[1] && output.text.includes("all 2 workers listening")) resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${output.text}`)));
  });
  return { base, child, output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.on("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** The value of one series in a Prometheus text exposition, 0 when absent. */
function series(exposition: string, name: string, labels: string): number {
  const line = exposition.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("npm start with WORKERS=2: two processes, one server", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let server: Awaited<ReturnType<typeof start>>;

  beforeAll(async () => {
    dir = await tempDir();
    await cp(join(REPO_ROOT, "models"), join(dir.path, "models"), { recursive: true });
    server = await start({
      MODELS_DIR: join(dir.path, "models"),
      PREDICTION_LOG_FILE: join(dir.path, "data", "predictions.sqlite"),
      MARKET_DATA_DIR: MARKET_DATA,
      ADMIN_TOKEN,
      METRICS_TOKEN,
      API_KEYS: Object.values(KEY).join(","),
      RATE_LIMIT_PUBLIC: `${LIMIT}/240h`,
      RATE_LIMIT_ADMIN: "1000/240h",
      // Longer than the run: a model registered on one worker is listed on the other only because it is told.
      REGISTRY_LIST_TTL_MS: "3600000",
    });
  }, 120_000);

  afterAll(async () => {
    if (server) await stop(server.child);
    await dir?.cleanup();
  });

  it("concurrent identical forecasts on both workers are one forecast: one prediction_id, one log record", async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        send(server.base, "/api/ml/serve", {
          method: "POST",
          headers: { "x-api-key": KEY.forecasts },
          body: { symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF },
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2);
    const ids = new Set(answers.map((a) => (JSON.parse(a.body) as { prediction_id: string }).prediction_id));
    expect(ids.size).toBe(1);
    // The log's insert is synchronous in the worker that computed it, before its response: no wait needed.
    const summary = await send(server.base, "/api/ml/performance/BTC?source=replay", {
      headers: { "x-api-key": KEY.forecasts },
    });
    expect(JSON.parse(summary.body)).toMatchObject({ model: "BTC-24h", source: "replay", predictions: 1 });
  }, 60_000);

  it("metrics count exactly: K requests read K on every worker's /metrics", async () => {
    const K = 10;
    const answers = await Promise.all(
      Array.from({ length: K }, () =>
        send(server.base, "/v2/health/ready", { headers: { "x-api-key": KEY.metrics } }),
      ),
    );
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2);
    // Scrapes until both workers have answered one (round robin: the next two connections go to both).
    const counted = new Map<string, number>();
    for (let i = 0; i < 6 && counted.size < 2; i++) {
      const scrape = await send(server.base, "/metrics", {
        headers: { authorization: `Bearer ${METRICS_TOKEN}`, "x-api-key": KEY.metrics },
      });
      expect(scrape.status).toBe(200);
      counted.set(
        scrape.worker,
        series(
          scrape.body,
          "edgeml_http_requests_total",
          'method="GET",route="/v2/health/ready",status="200"',
        ),
      );
    }
    expect([...counted.values()]).toEqual([K, K]);
  }, 60_000);

  it(`a public rate limit of ${LIMIT} per client allows exactly ${LIMIT}, across both workers`, async () => {
    const answers = await Promise.all(
      Array.from({ length: 2 * LIMIT }, () =>
        send(server.base, "/v2/models/BTC-24h", { headers: { "x-api-key": KEY.limits } }),
      ),
    );
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(LIMIT);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(LIMIT);
  }, 60_000);

  it("promotes sent to both workers at once are all kept: one audit entry each, the last one serving", async () => {
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "x-api-key": KEY.promotes };
    const before = JSON.parse(
      (await send(server.base, "/api/ml/models/ETH-24h", { headers: admin })).body,
    ) as {
      history: unknown[];
    };
    const versions = ["1", "2", "1", "2", "1", "2", "1", "2"];
    const answers = await Promise.all(
      versions.map((version, i) =>
        send(server.base, "/api/ml/models/ETH-24h/promote", {
          method: "POST",
          headers: admin,
          body: { version, reason: `promote ${i}` },
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(versions.length).fill(200));
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2);
    const after = JSON.parse(
      (await send(server.base, "/api/ml/models/ETH-24h", { headers: admin })).body,
    ) as {
      history: { reason?: string; to: string | null }[];
      pointers: { champion?: string };
    };
    const added = after.history.slice(before.history.length);
    expect(added.map((e) => e.reason).sort()).toEqual(versions.map((_, i) => `promote ${i}`).sort());
    expect(after.pointers.champion).toBe(added.at(-1)?.to);
  }, 60_000);

  it("a model registered through one worker is served by both at once, though their listings are cached for an hour", async () => {
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "x-api-key": KEY.promotes };
    // Both workers have listed the models since they started (the tests above), so both hold a fresh listing.
    const registered = await send(server.base, "/api/ml/models/sk_gbr/versions", {
      method: "POST",
      headers: admin,
      body: await readFile(join(BYO_MODELS, "sk_gbr_f32.onnx")),
    });
    expect(registered.status, registered.body).toBe(201);
    const answers = await Promise.all(
      [1, 2, 3, 4].map(() =>
        send(server.base, "/v2/models/sk_gbr", { headers: { "x-api-key": KEY.promotes } }),
      ),
    );
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
  }, 60_000);

  it("a worker that is killed is replaced: a new process answers beside the survivor", async () => {
    const headers = { "x-api-key": KEY.restart };
    const seen = new Set(
      (await Promise.all([1, 2].map(() => send(server.base, "/v2/health/live", { headers })))).map(
        (a) => a.worker,
      ),
    );
    expect(seen.size).toBe(2);
    const [victim, survivor] = [...seen] as [string, string];
    process.kill(Number(victim), "SIGKILL");
    // Until the replacement listens, the survivor answers everything; then the round robin reaches the new one.
    let replacement: string | undefined;
    for (let i = 0; i < 600 && replacement === undefined; i++) {
      // A connection the primary had handed to the victim as it died is reset: that request is not an answer.
      const answer = await send(server.base, "/v2/health/live", { headers }).catch(() => undefined);
      if (answer && answer.worker !== survivor && answer.worker !== victim) replacement = answer.worker;
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(replacement, server.output.text).toMatch(/^\d+$/);
    expect(server.output.text).toContain(`worker ${victim} exited (SIGKILL); starting a replacement`);
  }, 120_000);

  it("SIGTERM to npm start stops every worker, then the primary", async () => {
    const headers = { "x-api-key": KEY.restart };
    const workers = new Set(
      (await Promise.all([1, 2].map(() => send(server.base, "/v2/health/live", { headers })))).map((a) =>
        Number(a.worker),
      ),
    );
    expect(workers.size).toBe(2);
    await stop(server.child);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect([...workers].filter(alive)).toEqual([]);
  }, 60_000);
});
