import { z } from "zod";
import { type AuditEntry, AuditEntrySchema, type ModelPointers, ModelPointersSchema } from "./pointers.js";

/**
 * The pointer file's document, `{ models: { name: pointers }, audit: [...] }`: what `models/pointers.json` holds, what
 * `npm run deploy:models` reads and what the edge bundle embeds. Every map keyed by model name is held in a Map, so
 * no name can reach Object.prototype.
 */
export interface PointerDocument {
  models: Map<string, ModelPointers>;
  audit: AuditEntry[];
}

const RawDocumentSchema = z.object({
  models: z.record(z.string(), z.unknown()).optional(),
  audit: z.array(AuditEntrySchema).default([]),
});

/**
 * Validates a parsed document. Model names are read from the value's own keys (JSON.parse makes even `__proto__`
 * an own key; a zod record would drop it), each model's pointers validated on their own. Throws a ZodError.
 */
export function pointerDocumentFrom(raw: unknown): PointerDocument {
  const shape = RawDocumentSchema.parse(raw);
  const models = new Map<string, ModelPointers>();
  const rawModels = (raw as { models?: unknown }).models;
  if (shape.models && rawModels && typeof rawModels === "object") {
    for (const [name, value] of Object.entries(rawModels)) models.set(name, ModelPointersSchema.parse(value));
  }
  return { models, audit: shape.audit };
}

/** Parses the file's text: a SyntaxError when it is not JSON, a ZodError when it is not a pointer document. */
export function parsePointerDocument(text: string): PointerDocument {
  return pointerDocumentFrom(JSON.parse(text));
}

/** The document as JSON data. Object.fromEntries defines own properties: a `__proto__` entry stays data. */
export function pointerDocumentJson(doc: PointerDocument): {
  models: Record<string, ModelPointers>;
  audit: AuditEntry[];
} {
  return { models: Object.fromEntries(doc.models), audit: doc.audit };
}

/** The file's text. */
export function serialisePointerDocument(doc: PointerDocument): string {
  return `${JSON.stringify(pointerDocumentJson(doc), null, 2)}\n`;
}
