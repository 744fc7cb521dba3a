import { describe, expect, it } from "vitest";
import {
  checkVercelOutput,
  EDGE_FUNCTION,
  NODE_FUNCTION,
  resolveRoute,
  runVercelBuild,
} from "../../scripts/check_vercel_build.js";

/**
 * `vercel build` (vercel@58.10.0) on the repository as a user would deploy it, offline: the output must hold an edge
 * function that serves, a Node function that trains, the cron, and routes that send every path where it belongs.
 */
describe("vercel build", () => {
  it("produces the edge function, the Node training function, the cron and the routes", async () => {
    const log = await runVercelBuild();
    expect(log).toMatch(/Build Completed in \.vercel\/output/);
    expect(await checkVercelOutput()).toEqual([]);
  }, 300_000);

  describe("resolveRoute (how the check follows config.json)", () => {
    const functions = new Set([EDGE_FUNCTION, NODE_FUNCTION]);
    const routes = [
      { src: "^(?:/(.*))$", headers: { "cache-control": "no-store" }, continue: true },
      { handle: "filesystem" },
      { src: "^/api/ml/train$", dest: "/api/train", check: true },
      { src: "^(?:/(.*))$", dest: "/api/[[...route]]", check: true },
      { src: "^/api(/.*)?$", status: 404 },
    ];
    it.each([
      ["/api/train", NODE_FUNCTION],
      ["/api/ml/train", NODE_FUNCTION],
      ["/v2/health/live", EDGE_FUNCTION],
    ])("%s → %s", (path, fn) => {
      expect(resolveRoute(routes, functions, path)).toEqual({
        function: fn,
        headers: { "cache-control": "no-store" },
      });
    });
    it("a static file answers before any function, directly or through a rewrite with check", () => {
      const statics = new Set(["dashboard/index.html", "dashboard/vendor/uPlot.esm.js"]);
      const withDashboard = [
        ...routes.slice(0, 3),
        { src: "^/dashboard$", dest: "/dashboard/index.html", check: true },
        ...routes.slice(3),
      ];
      for (const [path, file] of [
        ["/dashboard", "dashboard/index.html"],
        ["/dashboard/index.html", "dashboard/index.html"],
        ["/dashboard/vendor/uPlot.esm.js", "dashboard/vendor/uPlot.esm.js"],
      ]) {
        expect(resolveRoute(withDashboard, functions, path as string, statics)).toEqual({
          static: file,
          headers: { "cache-control": "no-store" },
        });
      }
      // Without the rewrite, /dashboard (a folder, not a file) would reach the edge function.
      expect(resolveRoute(routes, functions, "/dashboard", statics).function).toBe(EDGE_FUNCTION);
      expect(resolveRoute(withDashboard, functions, "/dashboard/app.js", statics).function).toBe(
        EDGE_FUNCTION,
      );
    });

    it("a path no rewrite catches falls to the status route", () => {
      expect(
        resolveRoute(
          routes.filter((r) => r.dest !== "/api/[[...route]]"),
          functions,
          "/api/x",
        ),
      ).toMatchObject({
        status: 404,
      });
    });
  });
});
