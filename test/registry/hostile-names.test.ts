import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESERVED_MODEL_NAMES } from "../../src/registry/metadata.js";
import { appOverFiles, onEmbeddedAdapters, postJson, upload } from "../support/app.js";
import { elementwiseModel } from "../support/onnx-models.js";
import { tempDir } from "../support/paths.js";

const add = elementwiseModel({ op: "Add", elem: "FP64", shape: ["batch", 1] });
const mul = elementwiseModel({ op: "Mul", elem: "FP64", shape: ["batch", 1] });

/**
 * The Node server's embedded layout: model folders and `pointers.json` side by side in one models directory. Each
 * call is a fresh process's app over the same directory (a restart): nothing is shared but the files.
 */
function serverOver(modelsDir: string) {
  return appOverFiles({ modelsDir, pointersFile: join(modelsDir, "pointers.json") });
}

const infer = (s: ReturnType<typeof serverOver>, name: string) =>
  postJson(s, `/v2/models/${encodeURIComponent(name)}/infer`, {
    inputs: [{ name: "x", datatype: "FP64", shape: [1, 1], data: [3] }],
  });

/** Names that are files of the models directory, Object.prototype members, routes, or just odd. */
const HOSTILE = [
  "pointers.json",
  "Pointers.JSON",
  "pointers.json.lock",
  "pointers.json.0b1c.tmp",
  "stats",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__proto__",
  "__defineGetter__",
  ".staging-x",
  "..",
  ".",
  "a%2Fb",
  "CON",
  "prototype",
  "metadata.json",
  "model.onnx",
  "m.json",
  "a..b",
  "1",
  "models",
];
/** The reserved ones that pass the name pattern (`__proto__` is refused by the pattern already: it starts with `_`). */
const RESERVED = HOSTILE.filter(
  (n) =>
    /^[A-Za-z0-9]/.test(n) &&
    (Object.hasOwn(RESERVED_MODEL_NAMES, n.toLowerCase()) || /^pointers\.json\./i.test(n)),
);

// The embedded file stores are the ones whose files can collide with names: built on them, so run once.
const embeddedOnly = describe.runIf(onEmbeddedAdapters);

embeddedOnly(
  "hostile model names: any sequence of admin calls leaves a server that starts again and serves",
  () => {
    let dir: Awaited<ReturnType<typeof tempDir>>;
    const accepted: string[] = [];
    const statuses: { call: string; status: number }[] = [];

    beforeAll(async () => {
      dir = await tempDir("edgeml-hostile-");
      const s = serverOver(dir.path);
      expect((await upload(s, "good", add)).status).toBe(201);
      expect((await upload(s, "good", mul)).status).toBe(201);
      expect((await upload(s, "sk.gbr", add)).status).toBe(201);
      // The pointer file exists from here on: a model folder of the same name could no longer be created, or read.
      expect((await s.adminPost("/api/ml/models/good/promote", { version: "1" })).status).toBe(200);
      expect((await s.adminPost("/api/ml/models/good/promote", { version: "2" })).status).toBe(200);
      expect((await s.adminPost("/api/ml/models/sk.gbr/pin", { version: "1" })).status).toBe(200);

      const record = async (call: string, response: Promise<Response>) => {
        const res = await response;
        statuses.push({ call, status: res.status });
        return res;
      };
      for (const name of HOSTILE) {
        const path = `/api/ml/models/${name}`;
        const registered = await record(`register ${name}`, upload(s, name, add));
        if (registered.status === 201) {
          accepted.push(name);
          await record(`register ${name} again`, upload(s, name, mul));
        }
        await record(`promote ${name}`, s.adminPost(`${path}/promote`, { version: "1" }));
        await record(`promote ${name} to 2`, s.adminPost(`${path}/promote`, { version: "2" }));
        await record(`pin ${name}`, s.adminPost(`${path}/pin`, { version: "1" }));
        await record(`unpin ${name}`, s.adminPost(`${path}/pin`, { version: null }));
        await record(`rollback ${name}`, s.adminPost(`${path}/rollback`, {}));
        await record(`get ${name}`, s.admin(path));
        await record(`metadata ${name}`, s.request(`/v2/models/${name}`));
        await record(`infer ${name}`, infer(s, name));
      }
    });
    afterAll(() => dir?.cleanup());

    it("no call answered a 5xx", () => {
      expect(statuses.filter((s) => s.status >= 500)).toEqual([]);
    });

    it("reserved names are refused with a 400 that names the reserved names and why", async () => {
      const s = serverOver(dir.path);
      expect(RESERVED.length).toBeGreaterThan(10);
      for (const name of RESERVED) {
        expect(accepted).not.toContain(name);
        const res = await upload(s, name, add);
        expect(res.status, name).toBe(400);
        const body = await res.json();
        expect(body.code).toBe("invalid_request");
        expect(body.error).toMatch(
          /is a reserved model name \(.+\); pick another\. Reserved, in any case: .*pointers\.json.*stats/,
        );
      }
    });

    it("the registry itself refuses reserved names too (the trainer and the CLI call it directly)", async () => {
      const s = serverOver(dir.path);
      for (const name of ["pointers.json", "constructor", "stats", "__proto__"]) {
        await expect(s.registry.register(name, add)).rejects.toMatchObject({
          code: "invalid_request",
          status: 400,
        });
      }
    });

    it("names with dots, digits and file-like names that collide with nothing are registered", () => {
      expect(accepted).toEqual(
        expect.arrayContaining(["prototype", "metadata.json", "model.onnx", "m.json", "a..b", "1", "models"]),
      );
    });

    it("after a restart every model lists, keeps its pointers and serves", async () => {
      const s = serverOver(dir.path);
      // The Node server lists the models for its banner before it listens: that must work too.
      const names = (await s.registry.listModels()).map((m) => m.name);
      expect(names).toEqual([...new Set(["good", "sk.gbr", ...accepted])].sort());
      const listed = await s.admin("/api/ml/models");
      expect(listed.status).toBe(200);
      expect((await listed.json()).models.map((m: { name: string }) => m.name)).toEqual(names);
      const good = await infer(s, "good");
      expect(good.status).toBe(200);
      expect(good.headers.get("x-model-version")).toBe("2");
      const pinned = await infer(s, "sk.gbr");
      expect(pinned.status).toBe(200);
      expect(pinned.headers.get("x-model-version")).toBe("1");
      for (const name of accepted) {
        const res = await infer(s, name);
        expect(res.status, name).toBe(200);
      }
      expect((await s.request("/v2/health/ready")).status).toBe(200);
    });

    it("nothing but model folders and the pointer file is left in the models directory", async () => {
      const entries = await readdir(dir.path);
      expect(entries.sort()).toEqual(["pointers.json", ...new Set(["good", "sk.gbr", ...accepted])].sort());
    });
  },
);

