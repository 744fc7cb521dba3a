/**
 * The prediction cache: all forecasting needs from a key-value store with expiry. Adapters: in-process LRU
 * (embedded default) and Upstash Redis (production). Values are JSON.
 */
export interface PredictionCache {
  readonly kind: string;
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, ttlMs: number): Promise<void>;
}
