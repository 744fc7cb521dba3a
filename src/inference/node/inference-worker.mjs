// Entry of the inference worker thread. The worker's code is TypeScript, and a worker thread does not always inherit
// a TypeScript loader: `npm start` (tsx) passes its loader on through execArgv, vitest's module runner does not. So
// the thread registers tsx's ESM loader itself (a second registration under tsx is harmless) and then imports it.
import { register } from "tsx/esm/api";

register();
await import("./inference-worker.ts");
