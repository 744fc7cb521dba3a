/**
 * Where model versions live: all the registry needs from a store of immutable files.
 * Adapters: the `models/` directory (embedded default) and Vercel Blob (production).
 */
export interface ArtifactStore {
  readonly kind: string;
  /** Models with at least one complete version. */
  listModels(): Promise<string[]>;
  /** Complete versions of a model, in any order; a version being written is not listed. */
  listVersions(model: string): Promise<string[]>;
  /** The raw `metadata.json` text, or null when the version does not exist. */
  getMetadata(model: string, version: string): Promise<string | null>;
  /** The `model.onnx` bytes, or null when the version does not exist. */
  getModel(model: string, version: string): Promise<Uint8Array | null>;
  /**
   * Writes a version so that it becomes visible only when both files are complete. Rejects with a `conflict`
   * EdgeMLError when the version exists already: versions are never overwritten.
   */
  publish(model: string, version: string, files: { model: Uint8Array; metadata: string }): Promise<void>;
}
