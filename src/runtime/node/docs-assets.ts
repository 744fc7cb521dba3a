import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Env, Hono } from "hono";
import { createAsyncCache } from "../../cache/async-cache.js";

/** Where the docs page finds Swagger UI when the Node server serves it: `<base>/swagger-ui-dist/<file>`. */
export const DOCS_ASSETS_BASE = "/docs/assets";

/** The served files and their types. A Map: a plain object would answer `constructor` from Object.prototype. */
const FILES = new Map<string, string>([
  ["swagger-ui.css", "text/css; charset=utf-8"],
  ["swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
]);

/**
 * Serves the two Swagger UI files the docs page loads from the installed swagger-ui-dist, so `/docs` works with no
 * network (the edge runtimes keep the CDN: 1.5 MB of UI has no place in a size-limited function). Only these two
 * files are served, read once and kept in memory.
 */
export function serveDocsAssets<E extends Env>(app: Hono<E>): void {
  const dist = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  // Policy: memo: two files of an installed package, read once; a failed read is not kept, the next request retries.
  const cache = createAsyncCache<string, Buffer>({
    policy: { kind: "memo" },
    max: FILES.size,
    load: (file) => readFile(join(dist, file)),
  });
  app.get(`${DOCS_ASSETS_BASE}/swagger-ui-dist/:file`, async (c) => {
    const file = c.req.param("file");
    const type = FILES.get(file);
    if (!type) return c.notFound();
    return c.body(new Uint8Array(await cache.get(file)), 200, {
      "content-type": type,
      "cache-control": "public, max-age=86400",
    });
  });
}
