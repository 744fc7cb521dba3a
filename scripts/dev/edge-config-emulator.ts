/**
 * A local Vercel Edge Config: the read API that `@vercel/edge-config` calls, plus the Vercel REST API endpoints
 * that write items, backed by an in-memory store.
 *
 *   npx tsx scripts/dev/edge-config-emulator.ts --port 8078 [--items '{"champion":"btc@3"}'] [--max-size-bytes 8192]
 *   EDGE_CONFIG="http://127.0.0.1:8078/ecfg_dev?token=dev-read-token"
 *   PATCH http://127.0.0.1:8078/v1/edge-config/ecfg_dev/items   (Authorization: Bearer dev-api-token)
 *
 * Read API, as @vercel/edge-config 1.5 calls it for a connection string that is not edge-config.vercel.com
 * ("external" connection: base URL = the connection string without its query; token sent as a Bearer header):
 * - `GET {base}/item/{key}?version=1` → the JSON value; 404 *with* an `x-edge-config-digest` header when the key
 *   is missing (the client maps that to `undefined`; a 404 without the header means "Edge Config not found").
 * - `HEAD {base}/item/{key}?version=1` → 200 / 404 with the digest header (`has()`).
 * - `GET {base}/items?version=1[&key=a&key=b]` → `{ key: value }` of the existing keys asked for (all without `key`).
 * - `GET {base}/digest?version=1` → the digest as a JSON string.
 * - 401 for a missing or wrong token (`Authorization: Bearer` or `?token=`).
 * - Every 200 carries `ETag` and `x-edge-config-digest`; `If-None-Match` with the current ETag answers 304. The
 *   client keeps a process-wide ETag cache and sends If-None-Match itself, so these paths are exercised for real.
 *
 * How to get fresh reads from the real client (found in its source):
 * - With `NODE_ENV=development` (and no `disableDevelopmentCache: true` or `EDGE_CONFIG_DISABLE_DEVELOPMENT_SWR=1`)
 *   the client loads all items once and serves them stale-while-revalidate: a read right after a PATCH may return
 *   the old value. Pass `createClient(cs, { disableDevelopmentCache: true })` in tools and tests.
 * - `createClient(cs)` *without* options defaults to `{ staleIfError: 604800, cache: "no-store" }`: after one good
 *   read of a URL, a 5xx or network error makes it silently return the cached value for up to a week. Passing any
 *   options object drops that default; pass `{ staleIfError: false }` style options (or a fresh key) to see outages.
 * - `{ consistentRead: true }` per call sends `x-edge-config-min-updated-at`; this emulator is always consistent.
 *
 * Write API (Vercel REST): `PATCH /v1/edge-config/{id}/items` with `{"items":[{"operation":"create"|"update"|
 * "upsert"|"delete","key","value"?,"description"?}]}` → `{"status":"ok"}`; `GET /v1/edge-config/{id}/items`,
 * `GET /v1/edge-config/{id}/item/{key}`, `GET /v1/edge-config/{id}`. Bearer API token, 403 otherwise.
 * Errors are `{"error":{"code","message"}}` as the Vercel API shapes them.
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { failCli, isMain, parsePort, runUntilSignal } from "./lib/cli";
import { bearerToken, json, RestartableServer } from "./lib/http";

/** Vercel's rule for item keys. */
const KEY_PATTERN = /^[\w-]+$/;
/** Vercel's limits on an item key and description, from the REST API's schema. */
const MAX_KEY_LENGTH = 256;
const MAX_DESCRIPTION_LENGTH = 512;
/** Largest Edge Config Vercel allows (Enterprise plan); Pro is 64 KiB and Hobby 8 KiB: lower it to match a plan. */
const DEFAULT_MAX_SIZE_BYTES = 512 * 1024;
/** Requests kept for `requests()`; enough for any one test, bounded for a long-running dev server. */
const REQUEST_LOG_SIZE = 500;

/** Any JSON value: what an Edge Config item holds. */
export type EdgeConfigValue =
  | string
  | number
  | boolean
  | null
  | EdgeConfigValue[]
  | { [key: string]: EdgeConfigValue };

export interface EdgeConfigEmulatorOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Edge Config id; default `ecfg_dev`. Must start with `ecfg_` as Vercel's do. */
  id?: string;
  /** Read token, as in the connection string's `?token=`; default `dev-read-token`. */
  token?: string;
  /** Vercel REST API token for writes; default `dev-api-token`. */
  apiToken?: string;
  /** Initial items. */
  items?: Record<string, EdgeConfigValue>;
  /** Size limit of all items as JSON; default 512 KiB (Enterprise). */
  maxSizeBytes?: number;
}

