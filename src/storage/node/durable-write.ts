import { open } from "node:fs/promises";

/**
 * Writes a file and flushes it to the disk (fsync) before returning: a rename that follows can then never expose a
 * file whose blocks a crash left unwritten (a truncated `metadata.json` or pointer file after a power cut).
 * Hand-written rather than write-file-atomic: callers also fsync the directory after their rename, which that
 * library does not do, and the artifact store renames a whole folder.
 */
export async function writeFileDurably(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, "wx");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a directory's entries (a rename into it) to the disk. Best effort where a platform cannot open folders. */
export async function syncDirectory(path: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, "r");
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Windows cannot open a directory; some file systems refuse fsync on one. The file itself was synced.
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "ENOTSUP") throw error;
  } finally {
    await handle?.close();
  }
}
