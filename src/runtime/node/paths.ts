import { resolve } from "node:path";

/** The repository's own `models/`: the embedded registry that serves out of the box. */
export const DEFAULT_MODELS_DIR = resolve(import.meta.dirname, "../../../models");

/**
 * The prediction log's SQLite file when Upstash is not configured: under the repository's `data/` (git-ignored),
 * beside `models/` rather than in it, so that deploying the models never ships the log.
 */
export const DEFAULT_PREDICTION_LOG_FILE = resolve(import.meta.dirname, "../../../data/predictions.sqlite");
