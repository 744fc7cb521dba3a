import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeStaticOutput } from "../../scripts/edge/static.js";
import { createApp } from "../../src/app.js";
import {
  DASHBOARD_FILES,
  DASHBOARD_SOURCE_DIR,
  dashboardSources,
  serveDashboard,
} from "../../src/runtime/node/dashboard-assets.js";
import { testApp } from "../support/app.js";
import { tempDir } from "../support/paths.js";

/** The dashboard's files: served by the Node server offline, and copied as they are into the static output. */
async function withDashboard<T>(
  run: (request: (path: string) => Promise<Response>) => Promise<T>,
): Promise<T> {
  const t = await testApp();
  try {
    const { app } = createApp(t.deps);
    serveDashboard(app);
    return await run(async (path) => app.request(path));
  } finally {
    await t.cleanup();
  }
}

const pageFiles = async () =>
  (await readdir(DASHBOARD_SOURCE_DIR, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(DASHBOARD_SOURCE_DIR.length + 1))
    .sort();

describe("the dashboard's files", () => {
  it("are every file of public/dashboard/ and uPlot's browser build, nothing else", async () => {
    const fromPage = [...DASHBOARD_FILES].filter(([, f]) => f.from === "page").map(([path]) => path);
    expect(fromPage.sort()).toEqual(await pageFiles());
    expect([...DASHBOARD_FILES.keys()].filter((p) => p.startsWith("vendor/")).sort()).toEqual([
      "vendor/uPlot.esm.js",
      "vendor/uPlot.min.css",
    ]);
  });

  // Offline: the page names no other host, and every file it loads (HTML references, module imports) is served.
  it("load nothing the server does not serve", async () => {
    const served = new Set([...DASHBOARD_FILES.keys()].map((p) => `/dashboard/${p}`));
    const sources = dashboardSources();
    for (const path of DASHBOARD_FILES.keys()) {
      if (path.startsWith("vendor/")) continue;
      const text = await readFile(sources.get(path) as string, "utf8");
      expect(text, path).not.toMatch(/https?:\/\//);
      const references = [
        ...text.matchAll(/(?:href|src)="(\/[^"]+)"/g),
        ...text.matchAll(/"uplot":\s*"(\/[^"]+)"/g),
      ].map((m) => m[1]);
      const imports = [...text.matchAll(/from "\.\/([^"]+)"/g)].map((m) => `/dashboard/${m[1]}`);
      for (const ref of [...references, ...imports]) expect(served, `${path} loads ${ref}`).toContain(ref);
    }
  });
});

describe("the dashboard on the Node server", () => {
  it.each(["/dashboard", "/dashboard/", "/dashboard/index.html"])("%s is the page", async (path) => {
    await withDashboard(async (request) => {
      const response = await request(path);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await response.text()).toContain('<script type="module" src="/dashboard/dashboard.js">');
    });
  });

  it("serves each file with its type, the page's revalidated on every load", async () => {
    await withDashboard(async (request) => {
      const sources = dashboardSources();
      for (const [path, { type, from }] of DASHBOARD_FILES) {
        const response = await request(`/dashboard/${path}`);
        expect(response.status, path).toBe(200);
        expect(response.headers.get("content-type")).toBe(type);
        expect(response.headers.get("cache-control")).toBe(
          from === "page" ? "no-cache" : "public, max-age=86400",
        );
        expect(Buffer.from(await response.arrayBuffer())).toEqual(
          await readFile(sources.get(path) as string),
        );
      }
    });
  });

  // Object.prototype members too: a lookup that read inherited keys would answer `constructor` with a 500.
  it.each([
    "package.json",
    "..%2F..%2Fpackage.json",
    "vendor%2F..%2F..%2F..%2Fpackage.json",
    "vendor/uPlot.cjs.js",
    "vendor/",
    "constructor",
    "__proto__",
    "toString",
    "hasOwnProperty",
  ])("serves nothing else (%s → 404)", async (file) => {
    await withDashboard(async (request) => {
      expect((await request(`/dashboard/${file}`)).status).toBe(404);
    });
  });
});

describe("the static output (npm run build:edge → dist/static, what Vercel publishes)", () => {
  it("holds robots.txt and the dashboard's files as they are, and nothing from an earlier build", async () => {
    const dir = await tempDir();
    try {
      await writeStaticOutput(dir.path);
      await writeFile(join(dir.path, "dashboard", "stale.js"), "left from an earlier build");
      const written = await writeStaticOutput(dir.path);
      const files = (await readdir(dir.path, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(dir.path.length + 1))
        .sort();
      expect(files).toEqual([...written].sort());
      expect(files).toEqual(
        ["robots.txt", ...[...DASHBOARD_FILES.keys()].map((p) => `dashboard/${p}`)].sort(),
      );
      const sources = dashboardSources();
      for (const path of DASHBOARD_FILES.keys()) {
        expect(await readFile(join(dir.path, "dashboard", path))).toEqual(
          await readFile(sources.get(path) as string),
        );
      }
    } finally {
      await dir.cleanup();
    }
  });
});
