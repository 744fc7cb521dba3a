import type { VersionMetadata } from "../registry/metadata.js";
import type { ModelSummary, Registry } from "../registry/registry.js";
import type { AuditEntry } from "../storage/pointers.js";
import type { Usage, UsageTracker } from "../tracking/usage.js";

/** A model as an administrator sees it: its summary, every version's metadata, the audit log and usage. */
export interface ModelDetail extends ModelSummary {
  metadata: VersionMetadata[];
  history: AuditEntry[];
  usage: { available: boolean; versions: Record<string, Usage> };
}

/** A pointer change and the version that serves after it. */
export interface PointerChange {
  change: AuditEntry;
  serving: ModelSummary["serving"];
}

/** The registry's administration as the admin routes and the local CLI both use it. */
export function createModelOperations(deps: { registry: Registry; usage: UsageTracker }) {
  const { registry, usage } = deps;
  const changed = async (name: string, change: AuditEntry): Promise<PointerChange> => ({
    change,
    serving: (await registry.getModel(name)).serving,
  });
  return {
    list: (): Promise<ModelSummary[]> => registry.listModels(),
    async detail(name: string): Promise<ModelDetail> {
      const [summary, metadata, history] = await Promise.all([
        registry.getModel(name),
        registry.versions(name),
        registry.history(name),
      ]);
      return { ...summary, metadata, history, usage: await usage.read(name, summary.versions) };
    },
    promote: async (name: string, version: string, reason?: string) =>
      changed(name, await registry.promote(name, version, reason)),
    /**
     * `promote --auto`: a person hands the model back to the selection policy, which decides now; a champion they
     * set is cleared. The audit entry (automatic, with the evidence) is written even when nothing changes.
     */
    handBack: async (name: string, reason?: string) => {
      const { entry } = await registry.select(name, { handBack: true, reason });
      if (!entry) throw new Error(`edgeml: handing '${name}' back wrote no audit entry`);
      return changed(name, entry);
    },
    rollback: async (name: string, options: { to?: string; reason?: string }) =>
      changed(name, await registry.rollback(name, options)),
    pin: async (name: string, version: string | null, reason?: string) =>
      changed(name, await registry.pin(name, version, reason)),
    restore: async (name: string, version: string, reason?: string) =>
      changed(name, await registry.restore(name, version, reason)),
  };
}

export type ModelOperations = ReturnType<typeof createModelOperations>;
