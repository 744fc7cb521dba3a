/**
 * One load run of bench/peer.bench.ts, in its own process: autocannon against one server, every response checked.
 *
 *   tsx bench/peer/load.ts '<LoadSpec as JSON>'   → last stdout line: LoadResult as JSON
 *
 * The server's CPU time (its whole process tree, bench/peer/procfs.ts) is read right before autocannon starts and
 * right after it ends, so the cost per request covers the load and nothing else. Latencies are autocannon's
 * per-response times (its own histogram rounds to whole milliseconds).
 */
import autocannon from "autocannon";
import { quantile } from "../support.js";
import { type Expect, verifier } from "./checks.js";
import { treeCpuUs } from "./procfs.js";

export interface LoadSpec {
  url: string;
  body: string;
  connections: number;
  seconds: number;
  /** Root process of the server under load. */
  serverPid: number;
  expect: Expect;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  mismatches: number;
  /** The first mismatching body, to say what was wrong. */
  firstMismatch: string | null;
  serverCpuUs: number;
  /** CPU time of this process (autocannon and the checks), which shares the cores with the server. */
  loadCpuUs: number;
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  const check = verifier(spec.expect);
  const times: number[] = [];
  let non2xx = 0;
  let firstMismatch: string | null = null;
  const verifyBody = (raw: string | Buffer | undefined) => {
    const body = raw === undefined ? "" : raw.toString();
    const ok = check(body);
    if (!ok) firstMismatch ??= body.slice(0, 500);
    return ok;
  };
  const cpuBefore = process.cpuUsage();
  const serverBefore = treeCpuUs(spec.serverPid);
  const result = await new Promise<autocannon.Result>((done, fail) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: spec.body,
        connections: spec.connections,
        duration: spec.seconds,
        verifyBody,
      },
      (error, r) => (error ? fail(error) : done(r)),
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      times.push(responseTime);
      if (statusCode < 200 || statusCode > 299) non2xx += 1;
    });
  });
  const serverCpuUs = treeCpuUs(spec.serverPid) - serverBefore;
  const own = process.cpuUsage(cpuBefore);
  return {
    requests: result.requests.total,
    seconds: result.duration,
    reqPerSec: result.requests.total / result.duration,
    p50Ms: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    non2xx: Math.max(non2xx, result.non2xx),
    errors: result.errors + result.timeouts,
    mismatches: result.mismatches,
    firstMismatch,
    serverCpuUs,
    loadCpuUs: own.user + own.system,
  };
}

const [arg] = process.argv.slice(2);
if (!arg) {
  console.error("usage: tsx bench/peer/load.ts '<LoadSpec JSON>' (started by bench/peer.bench.ts)");
  process.exit(2);
}
console.log(JSON.stringify(await run(JSON.parse(arg) as LoadSpec)));
