/**
 * The Upstash Redis REST protocol in front of a real redis-server, so that the real `@upstash/redis` and
 * `@upstash/ratelimit` clients can be tested locally against real Redis semantics (TTLs, types, Lua, MULTI).
 *
 *   npx tsx scripts/dev/upstash-bridge.ts --port 8079 --token dev-token [--redis-url redis://127.0.0.1:6379]
 *
 * Without --redis-url the CLI starts its own redis-server on a free port. Then:
 *   new Redis({ url: "http://127.0.0.1:8079", token: "dev-token" })
 *
 * Protocol (as @upstash/redis 1.x speaks it):
 * - `POST /` with a JSON array `["SET","k","v"]`; `GET|POST /set/k/v` path form (a POST body is appended as the
 *   last argument); `POST /pipeline` and `POST /multi-exec` with an array of arrays.
 * - `Authorization: Bearer <token>` (or `?_token=`); otherwise 401 `{"error":"Unauthorized"}`.
 * - Answers `{"result": ...}`, or `{"error": "..."}` with status 400 for a Redis error; pipeline and multi-exec
 *   answer 200 with one `{result}|{error}` per command. Nested arrays, integers and nulls pass through.
 * - `Upstash-Encoding: base64` (the client's default) base64-encodes every string in results, bytes as stored.
 * - `upstash-sync-token` is answered on every response (read-your-writes); the bridge is always consistent.
 * - `#!lua flags=...` shebangs name Upstash-only flags (`allow-key-locking`) that Redis 7 rejects: unknown flags
 *   are stripped, and EVALSHA with the SHA-1 of the *original* script (what clients compute) runs the stripped one.
 *
 * Outage behaviour (chosen so that callers fail fast and can degrade): while redis-server is unreachable every
 * command request is answered at once with 503 `{"error":"..."}`. @upstash/redis retries only network errors,
 * not HTTP statuses, so a call rejects with an UpstashError within milliseconds. The bridge keeps reconnecting in
 * the background (backoff capped at RECONNECT_MAX_DELAY_MS) and serves again as soon as Redis is back.
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { Hono } from "hono";
import { createClient, ErrorReply, RESP_TYPES, type TypeMapping } from "redis";
import { failCli, isMain, parsePort, runUntilSignal } from "./lib/cli";
import { bearerToken, json, RestartableServer } from "./lib/http";
import { startRedisServer } from "./redis-server";

/** A command stuck longer than this (a frozen redis-server) fails with 503 instead of hanging the caller. */
const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** How long `startUpstashBridge` waits for the first connection to Redis before giving up. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Reconnect backoff cap: a restarted redis-server is picked up within about this long. */
const RECONNECT_MAX_DELAY_MS = 200;

export interface UpstashBridgeOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** The redis-server to forward to, e.g. `redis://127.0.0.1:6379` (see `startRedisServer`). */
  redisUrl: string;
  /** The token clients must send as `Authorization: Bearer <token>`. */
  token: string;
  /** Per-command timeout; default 5 s. */
  commandTimeoutMs?: number;
  /** How long to wait for Redis at start; default 5 s. */
  connectTimeoutMs?: number;
}

export interface UpstashBridgeHandle {
  /** `http://127.0.0.1:PORT`, the `url` for `new Redis({ url, token })`. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** Whether the bridge currently has a working connection to Redis. */
  redisReady(): boolean;
  close(): Promise<void>;
}

/** Starts the bridge and resolves once it is connected to Redis and listening. */
export async function startUpstashBridge(options: UpstashBridgeOptions): Promise<UpstashBridgeHandle> {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const redis = createClient({
    url: options.redisUrl,
    // Upstash's REST answers are RESP2-shaped (no maps, no doubles); RESP2 keeps the translation 1:1.
    RESP: 2,
    // Fail instead of queueing while Redis is down: queued commands would hang the HTTP caller.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 1_000,
      reconnectStrategy: (retries: number) => Math.min(25 * 2 ** retries, RECONNECT_MAX_DELAY_MS),
    },
  });
  // node-redis emits connection errors as events while it reconnects; without a listener they would crash
  // the process. The HTTP side reports the outage to callers.
  redis.on("error", () => {});

  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const connecting = redis.connect();
  // If we give up first, destroy() makes this promise reject later; that is expected, not an unhandled error.
  connecting.catch(() => {});
  try {
    await withTimeout(connecting, connectTimeoutMs, `could not connect to ${options.redisUrl}`);
  } catch (error) {
    redis.destroy();
    throw new Error(`edgeml upstash-bridge: ${errorMessage(error)}`, { cause: error });
  }

  const executor = new CommandExecutor(redis, commandTimeoutMs);
  const app = createBridgeApp(executor, options.token);
  const server = new RestartableServer(app.fetch, options.port ?? 0);
  try {
    await server.start();
  } catch (error) {
    redis.destroy();
    throw error;
  }

  return {
    url: server.origin,
    port: server.port,
    token: options.token,
    redisReady: () => redis.isReady,
    close: async () => {
      await server.stop();
      redis.destroy();
    },
  };
}

