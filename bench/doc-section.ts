import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The page every benchmark writes its own section of. */
export const BENCHMARKS_DOC = join(import.meta.dirname, "..", "docs", "benchmarks.md");

/**
 * Replaces the section that starts with the line `heading` (up to the next "## " heading) with `body`, which starts
 * with that heading, keeping the rest of the file; appends it when the file has no such section. The file is read
 * right before writing: another benchmark may have rewritten its own section since this one started.
 */
export async function writeDocSection(heading: string, body: string, doc = BENCHMARKS_DOC): Promise<void> {
  let text: string;
  try {
    text = await readFile(doc, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    text = "# Benchmarks\n\nMeasured numbers, with the command that reproduces each table.\n";
  }
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.trim() === heading);
  const replacement = body.replace(/\n+$/, "").split("\n");
  if (start === -1) {
    await writeFile(doc, `${text.replace(/\n+$/, "")}\n\n${replacement.join("\n")}\n`);
    return;
  }
  const next = lines.findIndex((line, i) => i > start && /^## /.test(line));
  const after = next === -1 ? [] : lines.slice(next);
  const merged = [...lines.slice(0, start), ...replacement, ...(after.length > 0 ? ["", ...after] : [])];
  await writeFile(doc, `${merged.join("\n").replace(/\n+$/, "")}\n`);
}