export interface EdgeConfigEmulatorHandle {
  /** `http://127.0.0.1:PORT`; also the base of the REST API (`${url}/v1/edge-config/${id}/items`). */
  readonly url: string;
  readonly port: number;
  readonly id: string;
  readonly token: string;
  readonly apiToken: string;
  /** `http://127.0.0.1:PORT/<id>?token=<token>`, for `EDGE_CONFIG` / `createClient()`. */
  readonly connectionString: string;
  /** The current digest (changes on every write that changes the items). */
  digest(): string;
  /** A copy of the current items. */
  items(): Record<string, EdgeConfigValue>;
  /** Replaces all items, as a direct test fixture (no REST call). */
  setItems(items: Record<string, EdgeConfigValue>): void;
  /** Requests seen so far (newest last), for asserting routes, headers and 304s. */
  requests(): RecordedRequest[];
  /** false → every request is answered 503 (service outage) until set back to true. */
  setAvailable(available: boolean): void;
  /** Stops listening (clients get "connection refused"); the items are kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** `stop()` then `start()`. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. `/ecfg_dev/item/champion?version=1`. */
  path: string;
  status: number;
  headers: Record<string, string>;
}

interface StoredItem {
  value: EdgeConfigValue;
  description?: string;
  createdAt: number;
  updatedAt: number;
}

export async function startEdgeConfigEmulator(
  options: EdgeConfigEmulatorOptions = {},
): Promise<EdgeConfigEmulatorHandle> {
  const id = options.id ?? "ecfg_dev";
  if (!/^ecfg_[\w-]+$/.test(id))
    throw new Error(`edgeml edge-config-emulator: id must match ^ecfg_[\\w-]+$, got "${id}"`);
  const token = options.token ?? "dev-read-token";
  const apiToken = options.apiToken ?? "dev-api-token";
  const store = new EdgeConfigStore(options.maxSizeBytes ?? DEFAULT_MAX_SIZE_BYTES);
  store.replace(options.items ?? {});

  let available = true;
  const log: RecordedRequest[] = [];
  const app = new Hono();
  app.use("*", async (c, next) => {
    if (available) {
      await next();
    } else {
      c.res = json({ error: { code: "service_unavailable", message: "Edge Config is unavailable" } }, 503);
    }
    const url = new URL(c.req.url);
    log.push({
      method: c.req.method,
      path: url.pathname + url.search,
      status: c.res.status,
      headers: Object.fromEntries(c.req.raw.headers),
    });
    if (log.length > REQUEST_LOG_SIZE) log.shift();
  });
  mountReadApi(app, { id, token, store });
  mountRestApi(app, { id, apiToken, store });
  app.notFound(() => json({ error: { code: "not_found", message: "Not found" } }, 404));

  const server = new RestartableServer(app.fetch, options.port ?? 0);
  await server.start();
  const url = server.origin;
  return {
    url,
    port: server.port,
    id,
    token,
    apiToken,
    connectionString: `${url}/${id}?token=${encodeURIComponent(token)}`,
    digest: () => store.digest,
    items: () => structuredClone(store.values()),
    setItems: (items) => store.replace(items),
    requests: () => [...log],
    setAvailable: (value) => {
      available = value;
    },
    stop: () => server.stop(),
    start: () => server.start(),
    restart: async () => {
      await server.stop();
      await server.start();
    },
    close: () => server.stop(),
  };
}

class EdgeConfigStore {
  readonly #maxSizeBytes: number;
  #items = new Map<string, StoredItem>();
  #digest = "";
  readonly createdAt = Date.now();
  updatedAt = Date.now();

  constructor(maxSizeBytes: number) {
    this.#maxSizeBytes = maxSizeBytes;
  }

  get digest(): string {
    return this.#digest;
  }

  get(key: string): StoredItem | undefined {
    return this.#items.get(key);
  }