/** All the bridge needs from a node-redis client. */
interface RedisConnection {
  readonly isReady: boolean;
  sendCommand<T>(
    args: string[],
    options: { typeMapping: TypeMapping; timeout: number; chainId?: symbol },
  ): Promise<T>;
}

/** A JSON command argument as @upstash/redis serialises them (strings, numbers, booleans). */
type Arg = string | number | boolean;

/** A RESP2 reply with byte strings kept as Buffers. */
type RawReply = Buffer | number | null | ErrorReply | RawReply[];

/** What a command request answers per command. */
type Outcome = { result: unknown } | { error: string };

/** Redis is unreachable (or too slow): the whole request is answered 503. */
class RedisUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`edgeml upstash-bridge: redis is unavailable (${errorMessage(cause)})`, { cause });
    this.name = "RedisUnavailableError";
  }
}

/** A request the bridge refuses before it reaches Redis (bad JSON, unsupported command): 400. */
class BadRequestError extends Error {}

function createBridgeApp(executor: CommandExecutor, token: string): Hono {
  const app = new Hono();
  // Monotonic, so a client that sends back the last token it saw never gets an older one.
  let syncToken = 0;

  app.use("*", async (c, next) => {
    const given = bearerToken(c.req.raw) ?? c.req.query("_token");
    if (given !== token) return json({ error: "Unauthorized" }, 401);
    await next();
    c.res.headers.set("upstash-sync-token", String(++syncToken));
  });

  const respond = async (run: () => Promise<Response>): Promise<Response> => {
    try {
      return await run();
    } catch (error) {
      if (error instanceof RedisUnavailableError) return json({ error: error.message }, 503);
      if (error instanceof BadRequestError) return json({ error: error.message }, 400);
      return json({ error: `edgeml upstash-bridge: ${errorMessage(error)}` }, 500);
    }
  };

  app.post("/pipeline", (c) =>
    respond(async () => {
      const commands = parseCommandList(await readJson(c.req.raw));
      const outcomes = await executor.pipeline(commands, wantsBase64(c.req.raw));
      return json(outcomes);
    }),
  );

  app.post("/multi-exec", (c) =>
    respond(async () => {
      const commands = parseCommandList(await readJson(c.req.raw));
      const outcome = await executor.transaction(commands, wantsBase64(c.req.raw));
      return "error" in outcome ? json(outcome, 400) : json(outcome.results);
    }),
  );

  app.post("/", (c) =>
    respond(async () => single(executor, parseCommand(await readJson(c.req.raw)), wantsBase64(c.req.raw))),
  );

  // Path form: /set/key/value (GET or POST; a non-empty POST body is the last argument).
  app.on(["GET", "POST"], "/*", (c) =>
    respond(async () => {
      const url = new URL(c.req.url);
      const parts = url.pathname
        .split("/")
        .filter((p) => p !== "")
        .map(decodeURIComponent);
      if (parts.length === 0) throw new BadRequestError("edgeml upstash-bridge: empty command");
      if (c.req.method === "POST") {
        const body = await c.req.text();
        if (body !== "") parts.push(body);
      }
      return single(executor, parts, wantsBase64(c.req.raw));
    }),
  );

  return app;
}

async function single(executor: CommandExecutor, command: Arg[], base64: boolean): Promise<Response> {
  const [outcome] = await executor.pipeline([command], base64);
  if (!outcome) throw new Error("no reply");
  return "error" in outcome ? json(outcome, 400) : json(outcome);
}

function wantsBase64(request: Request): boolean {
  return request.headers.get("upstash-encoding")?.toLowerCase() === "base64";
}

async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    throw new BadRequestError("edgeml upstash-bridge: the body must be JSON");
  }
}

function parseCommand(value: unknown): Arg[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((a) => typeof a === "string" || typeof a === "number" || typeof a === "boolean")
  ) {
    throw new BadRequestError(
      "edgeml upstash-bridge: a command must be a non-empty JSON array of strings and numbers",
    );
  }
  return value;
}

function parseCommandList(value: unknown): Arg[][] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BadRequestError("edgeml upstash-bridge: expected a non-empty JSON array of commands");
  }
  return value.map(parseCommand);
}

/**
 * Commands that would change the state of the one shared connection (MULTI, SELECT, SUBSCRIBE, ...) or block
 * it for every other caller (BLPOP, ...). Upstash's REST API has no use for the first kind either.
 */
