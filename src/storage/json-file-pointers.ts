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
 * file and rename(2), so a reader never sees half a document. Writes in one process are serialised; the file is read
 * on every `get` so a CLI's change is seen by a running server at once.
 */
export function createJsonFilePointerStore(path: string): PointerStore {
  let writes: Promise<unknown> = Promise.resolve();

  const read = async (): Promise<PointerDocument> => {
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
      return (await read()).models[model] ?? {};
    },
    set(model, pointers, entry) {
      const write = writes.then(async () => {
        const doc = await read();
        doc.models[model] = pointers;
        doc.audit.push(entry);
        await mkdir(dirname(path), { recursive: true });
        const temporary = `${path}.${randomUUID()}.tmp`;
        await writeFile(temporary, `${JSON.stringify(doc, null, 2)}\n`);
        await rename(temporary, path);
      });
      writes = write.catch(() => {});
      return write;
    },
    async history(model) {
      return (await read()).audit.filter((entry) => entry.model === model);
    },
  };
}
