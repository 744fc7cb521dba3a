/**
 * Guards around onnxruntime-web's wasm glue, installed while the runtime is brought up in a thread:
 *
 * - **Output sizes before the copy.** onnxruntime-web 1.30 copies every output from the wasm heap into a new JS
 *   typed array inside `session.run()`, before the caller sees a tensor, so a check on the returned tensors comes
 *   after the copy (a [30000, 30000] float32 output is 3.6 GB in wasm, then 3.6 GB more in JS). The glue reads each
 *   output's type and dims through the module's `_OrtGetTensorData`; we wrap that function and, for an output over
 *   the armed limit, report its dims as [0], so onnxruntime copies nothing and releases the tensor as usual, and
 *   the run that armed the guard refuses the result with the real size.
 * - **A ceiling on the wasm memory** (worker threads only). The threaded build creates its shared
 *   `WebAssembly.Memory` in JS with a 4 GiB maximum; a smaller maximum makes an allocation past it fail inside
 *   onnxruntime as `std::bad_alloc`, which it returns as a run error and after which the session still serves.
 *
 * Both lean on the glue's internals (the exported function's name, the memory's construction), as the edge loader
 * does. If an onnxruntime-web upgrade moves them, test/inference/engine.test.ts ("output size limit") and the
 * worker's 413 in test/inference/isolated-engine.test.ts fail. Without the hooks the engine still checks outputs
 * after the run; it just cannot avoid the copy.
 */

/** ONNX TensorProto element types → bytes per element (strings count their pointer; 4-bit types round up). */
const ELEMENT_BYTES: Record<number, number> = {
  1: 4, // float
  2: 1, // uint8
  3: 1, // int8
  4: 2, // uint16
  5: 2, // int16
  6: 4, // int32
  7: 8, // int64
  8: 4, // string (pointer; the characters are on top)
  9: 1, // bool
  10: 2, // float16
  11: 8, // double
  12: 4, // uint32
  13: 8, // uint64
  16: 2, // bfloat16
  21: 1, // uint4
  22: 1, // int4
};
/** Unknown element types are counted at the widest, so the check errs on the side of refusing. */
const WIDEST_ELEMENT = 8;

export const ONNX_TYPE_NAMES: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  16: "bfloat16",
};

/** An output the guard kept in wasm: its real shape and size. */
export interface RefusedOutput {
  dims: number[];
  type: string;
  bytes: number;
}

/** Bytes of a tensor of `dims` with `bytesPerElement`, as a float (never overflows into a wrong small number). */
export const tensorBytes = (dims: readonly number[], bytesPerElement: number) =>
  dims.reduce((n, d) => n * Math.max(0, d), 1) * bytesPerElement;

interface EmscriptenModule {
  getValue(ptr: number, type: string): number | bigint;
  setValue(ptr: number, value: number, type: string): void;
  PTR_SIZE?: number;
}

type GetTensorData = (
  tensor: number,
  typeOut: number,
  dataOut: number,
  dimsOut: number,
  dimsLengthOut: number,
) => number;

const HOOKED = "_OrtGetTensorData";
const PAGE = 65_536;

let installed = false;
let hooked = false;
let memory: WebAssembly.Memory | undefined;
let armedLimit: number | null = null;
let refused: RefusedOutput[] = [];

function guarded(original: GetTensorData, module: EmscriptenModule): GetTensorData {
  return (tensor, typeOut, dataOut, dimsOut, dimsLengthOut) => {
    const status = original(tensor, typeOut, dataOut, dimsOut, dimsLengthOut);
    if (status !== 0 || armedLimit === null) return status;
    const ptrSize = module.PTR_SIZE ?? 4;
    const valueType = ptrSize === 4 ? "i32" : "i64";
    const type = Number(module.getValue(typeOut, valueType));
    const dimsOffset = Number(module.getValue(dimsOut, "*"));
    const rank = Number(module.getValue(dimsLengthOut, valueType));
    const dims: number[] = [];
    for (let i = 0; i < rank; i++) dims.push(Number(module.getValue(dimsOffset + i * ptrSize, valueType)));
    const bytes = tensorBytes(dims, ELEMENT_BYTES[type] ?? WIDEST_ELEMENT);
    if (rank > 0 && bytes > armedLimit) {
      refused.push({ dims, type: ONNX_TYPE_NAMES[type] ?? `type ${type}`, bytes });
      // One dimension of 0: the glue allocates an empty array and copies nothing; it still frees dims and tensor.
      module.setValue(dimsLengthOut, 1, valueType);
      module.setValue(dimsOffset, 0, valueType);
    }
    return status;
  };
}

