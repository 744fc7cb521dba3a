import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { DASHBOARD_PATH } from "../../src/runtime/dashboard.js";
import { dashboardSources } from "../../src/runtime/node/dashboard-assets.js";

/** Tells crawlers to stay away: the deployment is an API and its dashboard. */
const ROBOTS = "User-agent: *\nDisallow: /\n";

/**
 * Writes the deployment's static output into `dir` (dist/static/, vercel.json's outputDirectory): robots.txt and the
 * dashboard's files under dashboard/, and nothing else (a file left from an earlier build of the dashboard is
 * removed). Answers the files written, relative to `dir`.
 */
export async function writeStaticOutput(dir: string): Promise<string[]> {
  const dashboardDir = join(dir, DASHBOARD_PATH);
  await rm(dashboardDir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "robots.txt"), ROBOTS);
  const written = ["robots.txt"];
  for (const [path, source] of dashboardSources()) {
    const target = join(dashboardDir, path);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(source, target);
    written.push(`${DASHBOARD_PATH.slice(1)}/${path}`);
  }
  return written;
}
