import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // onnxruntime-web initialises a 14 MB wasm once per worker; two cores, so two forks.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "embedded",
          include: ["test/**/*.test.ts", "src/**/*.test.ts", "scripts/**/*.test.ts"],
        },
      },
      {
        // The same API and registry suites again, with testApp wired to Vercel Blob, Edge Config and Upstash Redis
        // against local servers (one switch: EDGEML_ADAPTERS). See docs/production-adapters.md.
        extends: true,
        test: {
          name: "production-adapters",
          include: ["test/api/**/*.test.ts", "test/registry/**/*.test.ts"],
          globalSetup: ["test/storage/support/local-stack.setup.ts"],
          // No Blob client retries: nothing here injects faults, and a bug should fail now, not after ten backoffs.
          // Upstash timeout 15 s (production: 1 s): a busy CI machine must never turn a healthy round trip into an
          // outage. test/storage/support/production-adapters.ts passes the same to the wiring it builds.
          env: { EDGEML_ADAPTERS: "production", VERCEL_BLOB_RETRIES: "0", UPSTASH_TIMEOUT_MS: "15000" },
        },
      },
    ],
  },
});
