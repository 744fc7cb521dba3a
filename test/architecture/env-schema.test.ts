import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { adaptersFromEnv } from "../../src/runtime/adapters.js";
import { configFromEnv } from "../../src/runtime/env.js";
import { ENV_NAMES, parseEnv } from "../../src/runtime/env-schema.js";
import { parseConfig } from "../../src/services/index.js";
import { createEmbeddedArtifactStore, createEmbeddedPointerStore } from "../../src/storage/embedded.js";

/** One environment schema (src/runtime/env-schema.ts): the only list of variables, the README's table checked against it. */

const ROOT = join(import.meta.dirname, "../..");

/** The variables named in the first column of the README's Configuration tables. */
async function readmeVariables(): Promise<string[]> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? "";
  const rows = section.split("\n").filter((line) => line.startsWith("| `"));
  return rows.flatMap((row) =>
    [...(row.split("|")[1] ?? "").matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] ?? ""),
  );
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
    .map((entry) => join(entry.parentPath, entry.name));
}

const invalid = (env: Record<string, string>) => {
  try {
    parseEnv(env);
    return "(accepted)";
  } catch (error) {
    return (error as Error).message;
  }
};

describe("the environment schema", () => {
  it("and the README's Configuration table name the same variables", async () => {
    const documented = await readmeVariables();
    expect([...new Set(documented)].sort()).toEqual([...ENV_NAMES].sort());
    expect(documented.length, "a variable listed twice in the table").toBe(new Set(documented).size);
  });

  it("knows every variable docs/production-adapters.md documents (the Blob client's own two aside)", async () => {
    const doc = await readFile(join(ROOT, "docs/production-adapters.md"), "utf8");
    const section = doc.split(/^## Environment$/m)[1]?.split(/^## /m)[0] ?? "";
    const named = section
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .flatMap((row) =>
        [...(row.split("|")[1] ?? "").matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] ?? ""),
      );
    expect(named.length).toBeGreaterThan(10);
    const unknown = named.filter((name) => !ENV_NAMES.includes(name as never));
    expect(unknown).toEqual(["VERCEL_BLOB_API_URL", "VERCEL_BLOB_RETRIES"]);
  });

  it("lists every variable the code under src/ and api/ reads", async () => {
    // Set by the platform or read by a library itself, not configuration: see src/runtime/env-schema.ts.
    const notConfiguration = new Set(["VERCEL", "VERCEL_BLOB_API_URL", "VERCEL_BLOB_RETRIES", "NAME"]);
    const read = new Set<string>();
    for (const file of [...(await sourceFiles("src")), ...(await sourceFiles("api"))]) {
      const text = await readFile(file, "utf8");
      for (const match of text.matchAll(/\benv\.([A-Z][A-Z0-9_]+)\b/g)) read.add(match[1] ?? "");
    }
    expect(read.size).toBeGreaterThan(20);
    const unlisted = [...read].filter(
      (name) => !notConfiguration.has(name) && !ENV_NAMES.includes(name as never),
    );
    expect(unlisted).toEqual([]);
  });

  it.each([
    [{ INFER_TIMEOUT_MS: "-1" }, 'INFER_TIMEOUT_MS: must be > 0 (got "-1")'],
    [{ INFER_TIMEOUT_MS: "0" }, 'INFER_TIMEOUT_MS: must be > 0 (got "0")'],
    [{ SESSION_CACHE_MAX: "2.5" }, 'SESSION_CACHE_MAX: must be a whole number (got "2.5")'],
    [{ MAX_MODEL_BYTES: "64MB" }, 'MAX_MODEL_BYTES: must be a number (got "64MB")'],
    [{ REGISTRY_LIST_TTL_MS: "-5" }, 'REGISTRY_LIST_TTL_MS: must be >= 0 (got "-5")'],
    [{ PORT: "http" }, 'PORT: must be a number (got "http")'],
    [{ PORT: "70000" }, 'PORT: must be a port number, 0 to 65535 (got "70000")'],
    [{ HOST: "local host" }, 'HOST: must be a host name or an IP address (got "local host")'],
    [{ TRUST_PROXY: "x-forwarded-for, x-real-ip" }, "TRUST_PROXY: must name one HTTP header"],
    [{ RATE_LIMIT_ADMIN: "60 per minute" }, 'RATE_LIMIT_ADMIN: must be "<requests>/<window>"'],
    [{ BLOB_ACCESS: "secret" }, 'BLOB_ACCESS: must be public or private (got "secret")'],
    [{ PREDICTION_LOG_CAP: "0" }, 'PREDICTION_LOG_CAP: must be > 0 (got "0")'],
  ])("%o is refused at start, naming the variable: %s", (env, message) => {
    expect(invalid(env)).toContain(`edgeml: invalid environment: ${message}`);
  });

  it("names every wrong variable at once, and never echoes a secret", () => {
    const message = invalid({ INFER_TIMEOUT_MS: "-1", PORT: "-1", ADMIN_TOKEN: "hunter2" });
    expect(message).toMatch(/INFER_TIMEOUT_MS: must be > 0/);
    expect(message).toMatch(/PORT: must be a port number/);
    expect(message).toMatch(/ADMIN_TOKEN must be at least 16 characters \(got 7 characters\)/);
    expect(message).not.toContain("hunter2");
  });

  it("reads text into the types the wiring uses; blank is unset", () => {
    expect(
      parseEnv({
        PORT: "0",
        HOST: "::1",
        INFER_TIMEOUT_MS: " 1000 ",
        BEST_METRIC: "",
        API_KEYS: "key-one-0123456789abcdef,\nkey-two-0123456789abcdef",
        RATE_LIMIT_PUBLIC: "off",
      }),
    ).toEqual({
      PORT: 0,
      HOST: "::1",
      INFER_TIMEOUT_MS: 1000,
      API_KEYS: ["key-one-0123456789abcdef", "key-two-0123456789abcdef"],
      RATE_LIMIT_PUBLIC: "off",
    });
  });

  it("is parsed once per environment: the app's settings and the adapters read each variable once", () => {
    const reads = new Map<string, number>();
    const env = new Proxy({} as Record<string, string | undefined>, {
      get: (_, key) => {
        if (typeof key === "string") reads.set(key, (reads.get(key) ?? 0) + 1);
        return key === "INFER_TIMEOUT_MS" ? "1234" : undefined;
      },
    });
    const registry = { source: "test", models: {}, pointers: null };
    const embedded = {
      artifacts: () => createEmbeddedArtifactStore(registry),
      pointers: () => createEmbeddedPointerStore(registry),
    };
    expect(configFromEnv(env).inferTimeoutMs).toBe(1234);
    adaptersFromEnv(env, embedded);
    expect([...reads.keys()].sort()).toEqual([...ENV_NAMES].sort());
    expect([...reads.values()].every((count) => count === 1)).toBe(true);
  });

  it("stops npm start on a PORT that is not one, naming it, before anything loads", async () => {
    const start = promisify(execFile)(join(ROOT, "node_modules/.bin/tsx"), ["src/runtime/node/server.ts"], {
      cwd: ROOT,
      env: { ...process.env, PORT: "http", HOST: "127.0.0.1" },
    });
    await expect(start).rejects.toMatchObject({
      stderr: expect.stringContaining('PORT: must be a number (got "http")'),
    });
  }, 60_000);

  it("a configuration given in code (tests, the CLI) names the field of a rule it breaks", () => {
    expect(() => parseConfig({ inferTimeoutMs: -1 })).toThrow(
      "edgeml: invalid configuration: inferTimeoutMs: must be > 0",
    );
  });
});
