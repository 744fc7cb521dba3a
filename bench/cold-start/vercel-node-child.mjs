/**
 * One cold start of the Vercel Node.js function, in a fresh Node process without any loader: imports the function's
 * entry (api/[[...route]].js of a directory laid out as `vercel build` lays it out, see writeNodeFunction) and calls
 * its POST handler with a Request, as Vercel's Node launcher calls a Web handler. Plain JavaScript, so that no
 * TypeScript loader sits in the timed import.
 * Usage: node vercel-node-child.mjs <function dir> <path> <JSON body>
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dir, path, body] = process.argv.slice(2);
const t0 = performance.now();
const fn = await import(pathToFileURL(join(dir, "api/[[...route]].js")).href);
const loadMs = performance.now() - t0;
const t1 = performance.now();
const response = await fn.POST(
  new Request(new URL(path, "http://edgeml.test"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  }),
);
const text = await response.text();
const firstResponseMs = performance.now() - t1;
if (response.status !== 200) throw new Error(`infer answered ${response.status}: ${text}`);
console.log(
  JSON.stringify({ loadMs, firstResponseMs, initHeaderMs: Number(response.headers.get("x-edgeml-init-ms")) }),
);
