import type { Metafile } from "esbuild";
import { describe, expect, it } from "vitest";
import { bundleEdge } from "../../scripts/edge/bundle.js";
import { DEFAULT_MODELS_DIR, readRegistryDir } from "../../scripts/edge/embed.js";
import { packageOf, packageSizes } from "../../scripts/edge_size.js";

/** `npm run size:edge` breaks the code down per package from esbuild's metafile. */
describe("the size report's per-package breakdown", () => {
  it.each([
    ["node_modules/zod/v4/core/schemas.js", "zod"],
    ["node_modules/@upstash/redis/chunk-abc.mjs", "@upstash/redis"],
    ["node_modules/tough-cookie/node_modules/tldts/dist/index.js", "tldts"],
    ["src/registry/resolution.ts", "src/registry"],
    ["src/app.ts", "src/*.ts"],
    ["edgeml-embedded-registry:edgeml:embedded-registry", "(the embedded models/)"],
    ["node-stub:node:url", "(node stubs)"],
  ])("%s belongs to %s", (input, name) => {
    expect(packageOf(input)).toBe(name);
  });

  it("sums each package's bytes in the output, largest first, and leaves out what contributes nothing", () => {
    const inputs = (entries: Record<string, number>) =>
      Object.fromEntries(Object.entries(entries).map(([path, bytesInOutput]) => [path, { bytesInOutput }]));
    const metafile = {
      inputs: {},
      outputs: {
        "edge.js": {
          bytes: 0,
          imports: [],
          exports: [],
          entryPoint: "src/runtime/vercel/edge.ts",
          inputs: inputs({
            "node_modules/hono/dist/a.js": 300,
            "node_modules/hono/dist/b.js": 200,
            "node_modules/zod/index.js": 400,
            "src/routes/oip.ts": 100,
            "node_modules/unused/index.js": 0,
          }),
        },
      },
    } as unknown as Metafile;
    expect(packageSizes(metafile)).toEqual([
      { name: "hono", bytes: 500 },
      { name: "zod", bytes: 400 },
      { name: "src/routes", bytes: 100 },
    ]);
  });
});

describe("what the edge bundle leaves out of serving", () => {
  let metafile: Metafile | undefined;
  const bundled = async (): Promise<Metafile> => {
    if (!metafile) {
      const registry = await readRegistryDir(DEFAULT_MODELS_DIR);
      await bundleEdge("vercel", { registry, onMetafile: (m) => (metafile = m) });
    }
    if (!metafile) throw new Error("no metafile");
    return metafile;
  };

  it("has no trainer: the edge wiring passes none, so no module of src/training but its error type is bundled", async () => {
    const training = Object.keys((await bundled()).inputs).filter((input) =>
      input.startsWith("src/training/"),
    );
    expect(training).toEqual(["src/training/errors.ts"]);
  }, 120_000);

  it("reaches onnx-proto only through a dynamic import (registration): serving never evaluates it at start", async () => {
    const imports = Object.entries((await bundled()).inputs).flatMap(([from, input]) =>
      input.imports
        .filter((i) => i.path.includes("node_modules/onnx-proto/"))
        .map((i) => `${from} ${i.kind}`),
    );
    expect(imports).toEqual(["src/inference/onnx-model.ts dynamic-import"]);
  }, 120_000);
});
