/**
 * `npm run load [-- --duration 60 --connections 200 --kill-at 20 --restart-at 40] [--no-doc]`: the Node server on
 * the production adapters under load, with Redis crashing mid-run.
 *
 * Starts a real redis-server, the Upstash REST bridge (its own process, off this process's event loop), the Blob and
 * Edge Config emulators, deploys models/ into them (scripts/deploy_models.ts), and starts `src/runtime/node/server.ts`
 * in its own process with the same variables a deployment sets. autocannon then offers a mix of OIP inference,
 * model metadata reads, cached forecasts and uncached forecasts for `duration` seconds, while redis-server is
 * killed (SIGKILL, no persistence) at `kill-at` and started again, empty, at `restart-at`.
 *
 * Rate limits stay on, on Upstash, so that every request pays the limiter's round trip to Redis and every request
 * during the outage exercises its fail-open path; their budgets are raised far above what the run offers (all
 * connections come from 127.0.0.1, one client), so that the run measures serving, not refusing.
 *
 * It prints a report and rewrites the "Load with faults" section of docs/benchmarks.md (unless --no-doc).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { createClient } from "redis";
import { writeDocSection } from "../bench/doc-section.js";
import { DEFAULT_MODELS_DIR } from "../src/runtime/node/deps.js";
import { deployModels } from "./deploy_models";
import { startBlobEmulator } from "./dev/blob-emulator";
import { startEdgeConfigEmulator } from "./dev/edge-config-emulator";
import { isMain } from "./dev/lib/cli";
import { localStackEnv } from "./dev/local-stack";
import { type RedisServerHandle, startRedisServer } from "./dev/redis-server";

const REPO_ROOT = resolve(import.meta.dirname, "..");
/** The real bars beside the repository (as in CI), or wherever MARKET_DATA_DIR says. */
const MARKET_DATA = resolve(process.env.MARKET_DATA_DIR || resolve(REPO_ROOT, "../shared/data/market"));
const UPSTASH_TOKEN = "edgeml-load-upstash-token";
/** Far above what 200 connections on one machine can offer in a minute: the limiter runs, never refuses. */
const RAISED_LIMIT = "1000000000/60s";
export const DOC_HEADING = "## Load with faults";
/** Width of a timeline slot of the report, seconds. */
const TIMELINE_S = 10;

export interface LoadOptions {
  durationS: number;
  connections: number;
  killAtS: number;
  restartAtS: number;
  marketDataDir: string;
  modelsDir: string;
  log: (line: string) => void;
}

export const DEFAULT_LOAD: Omit<LoadOptions, "log"> = {
  durationS: 60,
  connections: 200,
  killAtS: 20,
  restartAtS: 40,
  marketDataDir: MARKET_DATA,
  modelsDir: DEFAULT_MODELS_DIR,
};

type Phase = "up" | "down" | "restarted";
const PHASES: readonly Phase[] = ["up", "down", "restarted"];

interface Counts {
  requests: number;
  s2xx: number;
  s429: number;
  s5xx: number;
  other: number;
  /** Per-response latencies (ms), for percentiles. */
  times: number[];
  /** Status codes outside 2xx, with how often. */
  statuses: Record<string, number>;
}

export interface StreamReport {
  key: string;
  label: string;
  connections: number;
  total: Omit<Counts, "times"> & { p50Ms: number; p99Ms: number };
  phases: Record<Phase, Omit<Counts, "times"> & { p50Ms: number; p99Ms: number }>;
  /** The same per 10 s of the run, in order. */
  timeline: (Omit<Counts, "times"> & { p50Ms: number; p99Ms: number })[];
  /** x-cache of the forecasts (HIT / MISS / BYPASS). */
  xCache: Record<string, number>;
  /** Connection errors and timeouts (no HTTP answer). */
  errors: number;
  timeouts: number;
}

export interface LoadReport {
  options: Omit<LoadOptions, "log">;
  streams: StreamReport[];
  total: Omit<Counts, "times">;
  /** Peak resident set size of the server process (VmHWM), bytes. */
  peakRssBytes: number;
  /** RSS of the server sampled each second: [seconds since start, bytes]. */
  rss: [number, number][];
  /** Server log lines that say the rate limiter failed open (it logs once per outage). */
  limiterOutageLogs: number;
  /** Server log lines of 5xx answers and stray rejections (the first few, for diagnosis). */
  serverErrors: string[];
  /** Lines the server wrote (stdout and stderr) during the run, by phase. */
  logLines: Record<Phase, number>;
  /** The server's most frequent log lines during the run (digits masked), with their counts. */
  topLogLines: [string, number][];
  loadAverage: { start: number; end: number };
  startedAt: Date;
}

