import { spawn } from "node:child_process";
import { Redis } from "@upstash/redis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../../src/logger.js";
import type { TrainingJob } from "../../src/storage/jobs.js";
import { createUpstashJobStore } from "../../src/storage/upstash-jobs.js";
import { ADMIN_TOKEN, type TestApp, testApp, testEngine } from "../support/app.js";
import { MARKET_DATA, REPO_ROOT, tempDir } from "../support/paths.js";
import { TEST_STORE_TIMEOUT_MS, useLocalUpstash } from "./support/upstash.js";
import {
  type Command,
  jobRead,
  jobWrite,
  startUpstashFaults,
  type UpstashFaults,
} from "./support/upstash-faults.js";

/**
 * Issue 8, item 1: training on the Upstash job store (real @upstash/redis → a fault-injecting layer → the dev
 * stack's Upstash bridge → real redis-server) while Upstash answers 500 to the job's writes or reads. The server
 * stays up, the job's state stays true, and a state that cannot be read is a 503. Faults are chosen by command
 * (which write, how many times), never by timing.
 */
const upstash = useLocalUpstash();
let faults: UpstashFaults;
beforeAll(async () => {
  faults = await startUpstashFaults(upstash.bridge.url);
});
afterAll(async () => {
  await faults?.close();
});

/** A job write (SET of a job key) whose JSON value is in `state`. */
const writeOf = (state: TrainingJob["state"]) => (command: Command) =>
  jobWrite(command) && String(command[2]).includes(`"state":"${state}"`);

const ATTEMPTS = 3;

interface Subject {
  t: TestApp;
  /** Background work the app handed to waitUntil: awaiting it is awaiting the training run. */
  background: Promise<unknown>[];
  prefix: string;
  train(symbol: string): Promise<Response>;
  status(requestId: string): Promise<Response>;
}

/** The warnings of the app under test. */
const warnings = vi.fn<(message: string, error?: unknown) => void>();

async function subject(): Promise<Subject> {
  const prefix = upstash.freshPrefix();
  const background: Promise<unknown>[] = [];
  const client = new Redis({ url: faults.url, token: upstash.bridge.token });
  const t = await testApp({ jobWriteAttempts: ATTEMPTS, jobWriteBackoffMs: 0 }, testEngine(), {
    jobs: createUpstashJobStore(client, { prefix, timeoutMs: TEST_STORE_TIMEOUT_MS }),
    trainingPlan: { families: ["ridge"] },
    waitUntil: (work) => background.push(work),
    // The warnings are what these tests read: a store failure of a running job reaches nobody else.
    logger: { ...silentLogger, warn: warnings },
  });
  return {
    t,
    background,
    prefix,
    train: (symbol) =>
      t.admin("/api/ml/train", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model_id: symbol }),
      }),
    status: (requestId) => t.admin(`/api/ml/train/status?request_id=${requestId}`),
  };
}

/** What another instance of the deployment reads: the store alone, no process memory. */
const stored = (prefix: string, requestId: string) =>
  createUpstashJobStore(upstash.client(), { prefix, timeoutMs: TEST_STORE_TIMEOUT_MS }).get(requestId);

