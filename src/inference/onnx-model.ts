import type onnxProto from "onnx-proto";
import { EdgeMLError } from "../errors.js";

type Onnx = typeof onnxProto.onnx;
let onnxModule: Promise<Onnx> | undefined;

/**
 * onnx-proto, loaded the first time a model is registered: its generated code (every ONNX message) is a tenth of
 * the edge bundle's code, and serving never needs it, so a server that only serves never evaluates it at start.
 */
const loadOnnx = (): Promise<Onnx> => {
  onnxModule ??= import("onnx-proto").then((module) => module.default.onnx);
  return onnxModule;
};

/** What the registry records of an ONNX file besides its signature. */
export interface OnnxDescription {
  irVersion: number;
  opsets: Record<string, number>;
  producer: { name: string; version: string };
  docString: string;
  metadataProps: Record<string, string>;
}

/**
 * Parses the ModelProto header and rejects what is not an ONNX model before onnxruntime sees it, so a JPEG or a
 * truncated file gets a message about the file rather than onnxruntime's protobuf error code.
 */
export async function describeOnnx(bytes: Uint8Array): Promise<OnnxDescription> {
  const onnx = await loadOnnx();
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new EdgeMLError(
      "invalid_onnx",
      "the upload is not a readable ONNX model (protobuf parsing failed: truncated or not ONNX); upload the .onnx file your exporter wrote",
      { cause: error },
    );
  }
  const irVersion = Number(model.irVersion);
  if (!model.graph || irVersion <= 0 || model.opsetImport.length === 0) {
    throw new EdgeMLError(
      "invalid_onnx",
      "the upload parses but is not an ONNX model (no graph, IR version or opset); upload the .onnx file your exporter wrote",
    );
  }
  const opsets: Record<string, number> = {};
  for (const opset of model.opsetImport) opsets[opset.domain || "ai.onnx"] = Number(opset.version);
  const metadataProps: Record<string, string> = {};
  for (const prop of model.metadataProps) if (prop.key) metadataProps[prop.key] = prop.value ?? "";
  return {
    irVersion,
    opsets,
    producer: { name: model.producerName, version: model.producerVersion },
    docString: model.docString,
    metadataProps,
  };
}
