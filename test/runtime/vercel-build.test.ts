import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERCEL_ENTRY, vercelEntry } from "../../scripts/build_vercel.js";
import {
  checkVercelOutput,
  NODE_FUNCTION,
  OUTPUT_DIR,
  resolveRoute,
  runVercelBuild,
  SERVING_FUNCTION,
} from "../../scripts/check_vercel_build.js";
import type { RunningEdge } from "../../scripts/edge/runtimes.js";
import { launchNodeFunction } from "../../scripts/vercel/node-launcher.js";
import { fakeYahoo } from "../market/fake-yahoo.js";
import { DATA_AS_OF, MARKET_DATA } from "../support/paths.js";

const committedEntry = () => readFile(VERCEL_ENTRY, "utf8");

/**
 * `vercel build` (vercel@58.10.0) on the repository as a user would deploy it, offline, once per runtime the build
 * offers: the output must hold the serving function on that runtime, a Node function that trains, the cron, and
 * routes that send every path where it belongs. The builds share .vercel/output and api/[[...route]].ts, so they run
 * one after the other, in this one file.
 */
describe("vercel build", () => {
  describe("EDGEML_VERCEL_RUNTIME unset: the Edge Function", () => {
    it("produces the edge function, the Node training function, the cron and the routes", async () => {
      const log = await runVercelBuild();
      expect(log).toMatch(/Build Completed in \.vercel\/output/);
      // No plan named: the build says what the function weighs and which plans take it.
      expect(log).toMatch(/warning: the Vercel Edge Function is \d\.\d\d MiB gzip.*EDGEML_VERCEL_PLAN/);
      expect(await checkVercelOutput(OUTPUT_DIR, "edge")).toEqual([]);
      // The committed entry is the edge one, byte for byte what the build writes: a clone deploys the Edge Function.
      expect(await committedEntry()).toBe(vercelEntry("edge"));
    }, 600_000);
  });

  describe("EDGEML_VERCEL_RUNTIME=nodejs: the same app as a Node.js function", () => {
    let log: string;
    let fn: RunningEdge | undefined;
    beforeAll(async () => {
      log = await runVercelBuild({ env: { EDGEML_VERCEL_RUNTIME: "nodejs" } });
    }, 600_000);
    afterAll(async () => {
      await fn?.close();
    });

    it("produces a Node.js serving function on Node 24 beside the training function, with the same cron and routes", async () => {
      expect(log).toMatch(/Build Completed in \.vercel\/output/);
      expect(log).toMatch(/Vercel runtime: nodejs/);
      expect(await checkVercelOutput(OUTPUT_DIR, "nodejs")).toEqual([]);
      // The edge check refuses it: the two checks tell the runtimes apart.
      expect(await checkVercelOutput(OUTPUT_DIR, "edge")).toContain(
        `${SERVING_FUNCTION} runtime is nodejs24.x, expected edge`,
      );
    });

    it("leaves api/[[...route]].ts as committed: the edge entry", async () => {
      expect(await committedEntry()).toBe(vercelEntry("edge"));
    });

    it("starts in Vercel's Node launcher and serves readiness and a forecast as of the recorded data", async () => {
      const yahoo = fakeYahoo({ dir: MARKET_DATA });
      fn = await launchNodeFunction(
        {
          dir: join(OUTPUT_DIR, "functions", `${SERVING_FUNCTION}.func`),
          entrypoint: `${SERVING_FUNCTION}.js`,
        },
        { outbound: (request) => yahoo.fetch(request) },
      );
      const ready = await fn.fetch("/v2/health/ready");
      expect({ status: ready.status, body: await ready.json() }).toEqual({
        status: 200,
        body: { ready: true },
      });
      expect(Number(ready.headers.get("x-edgeml-init-ms"))).toBeGreaterThan(0);

      const forecast = await fn.fetch("/api/ml/serve", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: DATA_AS_OF }),
      });
      expect(forecast.status).toBe(200);
      const body = await forecast.json();
      expect(body).toMatchObject({ symbol: "BTC", model_name: "BTC-24h", cached: false });
      expect(Number.isFinite(body.predicted_price)).toBe(true);
      expect(forecast.headers.get("x-model-version")).toBe(body.model_version);
    }, 120_000);
  });

  describe("EDGEML_VERCEL_PLAN=hobby with the Edge Function", () => {
    it("stops the build once the bundle is measured, naming the plan's limit and the switch to Node.js", async () => {
      const failure = await runVercelBuild({ env: { EDGEML_VERCEL_PLAN: "hobby" } }).then(
        () => "built",
        (error: Error) => error.message,
      );
      expect(failure).toMatch(/^vercel build exited with [1-9]/);
      expect(failure).toMatch(
        /the Vercel Edge Function is \d\.\d\d MiB gzip .*over the 1\.00 MiB limit for Edge Functions on Vercel's Hobby plan/,
      );
      expect(failure).toMatch(/Set EDGEML_VERCEL_RUNTIME=nodejs/);
      // It stopped before writing the bundle's deployment: nothing was built.
      expect(failure).not.toMatch(/Build Completed/);
      expect(failure).not.toMatch(/static: dist\/static/);
      expect(await committedEntry()).toBe(vercelEntry("edge"));
    }, 600_000);
  });

  describe("resolveRoute (how the check follows config.json)", () => {
    const functions = new Set([SERVING_FUNCTION, NODE_FUNCTION]);
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
      ["/v2/health/live", SERVING_FUNCTION],
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
      // Without the rewrite, /dashboard (a folder, not a file) would reach the serving function.
      expect(resolveRoute(routes, functions, "/dashboard", statics).function).toBe(SERVING_FUNCTION);
      expect(resolveRoute(withDashboard, functions, "/dashboard/app.js", statics).function).toBe(
        SERVING_FUNCTION,
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
