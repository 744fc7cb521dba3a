// How `npm start` runs the TypeScript server: `node --import ./scripts/node-ts.mjs src/runtime/node/server.ts`.
//
// Why not tsx, which runs everything else here (scripts, benchmarks' helpers): tsx transforms with esbuild's
// `keepNames` forced on, which wraps every function and closure the code creates in a `__name(fn, "name")` call (an
// Object.defineProperty at run time). On the request path that is measured: 4.4% of an OIP infer request's server
// CPU in a V8 profile under load, plus `set name` inside it (`npm run bench -- --only http --profile DIR`), for
// nothing a server needs, since a transform that renames nothing keeps every name anyway. Node's own type stripping
// cannot run this code (parameter properties, `.js` specifiers naming `.ts` files). So: the same esbuild transform
// per file, without keepNames, with inline source maps so stack traces name the TypeScript lines; and `./x.js` from
// a `.ts` file resolved to `./x.ts` when no `.js` is there, as TypeScript's bundler resolution does.
//
// Node's synchronous module hooks (module.registerHooks) need Node >= 22.15; on an older Node this falls back to tsx.
import { existsSync, readFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";

if (typeof nodeModule.registerHooks !== "function") {
  const { register } = await import("tsx/esm/api");
  register();
} else {
  process.setSourceMapsEnabled(true);
  nodeModule.registerHooks({
    resolve(specifier, context, next) {
      const parent = context.parentURL;
      if (parent?.startsWith("file:") && parent.endsWith(".ts") && /^\.{1,2}\/.*\.js$/.test(specifier)) {
        const asJs = new URL(specifier, parent);
        if (!existsSync(fileURLToPath(asJs))) {
          const asTs = new URL(`${specifier.slice(0, -3)}.ts`, parent);
          if (existsSync(fileURLToPath(asTs))) return next(asTs.href, context);
        }
      }
      return next(specifier, context);
    },
    load(url, context, next) {
      if (!url.startsWith("file:") || !url.endsWith(".ts")) return next(url, context);
      const file = fileURLToPath(url);
      const { code } = transformSync(readFileSync(file, "utf8"), {
        loader: "ts",
        format: "esm",
        target: "node22",
        sourcemap: "inline",
        sourcefile: file,
        // tsconfig.json's settings that change emitted code.
        tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, target: "ES2023" } },
      });
      return { format: "module", source: code, shortCircuit: true };
    },
  });
}
