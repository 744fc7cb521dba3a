import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * Size limits that keep the code readable as it grows: no function in src/ over 150 lines, no file in
 * src/registry/ over 250 (the registry was one 361-line closure before it was split by concern).
 */
const SRC = join(import.meta.dirname, "../../src");
const MAX_FUNCTION_LINES = 150;
const MAX_REGISTRY_FILE_LINES = 250;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Every function-like node of a file with its line count (a factory's closure counts as one function). */
function functionsOf(file: string): { name: string; lines: number }[] {
  const text = readFileSync(file, "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: { name: string; lines: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const named = (node as ts.FunctionLikeDeclaration).name?.getText(source);
      const parent = node.parent;
      const name =
        named ??
        (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)
          ? parent.name.getText(source)
          : "(anonymous)");
      found.push({ name: `${relative(SRC, file)}:${start + 1} ${name}`, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe("code size limits", () => {
  const files = sourceFiles(SRC);

  it(`no function in src/ is over ${MAX_FUNCTION_LINES} lines`, () => {
    const long = files.flatMap(functionsOf).filter((f) => f.lines > MAX_FUNCTION_LINES);
    expect(long.map((f) => `${f.name} (${f.lines} lines)`)).toEqual([]);
  });

  it(`no file in src/registry/ is over ${MAX_REGISTRY_FILE_LINES} lines`, () => {
    const long = files
      .filter((file) => relative(SRC, file).startsWith("registry"))
      .map((file) => ({ file: relative(SRC, file), lines: readFileSync(file, "utf8").split("\n").length }))
      .filter((f) => f.lines > MAX_REGISTRY_FILE_LINES);
    expect(long).toEqual([]);
  });

  it("the function walker sees a long function (so the limit can fail)", () => {
    const body = Array.from({ length: 200 }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const file = join(import.meta.dirname, "__probe__.ts");
    const source = ts.createSourceFile(
      file,
      `export function big() {\n${body}\n}\n`,
      ts.ScriptTarget.Latest,
      true,
    );
    let lines = 0;
    ts.forEachChild(source, (node) => {
      if (ts.isFunctionDeclaration(node)) {
        lines =
          source.getLineAndCharacterOfPosition(node.getEnd()).line -
          source.getLineAndCharacterOfPosition(node.getStart()).line +
          1;
      }
    });
    expect(lines).toBe(202);
  });
});