/**
 * Runs `bringUp` (which must create onnxruntime's first session in this thread) with the hooks in place, then
 * removes the hooks' traps. `memoryLimitBytes` caps the wasm memory (worker threads; the main thread leaves it).
 * Only the first call in a thread installs anything: onnxruntime instantiates its wasm once per thread.
 */
export async function withWasmGuards<T>(
  options: { memoryLimitBytes?: number },
  bringUp: () => Promise<T>,
): Promise<T> {
  if (installed) return bringUp();
  installed = true;
  const OriginalMemory = WebAssembly.Memory;
  const limitPages = options.memoryLimitBytes
    ? Math.max(1, Math.floor(options.memoryLimitBytes / PAGE))
    : null;
  const cap = (descriptor: WebAssembly.MemoryDescriptor): WebAssembly.MemoryDescriptor =>
    limitPages !== null && descriptor.maximum !== undefined && descriptor.maximum > limitPages
      ? { ...descriptor, maximum: limitPages, initial: Math.min(descriptor.initial, limitPages) }
      : descriptor;
  // A subclass, so `instanceof WebAssembly.Memory` still holds for what the glue creates.
  class CappedMemory extends OriginalMemory {
    constructor(descriptor: WebAssembly.MemoryDescriptor) {
      super(cap(descriptor));
      // The glue's first Memory is a zero-page probe for the SharedArrayBuffer constructor; the heap has pages.
      if (descriptor.shared && (descriptor.maximum ?? 0) > 0) memory = this;
    }
  }
  // The glue assigns `Module._OrtGetTensorData = exports.<minified>` on the module object onnxruntime passes it;
  // a setter on Object.prototype sees that assignment (the module object does not own the property yet) and puts
  // the guarded function on the module instead. A realm with frozen intrinsics refuses both traps: then outputs are
  // checked after the copy only, and the memory keeps onnxruntime's own ceiling.
  let trapped = false;
  try {
    Object.defineProperty(Object.prototype, HOOKED, {
      configurable: true,
      set(this: EmscriptenModule, original: GetTensorData) {
        hooked = true;
        Object.defineProperty(this, HOOKED, {
          configurable: true,
          enumerable: true,
          writable: true,
          value: guarded(original, this),
        });
      },
    });
    trapped = true;
  } catch {}
  // Stands in even without a ceiling, to know the heap's size; a frozen WebAssembly namespace refuses it.
  let replacedMemory = false;
  try {
    WebAssembly.Memory = CappedMemory;
    replacedMemory = WebAssembly.Memory === CappedMemory;
  } catch {}
  try {
    return await bringUp();
  } finally {
    if (replacedMemory) WebAssembly.Memory = OriginalMemory;
    if (trapped) delete (Object.prototype as Record<string, unknown>)[HOOKED];
  }
}

/** What the guards achieved in this thread: whether outputs are checked before the copy, and the wasm heap size. */
export function wasmGuardState(): { outputsCheckedBeforeCopy: boolean; memoryBytes: number | null } {
  return { outputsCheckedBeforeCopy: hooked, memoryBytes: memory ? memory.buffer.byteLength : null };
}

/**
 * Runs one inference with outputs over `limitBytes` kept in wasm. Callers serialise their runs (see the engine's
 * queue), so the outputs the glue reads meanwhile are this run's.
 */
export async function guardOutputs<T>(
  limitBytes: number,
  run: () => Promise<T>,
): Promise<{ result: T; refused: RefusedOutput[] }> {
  armedLimit = limitBytes;
  refused = [];
  try {
    const result = await run();
    return { result, refused };
  } finally {
    armedLimit = null;
    refused = [];
  }
}
