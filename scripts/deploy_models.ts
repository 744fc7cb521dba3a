/**
 * `npm run deploy:models [-- --dry-run] [--models-dir models]`: publishes the embedded registry to production.
 *
 * 1. Every version in models/ (`<name>/<version>/{model.onnx,metadata.json}`) is uploaded to Vercel Blob, unless
 *    Blob already has that version with the same sha256 (skipped). A version that exists in Blob with *different*
 *    bytes is reported as a conflict and left alone: versions are immutable; register the model as a new version.
 * 2. The pointers of models/pointers.json (champion, pin, canary weights) are written to Edge Config for each model
 *    whose production pointers differ (one item per model), with an audit entry saying the deploy made the change.
 *    The audit entry goes where the app keeps its audit log: Upstash Redis when UPSTASH_REDIS_REST_URL/TOKEN are
 *    set (as for the app); without them it is only printed.
 *
 * Idempotent: a second run uploads nothing and changes nothing. `--dry-run` prints the plan and writes nothing.
 * Needs BLOB_READ_WRITE_TOKEN, EDGE_CONFIG, and for writes VERCEL_API_TOKEN (+ EDGE_CONFIG_ID, VERCEL_TEAM_ID as
 * for the app: see docs/production-adapters.md). Exit code 1 when anything conflicted or failed.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { errorMessage } from "../src/errors.js";
import { adaptersFromEnv } from "../src/runtime/adapters.js";
import { DEFAULT_MODELS_DIR } from "../src/runtime/node/deps.js";
import type { ArtifactStore } from "../src/storage/artifacts.js";
import { createFsArtifactStore } from "../src/storage/node/fs-artifacts.js";
import { parsePointerDocument } from "../src/storage/pointer-document.js";
import type { AuditEntry, ModelPointers, PointerStore } from "../src/storage/pointers.js";
import { sha256Hex } from "../src/util/hash.js";
import { failCli, isMain } from "./dev/lib/cli";

type Env = Record<string, string | undefined>;

export interface DeployOptions {
  modelsDir: string;
  env: Env;
  dryRun?: boolean;
  log?: (line: string) => void;
  now?: () => Date;
}

export interface DeployReport {
  uploaded: string[];
  skipped: string[];
  conflicts: string[];
  pointersChanged: string[];
  pointersUnchanged: string[];
  errors: string[];
}

/** The `sha256` of a metadata.json text, or undefined (not JSON, or none declared). */
function declaredSha256(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    const sha = value && typeof value === "object" ? (value as { sha256?: unknown }).sha256 : undefined;
    return typeof sha === "string" ? sha : undefined;
  } catch {
    return undefined;
  }
}

interface LocalVersion {
  name: string;
  version: string;
}

/** The complete versions of the models directory, by name then number: the file store's own listing. */
async function localVersions(local: ArtifactStore, modelsDir: string): Promise<LocalVersion[]> {
  await readdir(modelsDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") throw new Error(`edgeml: no models directory at ${modelsDir}`);
    throw error;
  });
  const found: LocalVersion[] = [];
  for (const name of await local.listModels()) {
    for (const version of await local.listVersions(name)) found.push({ name, version });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name) || Number(a.version) - Number(b.version));
}

