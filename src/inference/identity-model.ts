/**
 * A one-node Identity model (float [1] → float [1], IR 8, opset 13): creating a session of it brings the wasm
 * runtime up without any user model. Its 78 bytes are written out rather than encoded with onnx-proto at start, so
 * the serving path's start-up neither loads nor evaluates the ONNX protobuf code (the edge's cold start pays for
 * every module it evaluates). test/inference/identity-model.test.ts checks them against onnx-proto's encoding.
 */
const IDENTITY_MODEL = new Uint8Array([
  8, 8, 18, 6, 101, 100, 103, 101, 109, 108, 58, 60, 10, 16, 10, 1, 120, 18, 1, 121, 34, 8, 73, 100, 101, 110,
  116, 105, 116, 121, 18, 6, 119, 97, 114, 109, 117, 112, 90, 15, 10, 1, 120, 18, 10, 10, 8, 8, 1, 18, 4, 10,
  2, 8, 1, 98, 15, 10, 1, 121, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 66, 4, 10, 0, 16, 13,
]);

/** The Identity model's bytes (a copy: onnxruntime may take ownership of what it is given). */
export const identityModel = (): Uint8Array => IDENTITY_MODEL.slice();
