import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EdgeMLError } from "../../src/errors.js";
import type { ArtifactStore } from "../../src/storage/artifacts.js";

/** A store under test, fresh and empty, and how to dispose of it. */
export interface Subject<T> {
  store: T;
  cleanup?: () => Promise<void>;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Buffer.from(digest).toString("hex");
}

let counter = 0;
/** Distinct files of a version: every byte value occurs in the bytes, and the metadata names their sha256. */
export async function versionFiles(model: string, version: string, size = 300) {
  counter += 1;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + counter * 13) % 256;
  bytes[0] = counter % 256;
  bytes[1] = Math.floor(counter / 256) % 256;
  const sha256 = await sha256Hex(bytes);
  const metadata = `${JSON.stringify({ name: model, version, sha256, note: `files #${counter} ✓` }, null, 2)}\n`;
  return { model: bytes, metadata, sha256 };
}

const sorted = (values: string[]) => [...values].sort();

/**
 * The behaviour every ArtifactStore adapter must have (src/storage/artifacts.ts): run by each adapter's suite with
 * a factory of fresh, empty stores.
 */
export function artifactStoreContract(name: string, make: () => Promise<Subject<ArtifactStore>>): void {
  describe(`ArtifactStore contract: ${name}`, () => {
    let subject: Subject<ArtifactStore>;
    let store: ArtifactStore;
    beforeEach(async () => {
      subject = await make();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup?.();
    });

    it("an empty store lists no models and no versions", async () => {
      expect(await store.listModels()).toEqual([]);
      expect(await store.listVersions("m")).toEqual([]);
    });

    it("reads back exactly the bytes and metadata that were published", async () => {
      const files = await versionFiles("m", "1");
      await store.publish("m", "1", files);
      expect(await store.getMetadata("m", "1")).toBe(files.metadata);
      const bytes = await store.getModel("m", "1");
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(bytes as Uint8Array).equals(Buffer.from(files.model))).toBe(true);
    });

    it("lists every model with a version, and each model's versions", async () => {
      await store.publish("m", "1", await versionFiles("m", "1"));
      await store.publish("m", "2", await versionFiles("m", "2"));
      await store.publish("m", "10", await versionFiles("m", "10"));
      await store.publish("sk.gbr_v2-x", "1", await versionFiles("sk.gbr_v2-x", "1"));
      expect(sorted(await store.listModels())).toEqual(["m", "sk.gbr_v2-x"]);
      expect(sorted(await store.listVersions("m"))).toEqual(["1", "10", "2"]);
      expect(await store.listVersions("sk.gbr_v2-x")).toEqual(["1"]);
    });

    it("keeps models whose names share a prefix apart", async () => {
      await store.publish("m", "1", await versionFiles("m", "1"));
      await store.publish("m2", "1", await versionFiles("m2", "1"));
      await store.publish("m2", "2", await versionFiles("m2", "2"));
      await store.publish("m.x", "3", await versionFiles("m.x", "3"));
      expect(await store.listVersions("m")).toEqual(["1"]);
      expect(sorted(await store.listVersions("m2"))).toEqual(["1", "2"]);
      expect(await store.listVersions("m.x")).toEqual(["3"]);
    });

    it("answers null for a version, or a model, that does not exist", async () => {
      await store.publish("m", "1", await versionFiles("m", "1"));
      expect(await store.getMetadata("m", "2")).toBeNull();
      expect(await store.getModel("m", "2")).toBeNull();
      expect(await store.getMetadata("nope", "1")).toBeNull();
      expect(await store.getModel("nope", "1")).toBeNull();
      expect(await store.listVersions("nope")).toEqual([]);
    });

    it("lists a version only when it is complete: whatever a reader sees listed during a publish reads whole", async () => {
      const files = await versionFiles("m", "1", 200_000);
      let done = false;
      const publishing = store.publish("m", "1", files).finally(() => {
        done = true;
      });
      const seen: boolean[] = [];
      while (!done) {
        const listed = (await store.listVersions("m")).includes("1");
        seen.push(listed);
        if (listed) {
          expect(await store.getMetadata("m", "1")).toBe(files.metadata);
          expect((await store.getModel("m", "1"))?.byteLength).toBe(files.model.byteLength);
        }
      }
      await publishing;
      // Once listed, always listed: a version never disappears.
      const first = seen.indexOf(true);
      if (first >= 0) expect(seen.slice(first)).not.toContain(false);
      expect(await store.listVersions("m")).toEqual(["1"]);
    });

    it("refuses to publish over an existing version with a conflict, leaving the original untouched", async () => {
      const original = await versionFiles("m", "1");
      await store.publish("m", "1", original);
      const other = await versionFiles("m", "1");
      const error = await store.publish("m", "1", other).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EdgeMLError);
      expect((error as EdgeMLError).code).toBe("conflict");
      expect(await store.getMetadata("m", "1")).toBe(original.metadata);
      expect(
        Buffer.from((await store.getModel("m", "1")) as Uint8Array).equals(Buffer.from(original.model)),
      ).toBe(true);
      expect(await store.listVersions("m")).toEqual(["1"]);
    });

    it("lets exactly one of racing publishes of one version win; the version holds the winner's files", async () => {
      const racers = await Promise.all(Array.from({ length: 6 }, () => versionFiles("raced", "1")));
      const outcomes = await Promise.allSettled(racers.map((files) => store.publish("raced", "1", files)));
      const winners = outcomes.flatMap((o, i) => (o.status === "fulfilled" ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const outcome of outcomes) {
        if (outcome.status === "rejected") expect((outcome.reason as EdgeMLError).code).toBe("conflict");
      }
      const winner = racers[winners[0] as number];
      expect(await store.getMetadata("raced", "1")).toBe(winner?.metadata);
      expect(await sha256Hex((await store.getModel("raced", "1")) as Uint8Array)).toBe(winner?.sha256);
      expect(await store.listVersions("raced")).toEqual(["1"]);
    });

    it("publishes different versions of one model concurrently", async () => {
      const files = await Promise.all(["1", "2", "3", "4"].map((v) => versionFiles("m", v)));
      await Promise.all(files.map((f, i) => store.publish("m", String(i + 1), f)));
      expect(sorted(await store.listVersions("m"))).toEqual(["1", "2", "3", "4"]);
      for (const [i, f] of files.entries())
        expect(await store.getMetadata("m", String(i + 1))).toBe(f.metadata);
    });
  });
}
