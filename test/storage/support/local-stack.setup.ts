/**
 * Vitest global setup of the production-adapters run: starts redis-server + the Upstash bridge + the Edge Config
 * and Blob emulators once for the whole run, hands their URLs to the test workers (`inject("localStack")`), and
 * stops them at teardown.
 */
import type { TestProject } from "vitest/node";
import { type LocalStackEnv, startLocalStack } from "../../../scripts/dev/local-stack";

declare module "vitest" {
  export interface ProvidedContext {
    localStack: LocalStackEnv;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Every test app of the run shares the one Edge Config: room for all their pointers and audit logs.
  const stack = await startLocalStack({ edgeConfigMaxSizeBytes: 64 * 1024 * 1024 });
  project.provide("localStack", stack.env);
  return () => stack.close();
}
