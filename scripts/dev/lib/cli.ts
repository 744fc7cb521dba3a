import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** True when the module at `importMetaUrl` is the script node was started with (`npx tsx scripts/dev/x.ts`). */
export function isMain(importMetaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(importMetaUrl));
  } catch {
    return false;
  }
}

/** `--port N` as a TCP port; absent means 0, i.e. let the OS pick a free one. */
export function parsePort(value: string | undefined): number {
  if (value === undefined) return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`--port must be an integer between 0 and 65535, got "${value}"`);
  }
  return port;
}

/**
 * Keeps a started tool running in the foreground until Ctrl-C (or SIGTERM), then closes it, so a developer's
 * terminal never leaves an orphan redis-server or listener behind.
 */
export function runUntilSignal(name: string, close: () => Promise<void>): void {
  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    console.error(`${name}: ${signal}, shutting down`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`${name}: error while shutting down`, error);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

/** Prints the error without a stack for the errors we raise on purpose, and exits non-zero. */
export function failCli(name: string, error: unknown): never {
  console.error(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
