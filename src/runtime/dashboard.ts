import type { Env, Hono } from "hono";

/**
 * The dashboard (public/dashboard/) is static files: HTML, ES modules and CSS that read the public API from the
 * browser, with uPlot from node_modules. `npm start` serves them itself (src/runtime/node/dashboard-assets.ts);
 * `npm run build:edge` copies them into the static output (dist/static/dashboard/), which Vercel publishes beside the
 * edge function (vercel.json rewrites /dashboard to its index.html) and Cloudflare as the Worker's assets, so not a
 * byte of them counts against the edge function's code budget.
 */
export const DASHBOARD_PATH = "/dashboard";
/** The page's own address in the static output: what a platform publishing dist/static serves. */
export const DASHBOARD_INDEX = `${DASHBOARD_PATH}/index.html`;

/**
 * On the edge runtimes the function holds none of the files: a request for /dashboard that reaches it (a deployment
 * whose platform did not answer it from the static output first) is sent to the page's static path.
 */
export function redirectToStaticDashboard<E extends Env>(app: Hono<E>): void {
  for (const path of [DASHBOARD_PATH, `${DASHBOARD_PATH}/`]) {
    app.get(path, (c) => c.redirect(DASHBOARD_INDEX, 302));
  }
}