const REFUSED_COMMANDS = new Set([
  "multi",
  "exec",
  "discard",
  "watch",
  "unwatch",
  "select",
  "swapdb",
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  "monitor",
  "quit",
  "reset",
  "hello",
  "auth",
  "client",
  "sync",
  "psync",
  "shutdown",
  "blpop",
  "brpop",
  "brpoplpush",
  "blmove",
  "blmpop",
  "bzpopmin",
  "bzpopmax",
  "bzmpop",
  "wait",
  "waitaof",
]);

/** Redis 7.0 accepts these flags in a `#!lua` shebang; any other flag makes it reject the script. */
const REDIS_SCRIPT_FLAGS = new Set([
  "no-writes",
  "allow-oom",
  "allow-stale",
  "no-cluster",
  "allow-cross-slot-keys",
]);

/** A command as sent to Redis, and how to turn Redis's reply into what an Upstash client expects. */
interface PreparedCommand {
  args: string[];
  transform?: (reply: RawReply) => RawReply;
}

class CommandExecutor {
  readonly #redis: RedisConnection;
  readonly #timeoutMs: number;
  /** SHA-1 of a script as clients sent it → the script as Redis accepts it. */
  readonly #scripts = new Map<string, string>();

  constructor(redis: RedisConnection, timeoutMs: number) {
    this.#redis = redis;
    this.#timeoutMs = timeoutMs;
  }

  /** Runs commands in order (node-redis writes them back to back on one connection) and answers one each. */
  async pipeline(commands: Arg[][], base64: boolean): Promise<Outcome[]> {
    this.#assertReady();
    const prepared = commands.map((command) => this.#prepare(command));
    // Every command is handed to node-redis synchronously, in order, before anything is awaited: that keeps
    // the pipeline's order on the wire.
    const pending = prepared.map((p) => (p instanceof Error ? Promise.reject(p) : this.#send(p.args)));
    const settled = await Promise.allSettled(pending);
    return settled.map((s, i) => {
      if (s.status === "rejected") return this.#failure(s.reason);
      const p = prepared[i];
      const reply = p && !(p instanceof Error) && p.transform ? p.transform(s.value) : s.value;
      return toOutcome(reply, base64);
    });
  }

  /** MULTI … EXEC on the shared connection, as one uninterrupted chain. */
  async transaction(commands: Arg[][], base64: boolean): Promise<{ results: Outcome[] } | { error: string }> {
    this.#assertReady();
    const prepared: PreparedCommand[] = [];
    for (const command of commands) {
      const p = this.#prepare(command);
      if (p instanceof BadRequestError) return { error: p.message };
      prepared.push(p);
    }

    const chainId = Symbol("multi-exec");
    const queued = [this.#send(["MULTI"], chainId), ...prepared.map((p) => this.#send(p.args, chainId))];
    const exec = this.#send(["EXEC"], chainId);
    const [queuedSettled, execSettled] = await Promise.all([Promise.allSettled(queued), settle(exec)]);

    for (const s of [...queuedSettled, execSettled]) {
      if (s.status === "rejected" && !(s.reason instanceof ErrorReply)) {
        throw new RedisUnavailableError(s.reason);
      }
    }
    if (execSettled.status === "rejected") {
      // EXECABORT: a command was refused while queueing (wrong arity, unknown command); report the cause.
      const cause = queuedSettled.find((s) => s.status === "rejected");
      const detail = cause?.status === "rejected" ? ` (${errorMessage(cause.reason)})` : "";
      return { error: `${errorMessage(execSettled.reason)}${detail}` };
    }
    const replies = execSettled.value;
    if (!Array.isArray(replies)) return { error: "EXEC was aborted (WATCH is not supported)" };
    return {
      results: replies.map((reply, i) => {
        if (reply instanceof ErrorReply) return { error: reply.message };
        const transform = prepared[i]?.transform;
        return toOutcome(transform ? transform(reply) : reply, base64);
      }),
    };
  }

  #assertReady(): void {
    if (!this.#redis.isReady) throw new RedisUnavailableError("not connected");
  }

  #failure(reason: unknown): Outcome {
    if (reason instanceof ErrorReply || reason instanceof BadRequestError) return { error: reason.message };
    throw new RedisUnavailableError(reason);
  }

  #send(args: string[], chainId?: symbol): Promise<RawReply> {
    return this.#redis.sendCommand<RawReply>(args, {
      // Byte strings stay Buffers so that binary values survive and base64 encodes the stored bytes exactly.
      typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer },
      timeout: this.#timeoutMs,
      ...(chainId ? { chainId } : {}),
    });
  }

  #prepare(command: Arg[]): PreparedCommand | BadRequestError {
    const args = command.map(String);
    const name = (args[0] ?? "").toLowerCase();
    const blockingRead =
      (name === "xread" || name === "xreadgroup") && args.some((a) => a.toLowerCase() === "block");
    if (REFUSED_COMMANDS.has(name) || blockingRead) {
      const what = blockingRead ? `${name.toUpperCase()} ... BLOCK` : name.toUpperCase();
      return new BadRequestError(`ERR ${what} is not supported by the edgeml upstash-bridge`);
    }
    switch (name) {
      case "eval":
      case "eval_ro":
        return { args: [args[0] as string, this.#register(args[1] ?? ""), ...args.slice(2)] };
      case "evalsha":
      case "evalsha_ro": {
        const script = this.#scripts.get((args[1] ?? "").toLowerCase());
        if (!script) return { args }; // unknown to us: Redis answers NOSCRIPT and the client falls back to EVAL
        // EVAL rather than EVALSHA of the stripped script: Redis caches it all the same, and a restarted
        // redis-server (empty script cache) cannot make a known script fail with NOSCRIPT.
        return { args: [name === "evalsha" ? "EVAL" : "EVAL_RO", script, ...args.slice(2)] };
      }
      case "script":
        return this.#prepareScriptCommand(args);
      default:
        return { args };
    }
  }

  #prepareScriptCommand(args: string[]): PreparedCommand {
    const sub = (args[1] ?? "").toLowerCase();
    if (sub === "load" && args[2] !== undefined) {
      const original = args[2];
      const clientSha = sha1(original);
      this.#register(original);
      // Redis compiles (and caches) the stripped script; the client gets the SHA it computed itself.
      return {
        args: ["SCRIPT", "LOAD", stripUnknownShebangFlags(original)],
        transform: () => Buffer.from(clientSha),
      };
    }
    if (sub === "exists") {
      const shas = args.slice(2).map((s) => s.toLowerCase());
      return {
        args,
        transform: (reply) =>
          Array.isArray(reply) ? reply.map((r, i) => (this.#scripts.has(shas[i] ?? "") ? 1 : r)) : reply,
      };
    }
    if (sub === "flush") this.#scripts.clear();
    return { args };
  }

  /** Remembers a script under the SHA-1 clients compute for it and returns the text Redis will accept. */
  #register(original: string): string {
    const stripped = stripUnknownShebangFlags(original);
    if (stripped !== original) this.#scripts.set(sha1(original), stripped);
    return stripped;
  }
}

