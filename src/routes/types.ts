/**
 * Hono environment of the app. `clientIdentity`: who is asking as the rate limiter counts clients, computed on first
 * use (src/rollout/client-key.ts); runtimes pass their bindings through the deps.
 */
export type AppEnv = { Variables: { clientIdentity?: () => Promise<string | undefined> } };
