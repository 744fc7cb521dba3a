import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import type { Env, Hono } from "hono";
import { createAsyncCache } from "../../cache/async-cache.js";
import { DASHBOARD_PATH } from "../dashboard.js";

/**
 * The dashboard's files, by their path under /dashboard/: the page's sources in public/dashboard/, and uPlot's
 * browser build from the installed package. A Map: a plain object would answer `constructor` from Object.prototype.
 */
export const DASHBOARD_FILES: ReadonlyMap<string, { from: "page" | "uplot"; file: string; type: string }> =
  new Map([
    ["index.html", { from: "page", file: "index.html", type: "text/html; charset=utf-8" }],
    ["dashboard.js", { from: "page", file: "dashboard.js", type: "text/javascript; charset=utf-8" }],
    ["api.js", { from: "page", file: "api.js", type: "text/javascript; charset=utf-8" }],
    ["charts.js", { from: "page", file: "charts.js", type: "text/javascript; charset=utf-8" }],
    ["panels.js", { from: "page", file: "panels.js", type: "text/javascript; charset=utf-8" }],
    ["dashboard.css", { from: "page", file: "dashboard.css", type: "text/css; charset=utf-8" }],
    [
      "vendor/uPlot.esm.js",
      { from: "uplot", file: "dist/uPlot.esm.js", type: "text/javascript; charset=utf-8" },
    ],
    ["vendor/uPlot.min.css", { from: "uplot", file: "dist/uPlot.min.css", type: "text/css; charset=utf-8" }],
  ]);

/** The page's sources in the repository. */
export const DASHBOARD_SOURCE_DIR = resolve(import.meta.dirname, "../../../public/dashboard");

/** Where each dashboard file is read from on this machine, by its path under /dashboard/. */
export function dashboardSources(): Map<string, string> {
  const uplot = dirname(createRequire(import.meta.url).resolve("uplot/package.json"));
  return new Map(
    [...DASHBOARD_FILES].map(([path, { from, file }]) => [
      path,
      join(from === "page" ? DASHBOARD_SOURCE_DIR : uplot, file),
    ]),
  );
}

/**
 * Serves the dashboard on the Node server, offline: `/dashboard` (and `/dashboard/`) is the page, `/dashboard/<file>`
 * the files of DASHBOARD_FILES and nothing else (404), each read once and kept in memory. The page and its modules
 * are revalidated on every load (`no-cache`: a restart with a new page shows it); uPlot is a versioned package.
 */
export function serveDashboard<E extends Env>(app: Hono<E>): void {
  const sources = dashboardSources();
  // Policy: memo: a handful of files of this checkout, read once; a failed read is not kept, the next request retries.
  const cache = createAsyncCache<string, Buffer>({
    policy: { kind: "memo" },
    max: sources.size,
    load: (path) => readFile(sources.get(path) as string),
  });
  const send = async (path: string) => {
    const entry = DASHBOARD_FILES.get(path);
    if (!entry) return null;
    return new Response(new Uint8Array(await cache.get(path)), {
      headers: {
        "content-type": entry.type,
        "cache-control": entry.from === "uplot" ? "public, max-age=86400" : "no-cache",
        "x-content-type-options": "nosniff",
      },
    });
  };
  for (const path of [DASHBOARD_PATH, `${DASHBOARD_PATH}/`]) {
    app.get(path, async (c) => (await send("index.html")) ?? c.notFound());
  }
  app.get(`${DASHBOARD_PATH}/*`, async (c) => {
    const path = c.req.path.slice(DASHBOARD_PATH.length + 1);
    return (await send(path)) ?? c.notFound();
  });
}
