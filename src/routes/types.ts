/** Hono environment of the app: nothing in context yet; runtimes pass their bindings through the deps. */
export type AppEnv = { Variables: Record<string, never> };