/** `#!lua flags=allow-key-locking,no-writes` → `#!lua flags=no-writes`; other scripts are returned unchanged. */
export function stripUnknownShebangFlags(script: string): string {
  const match = /^#!lua([^\n]*)/.exec(script);
  if (!match) return script;
  const rest = (match[1] ?? "").trim();
  const kept = rest
    .split(/\s+/)
    .filter((part) => part !== "")
    .map((part) => {
      if (!part.startsWith("flags=")) return part;
      const flags = part
        .slice("flags=".length)
        .split(",")
        .filter((flag) => REDIS_SCRIPT_FLAGS.has(flag));
      return flags.length > 0 ? `flags=${flags.join(",")}` : "";
    })
    .filter((part) => part !== "");
  const shebang = kept.length > 0 ? `#!lua ${kept.join(" ")}` : "#!lua";
  return shebang + script.slice(match[0].length);
}

function toOutcome(reply: RawReply, base64: boolean): Outcome {
  if (reply instanceof ErrorReply) return { error: reply.message };
  return { result: encodeReply(reply, base64) };
}

/** JSON shape of a reply: byte strings as base64 (Upstash-Encoding) or UTF-8 text, arrays recursively. */
function encodeReply(reply: RawReply, base64: boolean): unknown {
  if (reply === null || typeof reply === "number") return reply;
  if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
  if (reply instanceof ErrorReply) return reply.message;
  return reply.map((r) => encodeReply(r, base64));
}

function sha1(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
}

function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return promise.then(
    (value) => ({ status: "fulfilled", value }),
    (reason: unknown) => ({ status: "rejected", reason }),
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      token: { type: "string", default: "dev-token" },
      "redis-url": { type: "string" },
    },
  });
  (async () => {
    const ownRedis = values["redis-url"] ? undefined : await startRedisServer();
    const redisUrl = values["redis-url"] ?? ownRedis?.url ?? "";
    const bridge = await startUpstashBridge({ port: parsePort(values.port), redisUrl, token: values.token });
    console.log(`upstash-bridge listening at ${bridge.url} → ${redisUrl}`);
    console.log(`  UPSTASH_REDIS_REST_URL=${bridge.url} UPSTASH_REDIS_REST_TOKEN=${bridge.token}`);
    runUntilSignal("upstash-bridge", async () => {
      await bridge.close();
      await ownRedis?.stop();
    });
  })().catch((error: unknown) => failCli("upstash-bridge", error));
}