const empty = (): Counts => ({ requests: 0, s2xx: 0, s429: 0, s5xx: 0, other: 0, times: [], statuses: {} });

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

const summarise = ({ times, ...counts }: Counts) => {
  const sorted = Float64Array.from(times).sort();
  return { ...counts, p50Ms: quantile(Array.from(sorted), 0.5), p99Ms: quantile(Array.from(sorted), 0.99) };
};

function record(counts: Counts, status: number, ms: number): void {
  counts.requests += 1;
  counts.times.push(ms);
  if (status >= 200 && status < 300) counts.s2xx += 1;
  else {
    counts.statuses[status] = (counts.statuses[status] ?? 0) + 1;
    if (status === 429) counts.s429 += 1;
    else if (status >= 500) counts.s5xx += 1;
    else counts.other += 1;
  }
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? done(address.port) : fail(new Error("no port")),
      );
    });
  });
}

/** A TypeScript entry point in its own Node process (the same Node as this one, tsx as a loader: one process). */
function startTs(
  script: string,
  args: string[],
  env: Record<string, string>,
  onLine: (line: string) => void,
) {
  const child = spawn(process.execPath, ["--import", "tsx", resolve(REPO_ROOT, script), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    });
  }
  return child;
}

async function waitFor(what: string, child: ChildProcess, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${what} exited with code ${child.exitCode} before it was ready`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s`);
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Peak and current RSS of a process from /proc (Linux): VmHWM is the kernel's own high-water mark. */
async function memoryOf(pid: number): Promise<{ peak: number; current: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { peak: kb("VmHWM") * 1024, current: kb("VmRSS") * 1024 };
}

/** One batch-1 row of real features: the first golden row the shipped BTC model stores in its metadata. */
async function inferBody(modelsDir: string): Promise<string> {
  const dir = join(modelsDir, "BTC-24h");
  const versions = (await readdir(dir)).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
  const meta = JSON.parse(await readFile(join(dir, versions.at(-1) ?? "1", "metadata.json"), "utf8")) as {
    golden: { cases: { inputs: { name: string; datatype: string; shape: number[]; data: number[] }[] }[] };
  };
  const input = meta.golden.cases[0]?.inputs[0];
  if (!input) throw new Error(`${dir}: the metadata has no golden rows to take an input from`);
  const width = input.shape[1] ?? 0;
  return JSON.stringify({
    inputs: [
      { name: input.name, datatype: input.datatype, shape: [1, width], data: input.data.slice(0, width) },
    ],
  });
}

