import { CliError } from "../src/cli/client.js";
import { buildCli } from "../src/cli/index.js";

/** `npm run cli -- <command>`: see `npm run cli -- --help`. */
try {
  await buildCli().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CliError || (error instanceof Error && error.message.startsWith("edgeml:"))) {
    console.error(`error: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
