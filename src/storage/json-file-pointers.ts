import { randomUUID } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { EdgeMLError } from "../errors.js";
import { AuditEntrySchema, ModelPointersSchema, type PointerStore } from "./pointers.js";

const DocumentSchema = z.object({
  models: z.record(z.string(), ModelPointersSchema).default({}),
  audit: z.array(AuditEntrySchema).default([]),
});
type PointerDocument = z.infer<typeof DocumentSchema>;

/**
 * Pointers in one JSON file `{ models: { name: pointers }, audit: [...] }`, rewritten whole through a temporary
 * file and rename(2), so a reader never sees half a document. Writes in one process are serialised.
 *
 * Reads are cached for `cacheTtlMs` (default 1 s): reading and parsing the file on every request cost ~45% of an
 * infer request's CPU (docs/benchmarks.md). This process's own writes are seen at once; another process's (the CLI
 * changing a running server's pointers) within the TTL.
 */
export function createJsonFilePointerStore(
  path: string,
  options: { cacheTtlMs?: number } = {},
): PointerStore {
  const cacheTtlMs = options.cacheTtlMs ?? 1_000;
  let writes: Promise<unknown> = Promise.resolve();
  let cached: { at: number; doc: Promise<PointerDocument> } | undefined;

  const read = (): Promise<PointerDocument> => {
    if (cached && Date.now() - cached.at < cacheTtlMs) return cached.doc;
    const doc = readFresh();
    cached = { at: Date.now(), doc };
    // A failed read is not cached: the next call tries the file again.
    doc.catch(() => {
      if (cached?.doc === doc) cached = undefined;
    });
    return doc;
  };

  const readFresh = async (): Promise<PointerDocument> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { models: {}, audit: [] };
      throw error;
    }
    const parsed = DocumentSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new EdgeMLError(
        "internal",
        `the pointer file ${path} is not valid: ${parsed.error.message}; fix or delete it`,
      );
    }
    return parsed.data;
  };

  return {
    kind: "json-file",
    async get(model) {
      return structuredClone((await read()).models[model] ?? {});
    },
    set(model, pointers, entry) {
      const write = writes.then(async () => {
        const doc = await readFresh();
        doc.models[model] = pointers;
        doc.audit.push(entry);
        await mkdir(dirname(path), { recursive: true });
        const temporary = `${path}.${randomUUID()}.tmp`;
        await writeFile(temporary, `${JSON.stringify(doc, null, 2)}\n`);
        await rename(temporary, path);
        cached = { at: Date.now(), doc: Promise.resolve(doc) };
      });
      writes = write.catch(() => {});
      return write;
    },
    async history(model) {
      return structuredClone((await readFresh()).audit.filter((entry) => entry.model === model));
    },
  };
}