describe("training on the Upstash job store while Upstash fails", () => {
  let s: Subject;
  const strays: unknown[] = [];
  const onStray = (reason: unknown) => strays.push(reason);
  beforeAll(async () => {
    s = await subject();
    process.on("unhandledRejection", onStray);
  });
  afterAll(async () => {
    process.off("unhandledRejection", onStray);
    await s.t.cleanup();
  });
  afterEach(async () => {
    faults.heal();
    await Promise.all(s.background.splice(0));
    // Vitest fails the run on an unhandled rejection too; this names the test that left one.
    expect(strays).toEqual([]);
  });

  it("a job that cannot be created answers 503 and trains nothing", async () => {
    faults.fail(jobWrite);
    const res = await s.train("BTC");
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.code).toBe("store_unavailable");
    expect(body.error).toMatch(/training job state is unavailable.*try again shortly/);
    expect(body.error).not.toMatch(/command was/);
    // Background work may hold the request's own telemetry; whatever it is, once it settles nothing was trained.
    await Promise.all(s.background.splice(0));
    expect(await s.t.deps.artifacts.listModels()).toEqual([]);
  });

  it("every progress write failing: no unhandled rejection, and the job that registered its versions succeeded", async () => {
    warnings.mockClear();
    faults.fail(writeOf("running"));
    const res = await s.train("ETH");
    expect(res.status).toBe(202);
    const { request_id } = await res.json();
    await Promise.all(s.background.splice(0));
    // Each running/progress state was tried ATTEMPTS times before it was given up (latest state first).
    expect(faults.refused).toBeGreaterThanOrEqual(ATTEMPTS);
    expect(warnings).toHaveBeenCalledWith(
      expect.stringMatching(/could not store the running state of training job .* after 3 attempts/),
      expect.anything(),
    );
    const job = await (await s.status(request_id)).json();
    expect(job).toMatchObject({
      state: "succeeded",
      result: { versions: [{ name: "ETH-24h", version: "1" }] },
    });
    expect(await stored(s.prefix, request_id)).toMatchObject({ state: "succeeded" });
    expect((await s.t.request("/v2/health/live")).status).toBe(200);
  });

  it("a result write that fails is retried, and lands", async () => {
    faults.fail(writeOf("succeeded"), ATTEMPTS - 1);
    const refusedBefore = faults.refused;
    const { request_id } = await (await s.train("ETH")).json();
    await Promise.all(s.background.splice(0));
    expect(faults.refused - refusedBefore).toBe(ATTEMPTS - 1);
    expect(await stored(s.prefix, request_id)).toMatchObject({ state: "succeeded" });
    expect((await s.status(request_id)).status).toBe(200);
  });

  it("a result that cannot be stored at all: this instance still answers it, never `running` or `failed`", async () => {
    warnings.mockClear();
    faults.fail(writeOf("succeeded"));
    const { request_id } = await (await s.train("ETH")).json();
    await Promise.all(s.background.splice(0));
    expect(await (await s.status(request_id)).json()).toMatchObject({ state: "succeeded" });
  });

  it("while the job's state cannot be read, status answers 503, never a wrong state", async () => {
    const { request_id } = await (await s.train("ETH")).json();
    await Promise.all(s.background.splice(0));
    faults.fail((command) => jobRead(command) || jobWrite(command));
    const down = await s.status(request_id);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ code: "store_unavailable" });
    faults.heal();
    expect(await (await s.status(request_id)).json()).toMatchObject({ state: "succeeded" });
  });
});

describe("GET /api/ml/train/status is an admin route", () => {
  it("answers 401 without the admin token, whatever the request id", async () => {
    const s = await subject();
    try {
      const { request_id } = await (await s.train("ETH")).json();
      await Promise.all(s.background.splice(0));
      const anonymous = await s.t.request(`/api/ml/train/status?request_id=${request_id}`);
      expect(anonymous.status).toBe(401);
      expect((await s.status(request_id)).status).toBe(200);
      expect(ADMIN_TOKEN).toBeTruthy();
    } finally {
      await s.t.cleanup();
    }
  });
});

describe("npm start on the Upstash job store: a job write answered 500 never ends the process", () => {
  it("trains through every failing progress write, reports the job succeeded, and keeps serving", async () => {
    const models = await tempDir("edgeml-faults-");
    const server = spawn(process.execPath, ["--import", "tsx", "src/runtime/node/server.ts"], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PORT: "0",
        HOST: "127.0.0.1",
        ADMIN_TOKEN,
        MODELS_DIR: models.path,
        MARKET_DATA_DIR: MARKET_DATA,
        UPSTASH_REDIS_REST_URL: faults.url,
        UPSTASH_REDIS_REST_TOKEN: upstash.bridge.token,
        UPSTASH_KEY_PREFIX: upstash.freshPrefix(),
        UPSTASH_TIMEOUT_MS: String(TEST_STORE_TIMEOUT_MS),
        JOB_WRITE_ATTEMPTS: "2",
        JOB_WRITE_BACKOFF_MS: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    server.stdout.on("data", (chunk) => {
      output += chunk;
    });
    server.stderr.on("data", (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => server.on("exit", resolve));
    try {
      const base = await new Promise<string>((resolve, reject) => {
        server.on("exit", () => reject(new Error(`the server exited:\n${output}`)));
        server.stdout.on("data", () => {
          const match = /edgeml listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match?.[1]) resolve(match[1]);
        });
      });
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      faults.fail(writeOf("running"));
      const res = await fetch(`${base}/api/ml/train`, {
        method: "POST",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({ model_id: "ETH" }),
      });
      expect(res.status, output).toBe(202);
      const { request_id } = await res.json();
      let job: { state: string } = { state: "queued" };
      while (job.state === "queued" || job.state === "running") {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const status = await fetch(`${base}/api/ml/train/status?request_id=${request_id}`, {
          headers: admin,
        });
        expect(status.status, output).toBe(200);
        job = await status.json();
      }
      expect(job.state).toBe("succeeded");
      expect(faults.refused).toBeGreaterThan(0);
      expect(output).toMatch(/could not store the running state of training job/);
      expect((await fetch(`${base}/v2/health/live`)).status).toBe(200);
      expect(server.exitCode).toBeNull();
    } finally {
      faults.heal();
      server.kill("SIGTERM");
      await exited;
      await models.cleanup();
    }
  });
});