  entries(): [string, StoredItem][] {
    return [...this.#items.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  values(): Record<string, EdgeConfigValue> {
    return Object.fromEntries(this.entries().map(([key, item]) => [key, item.value]));
  }

  sizeInBytes(items = this.#items): number {
    const plain = Object.fromEntries([...items].map(([key, item]) => [key, item.value]));
    return Buffer.byteLength(JSON.stringify(plain));
  }

  replace(values: Record<string, EdgeConfigValue>): void {
    const now = Date.now();
    const next = new Map<string, StoredItem>();
    for (const [key, value] of Object.entries(values)) {
      assertValidKey(key);
      next.set(key, { value: structuredClone(value), createdAt: now, updatedAt: now });
    }
    this.#commit(next);
  }

  /** Applies a batch all-or-nothing, as one Edge Config update. */
  apply(
    operations: ItemOperation[],
  ): { ok: true } | { ok: false; status: 400 | 404 | 409; code: string; message: string } {
    const now = Date.now();
    const next = new Map(this.#items);
    for (const op of operations) {
      const existing = next.get(op.key);
      switch (op.operation) {
        case "create":
          if (existing) {
            return {
              ok: false,
              status: 409,
              code: "conflict",
              message: `Item with key "${op.key}" already exists`,
            };
          }
          next.set(
            op.key,
            withDescription({ value: op.value ?? null, createdAt: now, updatedAt: now }, op.description),
          );
          break;
        case "update":
          if (!existing) {
            return {
              ok: false,
              status: 404,
              code: "not_found",
              message: `Item with key "${op.key}" does not exist`,
            };
          }
          next.set(
            op.key,
            withDescription({ ...existing, value: op.value ?? null, updatedAt: now }, op.description),
          );
          break;
        case "upsert":
          next.set(
            op.key,
            withDescription(
              { value: op.value ?? null, createdAt: existing?.createdAt ?? now, updatedAt: now },
              op.description ?? existing?.description,
            ),
          );
          break;
        case "delete":
          if (!existing) {
            return {
              ok: false,
              status: 404,
              code: "not_found",
              message: `Item with key "${op.key}" does not exist`,
            };
          }
          next.delete(op.key);
          break;
      }
    }
    const size = this.sizeInBytes(next);
    if (size > this.#maxSizeBytes) {
      return {
        ok: false,
        status: 400,
        code: "bad_request",
        message: `Edge Config size of ${size} bytes exceeds the limit of ${this.#maxSizeBytes} bytes`,
      };
    }
    this.#commit(next);
    return { ok: true };
  }

  #commit(next: Map<string, StoredItem>): void {
    this.#items = next;
    this.updatedAt = Date.now();
    // Content-addressed, like Vercel's: the same items give the same digest, any change gives a new one.
    this.#digest = createHash("sha256").update(JSON.stringify(this.values())).digest("hex").slice(0, 32);
  }
}

function withDescription(item: StoredItem, description: string | null | undefined): StoredItem {
  if (description === undefined || description === null) {
    const { description: _dropped, ...rest } = item;
    return rest;
  }
  return { ...item, description };
}

function assertValidKey(key: string): void {
  if (!KEY_PATTERN.test(key) || key.length > MAX_KEY_LENGTH) {
    throw new Error(
      `edgeml edge-config-emulator: key "${key}" must match ^[\\w-]+$ and be at most 256 characters`,
    );
  }
}

const jsonValue: z.ZodType<EdgeConfigValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);

const itemOperationSchema = z.object({
  operation: z.enum(["create", "update", "upsert", "delete"]),
  key: z.string().max(MAX_KEY_LENGTH).regex(KEY_PATTERN, { message: 'should match pattern "^[\\w-]+$"' }),
  value: jsonValue.optional(),
  description: z.string().max(MAX_DESCRIPTION_LENGTH).nullable().optional(),
});
type ItemOperation = z.infer<typeof itemOperationSchema>;

const patchBodySchema = z.object({ items: z.array(itemOperationSchema).min(1) });

function mountReadApi(app: Hono, config: { id: string; token: string; store: EdgeConfigStore }): void {
  const { id, token, store } = config;

  /** Checks id, token and version; returns the error response, or undefined when the request may proceed. */
  const guard = (c: Context): Response | undefined => {
    if (c.req.param("id") !== id) {
      return json(
        { error: { code: "edge_config_not_found", message: "Could not find the edge config" } },
        404,
      );
    }
    const given = bearerToken(c.req.raw) ?? c.req.query("token");
    if (given !== token) return json({ error: { code: "unauthorized", message: "Unauthorized" } }, 401);
    const version = c.req.query("version");
    if (version !== undefined && version !== "1") {
      return json({ error: { code: "bad_request", message: `Unsupported version "${version}"` } }, 400);
    }
    return undefined;
  };

  /** 200 with ETag and digest headers, or 304 when the client's If-None-Match is current. */
  const cached = (c: Context, body: unknown): Response => {
    // One ETag per digest: coarser than per item, but never stale, which is all the client's cache needs.
    const etag = `"${store.digest}"`;
    const headers = { etag, "x-edge-config-digest": store.digest };
    if (c.req.header("if-none-match") === etag) return new Response(null, { status: 304, headers });
    return json(body, 200, headers);
  };

  app.on(["GET", "HEAD"], "/:id/item/:key", (c) => {
    const denied = guard(c);
    if (denied) return denied;
    const item = store.get(c.req.param("key"));
    if (!item) {
      return json({ error: { code: "edge_config_item_not_found", message: "Item not found" } }, 404, {
        "x-edge-config-digest": store.digest,
      });
    }
    return cached(c, item.value);
  });

  app.get("/:id/items", (c) => {
    const denied = guard(c);
    if (denied) return denied;
    const keys = c.req.queries("key");
    const all = store.values();
    // Own keys only: a key named like an Object.prototype member (`constructor`) is not an item.
    const body = keys
      ? Object.fromEntries(keys.filter((k) => Object.hasOwn(all, k)).map((k) => [k, all[k]]))
      : all;
    return cached(c, body);
  });

  app.get("/:id/digest", (c) => {
    const denied = guard(c);
    if (denied) return denied;
    return cached(c, store.digest);
  });
}

