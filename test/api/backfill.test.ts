import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RegistrationInput, VersionMetadataSchema } from "../../src/registry/metadata.js";
import { type TestApp, testApp } from "../support/app.js";
import { REPO_ROOT } from "../support/paths.js";

/** The shipped version's registration input, with or without its data cutoff. */
async function shippedInput(name: string, version: string, withCutoff = true) {
  const dir = join(REPO_ROOT, "models", name, version);
  const meta = VersionMetadataSchema.parse(JSON.parse(await readFile(join(dir, "metadata.json"), "utf8")));
  const { description, tags, metrics, feature_set, feature_names, forecast, golden, report, data_cutoff } =
    meta;
  const input: RegistrationInput = {
    description,
    tags,
    metrics,
    feature_set,
    feature_names,
    forecast,
    golden,
    report,
    ...(withCutoff && { data_cutoff }),
  };
  return { bytes: new Uint8Array(await readFile(join(dir, "model.onnx"))), input };
}

/** POST /api/ml/models/{name}/backfill: admin, validated, answered in the API's error shape. */
describe("POST /api/ml/models/{name}/backfill", () => {
  let t: TestApp;
  const backfill = (name: string, body: unknown, headers: Record<string, string> = {}) =>
    t.admin(`/api/ml/models/${name}/backfill`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    t = await testApp();
    for (const version of ["1", "2"]) {
      const { bytes, input } = await shippedInput("BTC-24h", version);
      await t.app.registry.register("BTC-24h", bytes, input);
    }
    // A forecaster registered without a data cutoff, as versions trained before it was recorded are.
    const old = await shippedInput("BTC-24h", "2", false);
    await t.app.registry.register("BTC-old", old.bytes, old.input);
  });
  afterAll(() => t.cleanup());

  it("replays, records and resolves: the summary, and the log holds backfill records", async () => {
    const res = await backfill("BTC-24h", { from: "2026-03-01", to: "2026-03-27", version: "2" });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({
      model: "BTC-24h",
      version: "2",
      chosen_via: "requested",
      data_cutoff: "2025-12-28T00:00:00.000Z",
      from: "2026-03-01T00:00:00.000Z",
      to: "2026-03-27T00:00:00.000Z",
      // as_of 03-01 .. 03-27: 27 closes, the last at the close of the CSV's second-to-last row.
      forecasts: 27,
      recorded: 27,
      resolved: 27,
      unresolved: 0,
      skipped_before_cutoff: 0,
      skipped_no_data: 0,
      first_as_of: "2026-03-01T00:00:00.000Z",
      last_as_of: "2026-03-27T00:00:00.000Z",
    });
    const { items } = await t.app.services.predictionLog.list("BTC-24h", { limit: 100 });
    expect(items).toHaveLength(27);
    expect(new Set(items.map((r) => r.source))).toEqual(new Set(["backfill"]));
    // Again: nothing new.
    const again = await (
      await backfill("BTC-24h", { from: "2026-03-01", to: "2026-03-27", version: "2" })
    ).json();
    expect(again).toMatchObject({ forecasts: 27, recorded: 0, resolved: 27 });
  });

  it("without a version, replays the one that serves", async () => {
    const serving = await t.app.registry.resolve("BTC-24h");
    const body = await (await backfill("BTC-24h", { from: "2026-03-20", to: "2026-03-21" })).json();
    // Dates are as-of instants (00:00 UTC), both ends inclusive.
    expect(body).toMatchObject({ version: serving.meta.version, chosen_via: serving.via, forecasts: 2 });
  });

  it.each([
    ["no Authorization header", {}],
    ["a wrong token", { authorization: "Bearer wrong-token-0123456789" }],
  ])("401 with %s", async (_, headers) => {
    const res = await t.request("/api/ml/models/BTC-24h/backfill", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ from: "2026-03-01", to: "2026-03-27" }),
    });
    expect(res.status).toBe(401);
    expect((await res.json()).code).toBe("unauthorized");
  });

  it.each([
    ["from after to", { from: "2026-03-27", to: "2026-03-01" }, /from must not be after to/],
    ["no to", { from: "2026-03-01" }, /to/],
    ["a malformed date", { from: "March 1st", to: "2026-03-27" }, /from/],
    ["an unknown field", { from: "2026-03-01", to: "2026-03-27", symbol: "BTC" }, /symbol/],
    ["a bad version", { from: "2026-03-01", to: "2026-03-27", version: "latest" }, /version/],
    ["more than 2000 bars", { from: "2015-01-01", to: "2026-03-27" }, /at most 2000/],
    [
      "a range wholly at or before the data cutoff",
      { from: "2025-06-01", to: "2025-12-28" },
      /at or before BTC-24h@\d+'s data_cutoff 2025-12-28T00:00:00\.000Z/,
    ],
  ])("400 invalid_request for %s", async (_, body, message) => {
    const res = await backfill("BTC-24h", body);
    expect(res.status).toBe(400);
    const error = await res.json();
    expect(error.code).toBe("invalid_request");
    expect(JSON.stringify(error)).toMatch(message);
  });

  it("404 for an unknown model or version", async () => {
    const model = await backfill("DOGE-24h", { from: "2026-03-01", to: "2026-03-27" });
    expect(model.status).toBe(404);
    expect((await model.json()).code).toBe("model_not_found");
    const version = await backfill("BTC-24h", { from: "2026-03-01", to: "2026-03-27", version: "7" });
    expect(version.status).toBe(404);
    expect((await version.json()).code).toBe("version_not_found");
  });

  it("409 for a version without data_cutoff, saying to retrain", async () => {
    const res = await backfill("BTC-old", { from: "2026-03-01", to: "2026-03-27" });
    expect(res.status).toBe(409);
    const error = await res.json();
    expect(error.code).toBe("conflict");
    expect(error.error).toMatch(/no data_cutoff.*retrain it/);
  });

  it("is in the OpenAPI document as an admin route", async () => {
    const doc = await (await t.request("/openapi.json")).json();
    const op = doc.paths["/api/ml/models/{name}/backfill"]?.post;
    expect(op.security).toEqual([{ adminToken: [] }]);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "404", "409"]));
  });

  it("shows each version's data_cutoff in the admin model detail", async () => {
    const detail = await (await t.admin("/api/ml/models/BTC-24h")).json();
    expect(detail.metadata.map((m: { data_cutoff?: string }) => m.data_cutoff)).toEqual([
      "2025-12-28T00:00:00.000Z",
      "2025-12-28T00:00:00.000Z",
    ]);
  });
});
