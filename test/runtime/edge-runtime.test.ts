import { expect, it } from "vitest";
import { startEdgeRuntime } from "../../scripts/edge/runtimes.js";
import { describeEdgeRuntime } from "./support/api-suite.js";

/**
 * Vercel Edge: the bundle of api/[[...route]].ts in Vercel's edge-runtime with code generation from strings and wasm
 * disallowed, as in production, wrapped the way Vercel runs edge functions.
 */
describeEdgeRuntime(
  "Vercel Edge (edge-runtime, strict code generation)",
  "vercel",
  startEdgeRuntime,
  (context) => {
    it("runs in a sandbox that refuses to compile code or wasm from bytes", async () => {
      const { edge } = context();
      const probe = await edge.evaluate?.(`(async () => {
      const refused = [];
      try { new Function("return 1")(); } catch (e) { refused.push("Function: " + e.message); }
      try { await WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])); } catch (e) { refused.push("wasm: " + e.message); }
      return refused;
    })()`);
      expect(probe).toEqual([
        expect.stringMatching(/^Function: Code generation from strings disallowed/),
        expect.stringMatching(/^wasm: .*Wasm code generation disallowed by embedder/),
      ]);
    });
  },
);
