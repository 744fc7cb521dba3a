import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AuditEntry, PointerStore } from "../../src/storage/pointers.js";
import type { Subject } from "./artifact-store.contract.js";

export interface PointerSubject extends Subject<PointerStore> {
  /** Another instance over the same backend, as another process would open it (reads not cached). */
  sibling: () => PointerStore;
}

let clock = Date.parse("2026-01-01T00:00:00Z");
const entry = (
  model: string,
  action: AuditEntry["action"],
  from: string | null,
  to: string | null,
  reason?: string,
) => {
  clock += 1_000;
  return {
    at: new Date(clock).toISOString(),
    model,
    action,
    from,
    to,
    ...(reason !== undefined && { reason }),
  } satisfies AuditEntry;
};

/** The behaviour every PointerStore adapter must have (src/storage/pointers.ts). */
export function pointerStoreContract(name: string, make: () => Promise<PointerSubject>): void {
  describe(`PointerStore contract: ${name}`, () => {
    let subject: PointerSubject;
    let store: PointerStore;
    beforeEach(async () => {
      subject = await make();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup?.();
    });

    it("a model never written has no pointers and no history", async () => {
      expect(await store.get("m")).toEqual({});
      expect(await store.history("m")).toEqual([]);
    });

    it("reads back the pointers that were set: champion, pin and canary weights", async () => {
      const pointers = { champion: "3", pinned: "2", canary: { "4": 0.1, "5": 0.05 } };
      await store.set("m", pointers, entry("m", "promote", null, "3"));
      expect(await store.get("m")).toEqual(pointers);
    });

    it("reads back a rollout and its audit entries, with the rollout id and the evidence of a decision", async () => {
      const rollout = {
        id: "r-1",
        challenger: "4",
        champion: "3",
        mode: "shadow" as const,
        weight: 0.5,
        started_at: "2026-03-01T00:00:00.000Z",
        min_outcomes: 30,
        max_duration_seconds: 1_209_600,
      };
      const start = { ...entry("m", "rollout_start", "3", "4"), rollout_id: "r-1" };
      await store.set("m", { champion: "3", rollout }, start);
      expect(await store.get("m")).toEqual({ champion: "3", rollout });
      const end = {
        ...entry("m", "rollout_end", "4", "3", "worse"),
        rollout_id: "r-1",
        rollout_evidence: { paired: 31, p_worse: 0.01 },
      };
      await store.set("m", { champion: "3" }, end);
      expect(await store.get("m")).toEqual({ champion: "3" });
      expect((await store.history("m")).slice(-2)).toEqual([start, end]);
    });

    it("reads back the archived versions (when, why) and the restored ones, and the archive and restore entries", async () => {
      const pointers = {
        champion: "5",
        archived: { "1": { at: "2026-01-01T00:00:00.000Z", reason: "retention: older than the newest 2" } },
        kept: ["2"],
      };
      await store.set("m", pointers, entry("m", "archive", null, "1", "retention"));
      await store.set("m", pointers, entry("m", "restore", null, "2"));
      expect(await store.get("m")).toEqual(pointers);
      expect(await subject.sibling().get("m")).toEqual(pointers);
      expect((await store.history("m")).map((e) => e.action)).toEqual(["archive", "restore"]);
    });

    it("replaces a model's pointers rather than merging them", async () => {
      await store.set("m", { champion: "1", pinned: "2" }, entry("m", "pin", null, "2"));
      await store.set("m", { champion: "3" }, entry("m", "unpin", "2", null));
      expect(await store.get("m")).toEqual({ champion: "3" });
    });

    it("keeps the audit log oldest first, each entry as written", async () => {
      const written = [
        entry("m", "promote", null, "1", "first"),
        entry("m", "promote", "1", "2"),
        entry("m", "rollback", "2", "1", "regression"),
        entry("m", "pin", null, "4"),
      ];
      for (const e of written) await store.set("m", { champion: e.to ?? undefined }, e);
      expect(await store.history("m")).toEqual(written);
    });

    it("keeps every change of concurrent writes from one instance, in call order", async () => {
      const written = ["1", "2", "3", "4", "5"].map((v, i) =>
        entry("m", "promote", i === 0 ? null : String(i), v),
      );
      await Promise.all(written.map((e) => store.set("m", { champion: e.to ?? undefined }, e)));
      expect(await store.history("m")).toEqual(written);
      expect(await store.get("m")).toEqual({ champion: "5" });
    });

    it("keeps models apart, including names that differ only by '.', '_' and '-'", async () => {
      const names = ["m", "M", "m.x", "m_x", "m-x", "m_dx", "m__x", "m.x.y"];
      for (const [i, model] of names.entries()) {
        await store.set(model, { champion: String(i + 1) }, entry(model, "promote", null, String(i + 1)));
      }
      for (const [i, model] of names.entries()) {
        expect(await store.get(model)).toEqual({ champion: String(i + 1) });
        expect((await store.history(model)).map((e) => [e.model, e.to])).toEqual([[model, String(i + 1)]]);
      }
    });

    it("another instance over the same backend sees the writes", async () => {
      const e = entry("m", "promote", null, "7");
      await store.set("m", { champion: "7" }, e);
      const other = subject.sibling();
      expect(await other.get("m")).toEqual({ champion: "7" });
      expect(await other.history("m")).toEqual([e]);
    });

    it("keeps names that are Object.prototype members apart from each other and from unknown names", async () => {
      const names = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];
      for (const [i, model] of names.entries()) {
        await store.set(model, { champion: String(i + 1) }, entry(model, "promote", null, String(i + 1)));
      }
      for (const [i, model] of names.entries()) {
        expect(await store.get(model)).toEqual({ champion: String(i + 1) });
      }
      expect(await store.get("isPrototypeOf")).toEqual({});
      const other = subject.sibling();
      expect(await other.get("__proto__")).toEqual({ champion: "1" });
      expect(await other.get("propertyIsEnumerable")).toEqual({});
    });

    it("update hands the change the pointers as stored and writes what it returns, with its audit entry", async () => {
      await store.set("m", { champion: "1" }, entry("m", "promote", null, "1"));
      const e = entry("m", "pin", null, "2");
      const change = await store.update("m", (current) => ({
        pointers: { ...current, pinned: "2" },
        entry: e,
      }));
      expect(change).toEqual({ pointers: { champion: "1", pinned: "2" }, entry: e });
      expect(await store.get("m")).toEqual({ champion: "1", pinned: "2" });
      expect((await store.history("m")).at(-1)).toEqual(e);
    });

    it("an update whose change throws writes nothing", async () => {
      await store.set("m", { champion: "1" }, entry("m", "promote", null, "1"));
      await expect(
        store.update("m", () => {
          throw new Error("refused");
        }),
      ).rejects.toThrow("refused");
      expect(await store.get("m")).toEqual({ champion: "1" });
      expect(await store.history("m")).toHaveLength(1);
    });

    it("concurrent updates from one instance are read-modify-write: none is lost", async () => {
      // Each adds its own canary key to what it reads: a write based on a stale read would drop another's key.
      const keys = Array.from({ length: 12 }, (_, i) => String(i + 1));
      await Promise.all(
        keys.map((key) =>
          store.update("m", (current) => ({
            pointers: { ...current, canary: { ...current.canary, [key]: 0 } },
            entry: entry("m", "pin", null, key),
          })),
        ),
      );
      expect(Object.keys((await store.get("m")).canary ?? {}).sort()).toEqual([...keys].sort());
      expect(await store.history("m")).toHaveLength(keys.length);
    });

    it("hands out pointers no caller can change: a write to a returned object throws or changes nothing stored", async () => {
      await store.set("m", { champion: "1" }, entry("m", "promote", null, "1"));
      const read = await store.get("m");
      // Stores may hand out one deep-frozen object per stored version (no clone per request): the write throws.
      try {
        read.champion = "9";
      } catch (error) {
        expect(error).toBeInstanceOf(TypeError);
      }
      (await store.history("m")).push(entry("m", "pin", null, "9"));
      expect(await store.get("m")).toEqual({ champion: "1" });
      expect(await store.history("m")).toHaveLength(1);
    });
  });
}
