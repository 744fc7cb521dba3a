/**
 * A `.wasm` imported as a precompiled module: `?module` on Vercel Edge (and with wrangler), a CompiledWasm
 * module rule on workerd. The platform compiles it at deploy time; the code receives a WebAssembly.Module.
 */
declare module "*.wasm?module" {
  const module: WebAssembly.Module;
  export default module;
}