function mountRestApi(app: Hono, config: { id: string; apiToken: string; store: EdgeConfigStore }): void {
  const { id, apiToken, store } = config;
  const api = new Hono();

  api.use("/:id/*", async (c, next) => {
    if (bearerToken(c.req.raw) !== apiToken) {
      return json({ error: { code: "forbidden", message: "Not authorized", invalidToken: true } }, 403);
    }
    if (c.req.param("id") !== id) {
      return json({ error: { code: "not_found", message: "Could not find the Edge Config" } }, 404);
    }
    await next();
  });

  const itemJson = (key: string, item: StoredItem) => ({
    key,
    value: item.value,
    ...(item.description !== undefined ? { description: item.description } : {}),
    edgeConfigId: id,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  });

  api.get("/:id", () =>
    json({
      id,
      slug: id.replace(/^ecfg_/, ""),
      ownerId: "team_dev",
      digest: store.digest,
      itemCount: store.entries().length,
      sizeInBytes: store.sizeInBytes(),
      createdAt: store.createdAt,
      updatedAt: store.updatedAt,
    }),
  );

  api.get("/:id/items", () => json(store.entries().map(([key, item]) => itemJson(key, item))));

  api.get("/:id/item/:key", (c) => {
    const key = c.req.param("key");
    const item = store.get(key);
    if (!item)
      return json({ error: { code: "not_found", message: `Item with key "${key}" does not exist` } }, 404);
    return json(itemJson(key, item));
  });

  api.patch("/:id/items", async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return json({ error: { code: "bad_request", message: "Invalid request: the body must be JSON" } }, 400);
    }
    const parsed = patchBodySchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue ? issue.path.join(".") : "";
      const message = `Invalid request: \`${path}\` ${issue?.message ?? "is invalid"}.`;
      return json({ error: { code: "bad_request", message } }, 400);
    }
    const missingValue = parsed.data.items.find((op) => op.operation !== "delete" && op.value === undefined);
    if (missingValue) {
      const message = `Invalid request: \`value\` is required for operation "${missingValue.operation}" (key "${missingValue.key}").`;
      return json({ error: { code: "bad_request", message } }, 400);
    }
    const result = store.apply(parsed.data.items);
    if (!result.ok) return json({ error: { code: result.code, message: result.message } }, result.status);
    return json({ status: "ok" });
  });

  app.route("/v1/edge-config", api);
}

function parseSize(value: string): number {
  const size = Number(value);
  if (!Number.isInteger(size) || size <= 0) {
    throw new Error(`--max-size-bytes must be a positive integer (8192: Hobby, 65536: Pro), got "${value}"`);
  }
  return size;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      id: { type: "string" },
      token: { type: "string" },
      "api-token": { type: "string" },
      items: { type: "string" },
      "max-size-bytes": { type: "string" },
    },
  });
  (async () => {
    const items = values.items ? (JSON.parse(values.items) as Record<string, EdgeConfigValue>) : {};
    const emulator = await startEdgeConfigEmulator({
      port: parsePort(values.port),
      items,
      // 8192 (Hobby) or 65536 (Pro) makes the emulator refuse what the real plan would.
      ...(values["max-size-bytes"] ? { maxSizeBytes: parseSize(values["max-size-bytes"]) } : {}),
      ...(values.id ? { id: values.id } : {}),
      ...(values.token ? { token: values.token } : {}),
      ...(values["api-token"] ? { apiToken: values["api-token"] } : {}),
    });
    console.log(`edge-config-emulator listening at ${emulator.url}`);
    console.log(`  EDGE_CONFIG=${emulator.connectionString}`);
    console.log(`  PATCH ${emulator.url}/v1/edge-config/${emulator.id}/items  (Bearer ${emulator.apiToken})`);
    runUntilSignal("edge-config-emulator", () => emulator.close());
  })().catch((error: unknown) => failCli("edge-config-emulator", error));
}
