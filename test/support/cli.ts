import { buildCli } from "../../src/cli/index.js";

/** The CLI as `npm run cli -- <args>` runs it, in process: answers what it printed; a failure rejects. */
export async function runCli(...args: string[]): Promise<string> {
  const lines: string[] = [];
  await buildCli((text) => lines.push(text))
    .exitOverride()
    .parseAsync(["node", "edgeml", ...args]);
  return lines.join("\n");
}
