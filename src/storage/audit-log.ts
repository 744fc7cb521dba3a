import { type AuditEntry, AuditEntrySchema } from "./pointers.js";
import { withTimeout } from "./timeout.js";
import { type UpstashAdapterOptions, upstashSettings } from "./upstash-cache.js";

/**
 * An append-only log of pointer changes per model, capped: where a pointer store whose own storage is too small
 * (Edge Config: 8 KB on Hobby, 64 KB on Pro) keeps its audit log. Adapters: process memory and Upstash Redis.
 */
export interface AuditLog {
  readonly kind: string;
  append(entry: AuditEntry): Promise<void>;
  /** The model's newest entries (up to the cap), oldest first. */
  history(model: string): Promise<AuditEntry[]>;
}

/** Defaults of the audit logs, each with why. */
export const AUDIT_LOG_DEFAULTS = {
  /** Entries kept per model: rollback replays the champions from them, and a few hundred changes cover years. */
  limit: 500,
} as const;

/** The audit log in process memory: lost on restart, for tests and for a deployment without Redis. */
export function createMemoryAuditLog(options: { limit?: number } = {}): AuditLog {
  const limit = options.limit ?? AUDIT_LOG_DEFAULTS.limit;
  const logs = new Map<string, AuditEntry[]>();
  return {
    kind: "memory",
    async append(entry) {
      const log = logs.get(entry.model) ?? [];
      log.push(structuredClone(entry));
      if (log.length > limit) log.splice(0, log.length - limit);
      logs.set(entry.model, log);
    },
    async history(model) {
      return structuredClone(logs.get(model) ?? []);
    },
  };
}

/** All the Upstash audit log needs from `@upstash/redis`'s `Redis`. */
export interface UpstashAuditRedisLike {
  pipeline(): {
    rpush(key: string, ...values: string[]): unknown;
    ltrim(key: string, start: number, end: number): unknown;
    exec(): Promise<unknown[]>;
  };
  lrange<T = unknown>(key: string, start: number, end: number): Promise<T[]>;
}

/**
 * The audit log in Upstash Redis: one list per model (`<prefix>audit:<model>`), appended with RPUSH and capped with
 * LTRIM in one pipeline, so two instances appending at once both keep their entry (a list push is atomic; a
 * read-modify-write of an Edge Config item is not). Entries that do not parse are skipped when read.
 */
export function createUpstashAuditLog(
  redis: UpstashAuditRedisLike,
  options: UpstashAdapterOptions & { limit?: number } = {},
): AuditLog {
  const { prefix, timeoutMs } = upstashSettings(options, "audit");
  const limit = options.limit ?? AUDIT_LOG_DEFAULTS.limit;
  return {
    kind: "upstash",
    async append(entry) {
      const key = prefix + entry.model;
      const pipeline = redis.pipeline();
      pipeline.rpush(key, JSON.stringify(AuditEntrySchema.parse(entry)));
      pipeline.ltrim(key, -limit, -1);
      await withTimeout(pipeline.exec(), timeoutMs, "Upstash Redis (audit log append)");
    },
    async history(model) {
      const values = await withTimeout(
        redis.lrange<unknown>(prefix + model, 0, -1),
        timeoutMs,
        "Upstash Redis (audit log read)",
      );
      const entries: AuditEntry[] = [];
      for (const value of values) {
        // The client deserialises JSON text by default; a raw string is parsed here.
        let candidate: unknown = value;
        if (typeof value === "string") {
          try {
            candidate = JSON.parse(value);
          } catch {
            continue;
          }
        }
        const parsed = AuditEntrySchema.safeParse(candidate);
        if (parsed.success) entries.push(parsed.data);
      }
      return entries;
    },
  };
}
