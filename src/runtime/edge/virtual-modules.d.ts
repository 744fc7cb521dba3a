/**
 * The embedded registry, provided at bundle time by scripts/edge/bundle.ts from models/ (its shape is
 * EmbeddedRegistry in ./embedded.ts): the edge has no file system, so the models ship inside the code.
 */
declare module "edgeml:embedded-registry" {
  export const EMBEDDED_REGISTRY: {
    source: string;
    models: Record<string, Record<string, { metadata: string; model: string }>>;
    pointers: unknown;
  };
}