/** The pointers of the embedded pointer file, keyed in a Map (any model name is data, never an object key). */
async function localPointers(modelsDir: string): Promise<Map<string, ModelPointers>> {
  let text: string;
  try {
    text = await readFile(join(modelsDir, "pointers.json"), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw error;
  }
  try {
    return parsePointerDocument(text).models;
  } catch (error) {
    throw new Error(
      `edgeml: ${join(modelsDir, "pointers.json")} is not a valid pointer file (${errorMessage(error)}); fix or remove it`,
    );
  }
}

/** Pointers as a canonical string: key order (of the canary weights too) does not make a difference. */
const canonical = (p: ModelPointers) =>
  JSON.stringify([p.champion ?? null, p.pinned ?? null, Object.entries(p.canary ?? {}).sort()]);

function describePointers(p: ModelPointers): string {
  const parts = [
    `champion ${p.champion ?? "-"}`,
    ...(p.pinned ? [`pinned ${p.pinned}`] : []),
    ...(p.canary && Object.keys(p.canary).length > 0 ? [`canary ${JSON.stringify(p.canary)}`] : []),
  ];
  return parts.join(", ");
}

/** The audit entry of a deploy's change: the champion's move if it moved, else the pin's. */
function auditEntryFor(model: string, from: ModelPointers, to: ModelPointers, at: Date): AuditEntry {
  const reason = "npm run deploy:models (models/pointers.json)";
  if (from.champion !== to.champion) {
    return {
      at: at.toISOString(),
      model,
      action: "promote",
      from: from.champion ?? null,
      to: to.champion ?? null,
      reason,
    };
  }
  return {
    at: at.toISOString(),
    model,
    action: to.pinned ? "pin" : "unpin",
    from: from.pinned ?? null,
    to: to.pinned ?? null,
    reason,
  };
}

/** Uploads the versions, then sets the pointers; see the file's comment. Never throws for one version's failure. */
export async function deployModels(options: DeployOptions): Promise<DeployReport> {
  const log = options.log ?? console.log;
  const now = options.now ?? (() => new Date());
  const dryRun = options.dryRun ?? false;
  const missing = (variable: string) => () => {
    throw new Error(`edgeml: ${variable} is required to deploy models (see docs/production-adapters.md)`);
  };
  // Fresh reads: the deploy compares against what Edge Config holds now, not a few seconds ago.
  const env = { ...options.env, EDGE_CONFIG_CACHE_TTL_MS: "0" };
  const { artifacts, pointers } = adaptersFromEnv(env, {
    artifacts: missing("BLOB_READ_WRITE_TOKEN"),
    pointers: missing("EDGE_CONFIG"),
  }) as { artifacts: ArtifactStore; pointers: PointerStore };
  if (!dryRun && !options.env.VERCEL_API_TOKEN?.trim()) missing("VERCEL_API_TOKEN (to write Edge Config)")();

  const report: DeployReport = {
    uploaded: [],
    skipped: [],
    conflicts: [],
    pointersChanged: [],
    pointersUnchanged: [],
    errors: [],
  };
  const verb = (done: string, planned: string) => (dryRun ? planned : done);
  const where = relative(process.cwd(), options.modelsDir) || ".";
  log(
    `${dryRun ? "plan" : "deploy"}: ${where}/ → Vercel Blob (${artifacts.kind}) and Edge Config (${pointers.kind})`,
  );

  const inBlob = new Set<string>();
  const localStore = createFsArtifactStore(options.modelsDir);
  for (const local of await localVersions(localStore, options.modelsDir)) {
    const key = `${local.name}@${local.version}`;
    try {
      const [model, metadata] = await Promise.all([
        localStore.getModel(local.name, local.version),
        localStore.getMetadata(local.name, local.version),
      ]);
      if (!model || !metadata) throw new Error("its model.onnx or its metadata.json is missing");
      const sha256 = await sha256Hex(model);
      if (declaredSha256(metadata) !== sha256) {
        throw new Error(`its metadata.json does not carry the sha256 of its model.onnx (${sha256})`);
      }
      const remote = await artifacts.getMetadata(local.name, local.version);
      if (remote !== null) {
        const remoteSha = declaredSha256(remote);
        if (remoteSha === sha256) {
          report.skipped.push(key);
          inBlob.add(key);
          log(`  skip      ${key}  already in Blob (sha256 ${sha256.slice(0, 12)}…)`);
        } else {
          report.conflicts.push(key);
          log(
            `  CONFLICT  ${key}  Blob holds other bytes (sha256 ${remoteSha?.slice(0, 12) ?? "?"}…, local ${sha256.slice(0, 12)}…); versions are immutable: register the local model as a new version`,
          );
        }
        continue;
      }
      if (!dryRun) await artifacts.publish(local.name, local.version, { model, metadata });
      report.uploaded.push(key);
      inBlob.add(key);
      log(
        `  ${verb("uploaded", "upload").padEnd(8)}  ${key}  ${(model.byteLength / 1024).toFixed(1)} KB, sha256 ${sha256.slice(0, 12)}…`,
      );
    } catch (error) {
      report.errors.push(key);
      log(`  ERROR     ${key}  ${errorMessage(error)}`);
    }
  }

  for (const [model, wanted] of await localPointers(options.modelsDir)) {
    try {
      const referenced = [wanted.champion, wanted.pinned, ...Object.keys(wanted.canary ?? {})].filter(
        (v): v is string => v !== undefined,
      );
      const absent = referenced.filter((v) => !inBlob.has(`${model}@${v}`));
      if (absent.length > 0) {
        report.errors.push(model);
        log(`  ERROR     pointers of ${model} name versions not deployed to Blob: ${absent.join(", ")}`);
        continue;
      }
      const current = await pointers.get(model);
      if (canonical(current) === canonical(wanted)) {
        report.pointersUnchanged.push(model);
        log(`  unchanged pointers of ${model}: ${describePointers(wanted)}`);
        continue;
      }
      // Read-modify-write: the audit entry describes what was stored at the moment of the write.
      if (!dryRun) {
        await pointers.update(model, (stored) => ({
          pointers: wanted,
          entry: auditEntryFor(model, stored, wanted, now()),
        }));
      }
      report.pointersChanged.push(model);
      log(
        `  ${verb("set", "would set")} pointers of ${model}: ${describePointers(current)} → ${describePointers(wanted)}`,
      );
    } catch (error) {
      report.errors.push(model);
      log(`  ERROR     pointers of ${model}: ${errorMessage(error)}`);
    }
  }

  log(
    `${dryRun ? "plan" : "done"}: ${report.uploaded.length} ${verb("uploaded", "to upload")}, ${report.skipped.length} already in Blob, ${report.pointersChanged.length} pointer ${verb("changes", "changes to make")}, ${report.conflicts.length} conflicts, ${report.errors.length} errors`,
  );
  return report;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      "dry-run": { type: "boolean", default: false },
      "models-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log("usage: npm run deploy:models -- [--dry-run] [--models-dir models]");
    process.exit(0);
  }
  deployModels({
    modelsDir: resolve(values["models-dir"] ?? process.env.MODELS_DIR ?? DEFAULT_MODELS_DIR),
    env: process.env,
    dryRun: values["dry-run"],
  }).then(
    (report) => process.exit(report.conflicts.length + report.errors.length > 0 ? 1 : 0),
    (error: unknown) => failCli("deploy:models", error),
  );
}
