import { json, RestartableServer } from "../../../scripts/dev/lib/http";

/** One Redis command as `@upstash/redis` sends it: `["SET", "key", "value", "EX", 86400]`. */
export type Command = readonly (string | number | boolean)[];

export interface UpstashFaults {
  /** `http://127.0.0.1:PORT`: give it to `new Redis({ url, token })` instead of the bridge's URL. */
  readonly url: string;
  /**
   * From now on, answer 500 to every request that carries a command matching `match` (a pipeline fails whole, as
   * Upstash's would), `times` times (default: until `heal()`).
   */
  fail(match: (command: Command) => boolean, times?: number): void;
  /** Forward everything again. */
  heal(): void;
  /** Requests answered 500 so far. */
  readonly refused: number;
  /** Requests forwarded to the bridge so far, with their commands. */
  readonly forwarded: readonly Command[][];
  close(): Promise<void>;
}

/** The commands of a request body: `/` carries one command, `/pipeline` and `/multi-exec` an array of them. */
function commandsOf(path: string, body: unknown): Command[] {
  if (!Array.isArray(body)) return [];
  if (path === "/pipeline" || path === "/multi-exec") return body.filter(Array.isArray) as Command[];
  return [body as Command];
}

const isJobKey = (key: unknown) => /(^|:)job:/.test(String(key));
/** `SET <prefix>job:…`: the job store's writes. */
export const jobWrite = (command: Command) =>
  String(command[0]).toUpperCase() === "SET" && isJobKey(command[1]);
/** `GET`/`MGET` of `<prefix>job:…`: the job store's reads. */
export const jobRead = (command: Command) =>
  ["GET", "MGET"].includes(String(command[0]).toUpperCase()) && command.slice(1).some(isJobKey);

/**
 * A fault-injecting HTTP layer between the real `@upstash/redis` client and the dev stack's Upstash bridge (itself
 * in front of a real redis-server): requests pass through untouched until a test says which commands to refuse.
 * Faults are triggered by what is sent, never by timing, so a test that uses them is deterministic on a busy machine.
 * A 500 with `{"error"}` is what Upstash answers when it fails internally; the client does not retry it.
 */
export async function startUpstashFaults(bridgeUrl: string): Promise<UpstashFaults> {
  let rule: { match: (command: Command) => boolean; left: number } | undefined;
  let refused = 0;
  const forwarded: Command[][] = [];
  const server = new RestartableServer(async (request) => {
    const path = new URL(request.url).pathname;
    const text = await request.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const commands = commandsOf(path, body);
    if (rule && rule.left > 0 && commands.some(rule.match)) {
      rule.left -= 1;
      refused += 1;
      return json({ error: "ERR injected fault: Upstash answered 500" }, 500);
    }
    forwarded.push(commands);
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.delete("content-length");
    const answer = await fetch(bridgeUrl + path, { method: request.method, headers, body: text });
    const out = new Headers();
    for (const name of ["content-type", "upstash-sync-token"]) {
      const value = answer.headers.get(name);
      if (value !== null) out.set(name, value);
    }
    return new Response(await answer.arrayBuffer(), { status: answer.status, headers: out });
  });
  await server.start();
  return {
    url: server.origin,
    fail(match, times = Number.POSITIVE_INFINITY) {
      rule = { match, left: times };
    },
    heal() {
      rule = undefined;
    },
    get refused() {
      return refused;
    },
    forwarded,
    close: () => server.stop(),
  };
}
