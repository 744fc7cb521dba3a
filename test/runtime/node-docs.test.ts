import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.js";
import { DOCS_ASSETS_BASE, serveDocsAssets } from "../../src/runtime/node/docs-assets.js";
import { testApp } from "../support/app.js";

/** The Node server's docs page works offline: Swagger UI comes from the installed swagger-ui-dist. */
describe("docs page on the Node server", () => {
  it("points at assets the server itself serves, and serves them", async () => {
    const t = await testApp();
    try {
      const { app } = createApp({ ...t.deps, docsAssetsUrl: DOCS_ASSETS_BASE });
      serveDocsAssets(app);
      const page = await (await app.request("/docs")).text();
      expect(page).toContain(`${DOCS_ASSETS_BASE}/swagger-ui-dist/swagger-ui-bundle.js`);
      expect(page).not.toContain("cdn.jsdelivr.net");
      const js = await app.request(`${DOCS_ASSETS_BASE}/swagger-ui-dist/swagger-ui-bundle.js`);
      expect(js.status).toBe(200);
      expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
      expect((await js.text()).length).toBeGreaterThan(100_000);
      const css = await app.request(`${DOCS_ASSETS_BASE}/swagger-ui-dist/swagger-ui.css`);
      expect(css.headers.get("content-type")).toMatch(/^text\/css/);
    } finally {
      await t.cleanup();
    }
  });

  // Object.prototype members too: a lookup that read inherited keys answered `constructor` with a 500.
  it.each([
    "package.json",
    "..%2F..%2Fpackage.json",
    "index.html",
    "constructor",
    "toString",
    "__proto__",
    "hasOwnProperty",
  ])("serves nothing else (%s → 404)", async (file) => {
    const t = await testApp();
    try {
      const { app } = createApp({ ...t.deps, docsAssetsUrl: DOCS_ASSETS_BASE });
      serveDocsAssets(app);
      expect((await app.request(`${DOCS_ASSETS_BASE}/swagger-ui-dist/${file}`)).status).toBe(404);
    } finally {
      await t.cleanup();
    }
  });

  it("elsewhere the page loads Swagger UI from the CDN", async () => {
    const t = await testApp();
    try {
      expect(await (await t.request("/docs")).text()).toContain("cdn.jsdelivr.net/npm/swagger-ui-dist");
    } finally {
      await t.cleanup();
    }
  });
});
