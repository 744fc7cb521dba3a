import { randomUUID } from "node:crypto";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname } from "node:path";
import lockfile from "proper-lockfile";
import { createAsyncCache } from "../../cache/async-cache.js";
import { EdgeMLError } from "../../errors.js";
import { consoleLogger } from "../../logger.js";
import { type PointerDocument, parsePointerDocument, serialisePointerDocument } from "../pointer-document.js";
import {
  AuditEntrySchema,
  frozenPointers,
  ModelPointersSchema,
  type PointerChange,
  type PointerStore,
} from "../pointers.js";
import { syncDirectory, writeFileDurably } from "./durable-write.js";

/** Defaults of the JSON file pointer store, each with why. */
export const JSON_FILE_POINTER_DEFAULTS = {
  /**
   * Reads are reused this long: reading and parsing the file on every request cost ~45% of an infer request's CPU
   * (docs/benchmarks.md). This process's own writes are seen at once; another process's (the CLI) within the TTL.
   */
  cacheTtlMs: 1_000,
  /**
   * A lock older than this (its holder died without removing it) is taken over. The holder refreshes the lock's
   * mtime every half of it, so only a dead or frozen holder lets it go stale.
   */
  lockStaleMs: 10_000,
  /**
   * How long an update waits for another process's lock before answering 409: a pointer write takes milliseconds,
   * so a wait this long means the other process is stuck, and the client should retry rather than hang.
   */
  lockWaitMs: 5_000,
} as const;

export interface JsonFilePointerStoreOptions {
  cacheTtlMs?: number;
  lockStaleMs?: number;
  lockWaitMs?: number;
  /** Where a lock this process held was found taken over (it froze past `lockStaleMs`); default the console logger. */
  warn?: (message: string) => void;
}

export interface JsonFilePointerStore extends PointerStore {
  /**
   * Forgets the copy of the file kept for `cacheTtlMs`: the next read reads the file. For a process told that another
   * changed it (`npm start`'s workers, src/storage/node/ipc-adapters.ts).
   */
  invalidate(): void;
}

/**
 * Pointers in one JSON file `{ models: { name: pointers }, audit: [...] }`, rewritten whole through a temporary
 * file that is fsync'ed and renamed into place, so a reader never sees half a document, even after a crash.
 *
 * Updates are read-modify-write under two locks: a chain in this process and a lock file (`<file>.lock`, by
 * proper-lockfile: an atomic mkdir, taken over when stale) against other processes, since the CLI and a running
 * server write the same file. An update that cannot get the lock within `lockWaitMs` answers 409 `conflict`.
 *
 * A file that cannot be read (not JSON, not the expected shape, a folder in its place) is never overwritten:
 * reads and updates answer 503 `registry_unavailable` saying what to do, until someone restores or removes it.
 */
export function createJsonFilePointerStore(
  path: string,
  options: JsonFilePointerStoreOptions = {},
): JsonFilePointerStore {
  const cacheTtlMs = options.cacheTtlMs ?? JSON_FILE_POINTER_DEFAULTS.cacheTtlMs;
  const lockStaleMs = options.lockStaleMs ?? JSON_FILE_POINTER_DEFAULTS.lockStaleMs;
  const lockWaitMs = options.lockWaitMs ?? JSON_FILE_POINTER_DEFAULTS.lockWaitMs;
  const warn = options.warn ?? ((message: string) => consoleLogger.warn(message));
  const file = basename(path);
  let writes: Promise<unknown> = Promise.resolve();

  const unreadable = (why: string, cause: unknown) =>
    new EdgeMLError(
      "registry_unavailable",
      `the pointer file (${file}) cannot be read: ${why}. No champion or pin can be resolved until it is restored from a backup or removed (without it each model serves its best version by metric)`,
      { cause },
    );

  const readFresh = async (): Promise<PointerDocument> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { models: new Map(), audit: [] };
      throw unreadable(
        code === "EISDIR" ? "a folder stands in its place" : `the file system answered ${code ?? "an error"}`,
        error,
      );
    }
    try {
      return parsePointerDocument(text);
    } catch (error) {
      throw unreadable(
        error instanceof SyntaxError
          ? "it is not valid JSON (perhaps a write was cut short)"
          : "it is not a pointer document",
        error,
      );
    }
  };

  // Policy: ttl (`cacheTtlMs`), one key. A failed read is an answer kept for the TTL as well: a broken file costs
  // one read per TTL, not one per request.
  const cache = createAsyncCache<"doc", { ok: true; doc: PointerDocument } | { ok: false; error: unknown }>({
    policy: { kind: "ttl", ttlMs: cacheTtlMs },
    max: 1,
    load: () =>
      readFresh().then(
        (doc) => ({ ok: true as const, doc }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
  });

  const read = async (): Promise<PointerDocument> => {
    const outcome = await cache.get("doc");
    if (!outcome.ok) throw outcome.error;
    return outcome.doc;
  };

  const acquire = async (): Promise<() => Promise<void>> => {
    await mkdir(dirname(path), { recursive: true });
    try {
      return await lockfile.lock(path, {
        realpath: false,
        stale: lockStaleMs,
        retries: {
          retries: Math.max(1, Math.ceil(lockWaitMs / 100)),
          minTimeout: 5,
          maxTimeout: 100,
          factor: 1.5,
          randomize: true,
        },
        // The default throws from a timer, which would end the process: a taken-over lock is reported instead.
        onCompromised: (error) =>
          warn(`the lock of ${file} was taken over by another process: ${error.message}`),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ELOCKED") {
        throw new EdgeMLError(
          "conflict",
          `another process (the CLI or another server) is changing the pointers in ${file}; try again`,
          { cause: error },
        );
      }
      throw error;
    }
  };

  const update: PointerStore["update"] = (model, change) => {
    const work = writes.then(async (): Promise<PointerChange> => {
      const release = await acquire();
      try {
        const doc = await readFresh();
        const next = await change(structuredClone(doc.models.get(model) ?? {}));
        const result: PointerChange = {
          pointers: ModelPointersSchema.parse(next.pointers),
          entry: AuditEntrySchema.parse(next.entry),
        };
        doc.models.set(model, result.pointers);
        doc.audit.push(result.entry);
        const temporary = `${path}.${randomUUID()}.tmp`;
        try {
          await writeFileDurably(temporary, serialisePointerDocument(doc));
          await rename(temporary, path);
        } catch (error) {
          await rm(temporary, { force: true });
          throw error;
        }
        await syncDirectory(dirname(path));
        cache.set("doc", { ok: true, doc });
        return structuredClone(result);
      } finally {
        await release().catch(() => {
          // Released already (taken over after a freeze, reported by onCompromised): nothing left to undo.
        });
      }
    });
    writes = work.catch(() => {});
    return work;
  };

  return {
    kind: "json-file",
    invalidate: () => cache.delete("doc"),
    async get(model) {
      return frozenPointers((await read()).models.get(model));
    },
    update,
    async set(model, pointers, entry) {
      await update(model, () => ({ pointers, entry }));
    },
    async history(model) {
      return structuredClone((await readFresh()).audit.filter((entry) => entry.model === model));
    },
  };
}