/** Runs the load and returns what it measured; everything it started is stopped before it returns. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const { log } = options;
  const startedAt = new Date();
  const loadAtStart = os.loadavg()[0] ?? 0;
  const closers: (() => Promise<void>)[] = [];
  let redis: RedisServerHandle | undefined;
  const serverErrors: string[] = [];
  let limiterOutageLogs = 0;
  const logLines: Record<Phase, number> = { up: 0, down: 0, restarted: 0 };
  const lineCounts = new Map<string, number>();
  /** The server's last lines, to say why it did not start. */
  const recent: string[] = [];
  let phaseNow: (() => Phase) | undefined;
  try {
    redis = await startRedisServer();
    closers.push(() => redis?.stop() ?? Promise.resolve());
    const bridgePort = await freePort();
    const bridge = startTs(
      "scripts/dev/upstash-bridge.ts",
      ["--port", String(bridgePort), "--token", UPSTASH_TOKEN, "--redis-url", redis.url],
      {},
      () => {},
    );
    closers.push(() => stop(bridge));
    const bridgeUrl = `http://127.0.0.1:${bridgePort}`;
    await waitFor("the Upstash bridge", bridge, async () => {
      const res = await fetch(bridgeUrl, {
        method: "POST",
        headers: { authorization: `Bearer ${UPSTASH_TOKEN}` },
        body: '["PING"]',
      });
      return res.ok;
    });
    const edgeConfig = await startEdgeConfigEmulator({ port: 0 });
    closers.push(() => edgeConfig.close());
    const blob = await startBlobEmulator({ port: 0 });
    closers.push(() => blob.close());
    process.env.VERCEL_BLOB_API_URL = blob.apiUrl;
    const env: Record<string, string> = {
      ...localStackEnv({ url: bridgeUrl, token: UPSTASH_TOKEN }, edgeConfig, blob),
    };
    const deployed = await deployModels({ modelsDir: options.modelsDir, env, log: () => {} });
    if (deployed.conflicts.length + deployed.errors.length > 0) throw new Error("deploying models/ failed");

    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const server = startTs(
      "src/runtime/node/server.ts",
      [],
      {
        ...env,
        PORT: String(port),
        HOST: "127.0.0.1",
        // One process, as the report says (its RSS is sampled from this pid); multi-core is bench/workers.bench.ts.
        WORKERS: "1",
        MARKET_DATA_DIR: options.marketDataDir,
        RATE_LIMIT_PUBLIC: RAISED_LIMIT,
        RATE_LIMIT_ADMIN: RAISED_LIMIT,
        RATE_LIMIT_COLD_LOAD: RAISED_LIMIT,
      },
      (line) => {
        recent.push(line);
        if (recent.length > 30) recent.shift();
        if (phaseNow) {
          logLines[phaseNow()] += 1;
          const shape = line.replace(/\d+/g, "N").slice(0, 160);
          if (lineCounts.size < 1_000 || lineCounts.has(shape))
            lineCounts.set(shape, (lineCounts.get(shape) ?? 0) + 1);
        }
        if (/rate limiter \(upstash\) unavailable/.test(line)) limiterOutageLogs += 1;
        if (
          // 5xx answers (the app logs them as "edgeml: <METHOD> <path>") and stray promise rejections.
          /^edgeml: (GET|POST|PUT|DELETE|PATCH|HEAD) |unhandled promise rejection/i.test(line) &&
          serverErrors.length < 20
        )
          serverErrors.push(line.slice(0, 300));
      },
    );
    closers.unshift(() => stop(server));
    await waitFor("the server", server, async () => (await fetch(`${origin}/v2/health/ready`)).ok).catch(
      (error: unknown) => {
        throw new Error(
          `${error instanceof Error ? error.message : error}; its output:\n${recent.join("\n")}`,
        );
      },
    );
    const serverPid = server.pid;
    if (serverPid === undefined) throw new Error("the server has no pid");
    log(`server ${origin} (pid ${serverPid}) on the production adapters; redis-server ${redis.url}`);

    // The uncached stream's cache entries are deleted as soon as they appear, so (almost) every ETH forecast is
    // computed: market bars, features, inference. A plain client of its own, straight to redis-server.
    const deleter = createClient({
      url: redis.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: () => 50 },
    });
    deleter.on("error", () => {});
    await deleter.connect();
    closers.unshift(async () => {
      deleter.destroy();
    });

    const json = { "content-type": "application/json" };
    // The CSVs end 2026-03-27: a current forecast on them is 503 market_data_stale, so the mix asks as of their last
    // bar's close. Replays are computed and cached exactly as current forecasts are.
    const asOf = "2026-03-28";
    const streams = [
      {
        key: "infer",
        label: "POST /v2/models/BTC-24h/infer (OIP, batch 1)",
        share: 0.4,
        request: {
          method: "POST" as const,
          path: "/v2/models/BTC-24h/infer",
          headers: json,
          body: await inferBody(options.modelsDir),
        },
      },
      {
        key: "metadata",
        label: "GET /v2/models/BTC-24h (model metadata)",
        share: 0.2,
        request: { method: "GET" as const, path: "/v2/models/BTC-24h" },
      },
      {
        key: "cached",
        label: "POST /api/ml/serve BTC (forecast, cached)",
        share: 0.25,
        request: {
          method: "POST" as const,
          path: "/api/ml/serve",
          headers: json,
          body: JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: asOf }),
        },
      },
      {
        key: "uncached",
        label: "POST /api/ml/serve ETH (forecast, its cache entry deleted continuously)",
        share: 0.15,
        request: {
          method: "POST" as const,
          path: "/api/ml/serve",
          headers: json,
          body: JSON.stringify({ symbol: "ETH", horizon: "24h", as_of: asOf }),
        },
      },
    ];
    // Warm up: each route once, so that sessions and caches exist before the clock starts.
    for (const s of streams) {
      const res = await fetch(`${origin}${s.request.path}`, {
        method: s.request.method,
        headers: s.request.headers,
        body: s.request.body,
      });
      if (!res.ok) throw new Error(`warm-up ${s.label}: ${res.status} ${await res.text()}`);
    }

    const t0 = performance.now();
    const phaseOf = (): Phase => {
      const s = (performance.now() - t0) / 1000;
      return s < options.killAtS ? "up" : s < options.restartAtS ? "down" : "restarted";
    };
    phaseNow = phaseOf;
    let running = true;
    const deleting = (async () => {
      while (running) {
        try {
          const keys = await deleter.keys("edgeml:cache:forecast:*ETH-24h*");
          if (keys.length > 0) await deleter.del(keys);
        } catch {
          // redis-server is down (on purpose): try again shortly.
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const rss: [number, number][] = [];
    const sampler = setInterval(() => {
      memoryOf(serverPid).then(
        (m) => rss.push([Math.round((performance.now() - t0) / 1000), m.current]),
        () => {},
      );
    }, 1_000);
    const redisHandle = redis;
    const faults = [
      setTimeout(() => {
        log(`t=${options.killAtS}s: killing redis-server (SIGKILL)`);
        void redisHandle.kill();
      }, options.killAtS * 1000),
      setTimeout(() => {
        log(`t=${options.restartAtS}s: restarting redis-server (empty: no persistence)`);
        void redisHandle.restart();
      }, options.restartAtS * 1000),
    ];

    const counted = streams.map(() => ({
      total: empty(),
      phases: { up: empty(), down: empty(), restarted: empty() } as Record<Phase, Counts>,
      timeline: Array.from({ length: Math.ceil(options.durationS / TIMELINE_S) }, empty),
      xCache: {} as Record<string, number>,
    }));
    const results = await Promise.all(
      streams.map((s, i) => {
        const connections = Math.max(1, Math.round(options.connections * s.share));
        const c = counted[i] as (typeof counted)[number];
        return new Promise<{ result: autocannon.Result; connections: number }>((done, fail) => {
          const instance = autocannon(
            {
              url: origin,
              connections,
              duration: options.durationS,
              timeout: 30,
              requests: [
                {
                  ...s.request,
                  onResponse: (_status, _body, _context, headers) => {
                    const cache = (headers as Record<string, string | undefined>)["x-cache"];
                    if (cache) c.xCache[cache] = (c.xCache[cache] ?? 0) + 1;
                  },
                },
              ],
            },
            (error, result) => (error ? fail(error) : done({ result, connections })),
          );
          instance.on("response", (_client, status, _bytes, ms) => {
            record(c.total, status, ms);
            record(c.phases[phaseOf()], status, ms);
            const slot = Math.floor((performance.now() - t0) / 1000 / TIMELINE_S);
            const bucket = c.timeline[Math.min(slot, c.timeline.length - 1)];
            if (bucket) record(bucket, status, ms);
          });
        });
      }),
    );
    running = false;
    phaseNow = undefined;
    clearInterval(sampler);
    for (const timer of faults) clearTimeout(timer);
    await deleting;
    const memory = await memoryOf(serverPid);

    const reports: StreamReport[] = streams.map((s, i) => {
      const c = counted[i] as (typeof counted)[number];
      const r = results[i] as (typeof results)[number];
      return {
        key: s.key,
        label: s.label,
        connections: r.connections,
        total: summarise(c.total),
        phases: {
          up: summarise(c.phases.up),
          down: summarise(c.phases.down),
          restarted: summarise(c.phases.restarted),
        },
        timeline: c.timeline.map(summarise),
        xCache: c.xCache,
        errors: r.result.errors,
        timeouts: r.result.timeouts,
      };
    });
    const total = reports.reduce(
      (acc, r) => {
        acc.requests += r.total.requests;
        acc.s2xx += r.total.s2xx;
        acc.s429 += r.total.s429;
        acc.s5xx += r.total.s5xx;
        acc.other += r.total.other;
        for (const [status, n] of Object.entries(r.total.statuses))
          acc.statuses[status] = (acc.statuses[status] ?? 0) + n;
        return acc;
      },
      { requests: 0, s2xx: 0, s429: 0, s5xx: 0, other: 0, statuses: {} as Record<string, number> },
    );
    return {
      options: {
        durationS: options.durationS,
        connections: options.connections,
        killAtS: options.killAtS,
        restartAtS: options.restartAtS,
        marketDataDir: options.marketDataDir,
        modelsDir: options.modelsDir,
      },
      streams: reports,
      total,
      peakRssBytes: memory.peak,
      rss,
      limiterOutageLogs,
      serverErrors,
      logLines,
      topLogLines: [...lineCounts].sort((a, b) => b[1] - a[1]).slice(0, 3),
      loadAverage: { start: loadAtStart, end: os.loadavg()[0] ?? 0 },
      startedAt,
    };
  } finally {
    for (const close of closers) await close().catch(() => {});
  }
}

const ms = (v: number) => (Number.isNaN(v) ? "–" : v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(1)} ms`);
const int = (v: number) => v.toLocaleString("en-US");
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const PHASE_LABEL: Record<Phase, string> = {
  up: "Redis up",
  down: "Redis killed",
  restarted: "Redis restarted",
};

/** The RSS sample nearest to every 10 s of the run. */
function rssMarks(report: LoadReport, durationS: number): [number, number][] {
  const marks: [number, number][] = [];
  for (let t = 0; t <= durationS; t += 10) {
    const nearest = report.rss.reduce<[number, number] | undefined>(
      (best, sample) => (!best || Math.abs(sample[0] - t) < Math.abs(best[0] - t) ? sample : best),
      undefined,
    );
    if (nearest && !marks.some(([at]) => at === nearest[0])) marks.push(nearest);
  }
  return marks;
}

/** The docs/benchmarks.md section of a report. */
export function formatReport(report: LoadReport, command: string): string {
  const { options: o } = report;
  const bypass = report.streams.reduce((n, s) => n + (s.xCache.BYPASS ?? 0), 0);
  const lines = [
    DOC_HEADING,
    "",
    `Reproduce with \`${command}\` (about ${o.durationS + 20} s). It rewrites this section; measured on ` +
      `${report.startedAt.toISOString().slice(0, 10)}, ${os.cpus()[0]?.model.trim() ?? "unknown CPU"}, ` +
      `${os.availableParallelism()} cores, Node ${process.versions.node}; 1-minute load average ` +
      `${report.loadAverage.start.toFixed(1)} when it started, ${report.loadAverage.end.toFixed(1)} when it ended.`,
    "",
    `The Node server (\`src/runtime/node/server.ts\`, one process) on the production adapters: Upstash Redis through ` +
      "the Upstash REST bridge (its own process) in front of a real redis-server, Vercel Blob and Edge Config through " +
      "their local emulators, models/ deployed into them by `scripts/deploy_models.ts`, market data from " +
      `\`../shared/data/market\` (CSV). autocannon offers ${o.connections} connections for ${o.durationS} s from the ` +
      `same machine; redis-server is killed (SIGKILL, no persistence) at ${o.killAtS} s and started again, empty, ` +
      `at ${o.restartAtS} s. Rate limits stay on, on Upstash, with budgets raised to ${RAISED_LIMIT} per client ` +
      "(every connection comes from 127.0.0.1, one client): every request pays the limiter's Redis round trip, and " +
      "during the outage its fail-open path, but none is refused, so the run measures serving.",
    "",
    `**${int(report.total.requests)} requests: ${int(report.total.s2xx)} 2xx, ${int(report.total.s429)} 429, ` +
      `${int(report.total.s5xx)} 5xx${report.total.other ? `, ${int(report.total.other)} other` : ""}; ` +
      `peak RSS of the server ${mib(report.peakRssBytes)}.**`,
    "",
    "| route | connections | requests | 2xx | 429 | 5xx | p50 | p99 | x-cache |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...report.streams.map(
      (s) =>
        `| ${s.label} | ${s.connections} | ${int(s.total.requests)} | ${int(s.total.s2xx)} | ${int(s.total.s429)} | ` +
        `${int(s.total.s5xx)} | ${ms(s.total.p50Ms)} | ${ms(s.total.p99Ms)} | ` +
        `${Object.entries(s.xCache)
          .map(([k, n]) => `${k} ${int(n)}`)
          .join(", ")} |`,
    ),
    "",
    "By phase (requests, 5xx, p50 / p99):",
    "",
    `| route | ${PHASES.map((p) => `${PHASE_LABEL[p]}`).join(" | ")} |`,
    `| --- | ${PHASES.map(() => "---").join(" | ")} |`,
    ...report.streams.map(
      (s) =>
        `| ${s.key} | ${PHASES.map((p) => {
          const c = s.phases[p];
          return `${int(c.requests)}, ${int(c.s5xx)} 5xx, ${ms(c.p50Ms)} / ${ms(c.p99Ms)}`;
        }).join(" | ")} |`,
    ),
    "",
    `p99 by ${TIMELINE_S} s of the run (requests in brackets):`,
    "",
    `| route | ${(report.streams[0]?.timeline ?? []).map((_, i) => `${i * TIMELINE_S}–${(i + 1) * TIMELINE_S} s`).join(" | ")} |`,
    `| --- | ${(report.streams[0]?.timeline ?? []).map(() => "---:").join(" | ")} |`,
    ...report.streams.map(
      (s) => `| ${s.key} | ${s.timeline.map((c) => `${ms(c.p99Ms)} (${int(c.requests)})`).join(" | ")} |`,
    ),
    "",
    `- Connection errors and timeouts: ${report.streams.map((s) => `${s.key} ${s.errors} / ${s.timeouts}`).join(", ")}.`,
    `- The server logged the rate limiter's outage ${report.limiterOutageLogs} time(s) (once per outage) and served on; ` +
      `it logged ${report.serverErrors.length} line(s) of 5xx answers or stray rejections${report.serverErrors.length ? `: \`${report.serverErrors[0]}\`` : ""}.`,
    `- Lines the server logged: ${PHASES.map((p) => `${int(report.logLines[p])} while ${PHASE_LABEL[p]}`).join(", ")}.`,
    ...(report.topLogLines.length > 0
      ? [
          `- Its most frequent lines (digits shown as N): ${report.topLogLines
            .map(([line, n]) => `${int(n)} × \`${line.replaceAll("`", "'")}\``)
            .join("; ")}.`,
        ]
      : []),
    `- RSS of the server, sampled each second: ${rssMarks(report, o.durationS)
      .map(([t, b]) => `${mib(b)} at ${t} s`)
      .join(", ")}.`,
    "",
    "Reading:",
    "",
    `- **${int(report.total.s5xx)} 5xx with redis-server killed and restarted.** While it was down the bridge answered ` +
      "every command 503 at once: the rate limiter failed open (logged once, not per request), forecasts were " +
      `computed uncached (x-cache BYPASS: ${int(bypass)}), and usage counts were lost; after the restart (an empty ` +
      "Redis) the limiter, the cache and the counters resumed without a restart of the server.",
    "- The outage is a few lines in the server's log, not one per request: the cache, the usage counters and the " +
      "rate limiter each warn once when Redis goes and once when it is back, with the count of failed calls.",
    `- Latencies are those of one process serving ${o.connections} connections on ${os.availableParallelism()} cores ` +
      "shared with the load generator, the bridge and redis-server" +
      (report.loadAverage.end > os.availableParallelism()
        ? `, on a machine also busy with other work (load average ${report.loadAverage.end.toFixed(1)} at the end): ` +
          "read them as queueing under saturation, not as the cost of a request (that is in 'HTTP: the OIP infer route' above)."
        : ": read them as queueing under saturation, not as the cost of a request (that is in 'HTTP: the OIP infer route' above)."),
  ];
  return lines.join("\n");
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      duration: { type: "string" },
      connections: { type: "string" },
      "kill-at": { type: "string" },
      "restart-at": { type: "string" },
      "no-doc": { type: "boolean" },
    },
  });
  const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
  const options: LoadOptions = {
    ...DEFAULT_LOAD,
    durationS: num(values.duration, DEFAULT_LOAD.durationS),
    connections: num(values.connections, DEFAULT_LOAD.connections),
    killAtS: num(values["kill-at"], DEFAULT_LOAD.killAtS),
    restartAtS: num(values["restart-at"], DEFAULT_LOAD.restartAtS),
    log: (line) => console.log(line),
  };
  runLoad(options).then(
    async (report) => {
      const isDefault =
        options.durationS === DEFAULT_LOAD.durationS &&
        options.connections === DEFAULT_LOAD.connections &&
        options.killAtS === DEFAULT_LOAD.killAtS &&
        options.restartAtS === DEFAULT_LOAD.restartAtS;
      const command = isDefault
        ? "npm run load"
        : `npm run load -- --duration ${options.durationS} --connections ${options.connections} --kill-at ${options.killAtS} --restart-at ${options.restartAtS}`;
      const section = formatReport(report, command);
      console.log(`\n${section}\n`);
      if (!values["no-doc"]) {
        await writeDocSection(DOC_HEADING, section);
        console.log("docs/benchmarks.md: section rewritten");
      }
      process.exit(report.total.s5xx > 0 ? 1 : 0);
    },
    (error: unknown) => {
      console.error("load:", error);
      process.exit(2);
    },
  );
}