embeddedOnly("a damaged registry still lets the server start", () => {
  it("with folders and pointer entries an older version let in (`constructor`, `__proto__`): the others serve", async () => {
    const dir = await tempDir("edgeml-legacy-");
    try {
      const s = serverOver(dir.path);
      expect((await upload(s, "good", add)).status).toBe(201);
      expect((await upload(s, "good", mul)).status).toBe(201);
      expect((await s.adminPost("/api/ml/models/good/promote", { version: "1" })).status).toBe(200);
      // What the old code left: a model folder named `constructor`, and pointer entries keyed by prototype names.
      await cp(join(dir.path, "good", "1"), join(dir.path, "constructor", "1"), { recursive: true });
      const file = join(dir.path, "pointers.json");
      const doc = JSON.parse(await readFile(file, "utf8"));
      await writeFile(
        file,
        JSON.stringify({ ...doc, models: { ...doc.models } }).replace(
          '"models":{',
          '"models":{"__proto__":{"champion":"9"},"constructor":{"champion":"1"},"toString":{"pinned":"1"},',
        ),
      );
      const restarted = serverOver(dir.path);
      const models = await restarted.registry.listModels();
      expect(models.map((m) => m.name)).toEqual(["constructor", "good"]);
      expect(models[0]).toMatchObject({
        serving: null,
        unreadable: [{ version: "1", reason: expect.stringMatching(/metadata\.json/) }],
      });
      const res = await infer(restarted, "good");
      expect(res.status).toBe(200);
      expect(res.headers.get("x-model-version")).toBe("1");
      // The next change rewrites the file with the odd entries kept as data.
      expect((await restarted.adminPost("/api/ml/models/good/promote", { version: "2" })).status).toBe(200);
      const after = JSON.parse(await readFile(file, "utf8"));
      expect(Object.hasOwn(after.models, "__proto__")).toBe(true);
      expect(after.models.good).toEqual({ champion: "2" });
    } finally {
      await dir.cleanup();
    }
  });

  it("with a truncated pointer file: the app builds, listing and infer are 503 registry_unavailable", async () => {
    const dir = await tempDir("edgeml-damaged-");
    try {
      const s = serverOver(dir.path);
      expect((await upload(s, "good", add)).status).toBe(201);
      expect((await s.adminPost("/api/ml/models/good/promote", { version: "1" })).status).toBe(200);
      await writeFile(join(dir.path, "pointers.json"), '{"models": {"good": {"champ');
      const restarted = serverOver(dir.path);
      await expect(restarted.registry.listModels()).rejects.toMatchObject({ code: "registry_unavailable" });
      const res = await infer(restarted, "good");
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.code).toBe("registry_unavailable");
      expect(body.error).toMatch(/the pointer file \(pointers\.json\) cannot be read: it is not valid JSON/);
      expect(body.error).not.toContain(dir.path);
      expect((await restarted.admin("/api/ml/models")).status).toBe(503);
    } finally {
      await dir.cleanup();
    }
  });
});
