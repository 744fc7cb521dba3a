import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { inCanary } from "../../src/rollout/assign.js";
import { DATA_AS_OF } from "../support/paths.js";
import { MODEL, type RolloutApp, rolloutApp } from "./serving-app.js";

/**
 * A canary rollout on the shipped BTC-24h (champion v3 naive, challenger v2 ridge) over the shipped CSVs: the
 * challenger serves the share of clients its weight draws, each client keeps its version, and answers say so.
 */
describe("canary rollout at weight 0.2: 2,000 clients", () => {
  let t: RolloutApp;
  let rolloutId: string;
  const clients = Array.from({ length: 2_000 }, (_, i) => `client-${i}`);
  const first = new Map<string, string>();

  beforeAll(async () => {
    t = await rolloutApp();
    // A fixed rollout id, so the share drawn is the same on every run (387 of 2,000 clients: 19.35 %).
    vi.spyOn(globalThis.crypto, "randomUUID").mockReturnValueOnce("00000000-0000-4000-8000-000000000001");
    const res = await t.startRollout({ challenger: "2", mode: "canary", weight: 0.2 });
    expect(res.status).toBe(201);
    rolloutId = (await res.json()).rollout.id;
    for (const client of clients) {
      const answer = await t.serve(client);
      expect(answer.status).toBe(200);
      first.set(client, answer.headers.get("x-model-version") as string);
    }
    await t.work.settled();
  }, 300_000);
  afterAll(() => t.cleanup());

  it("the challenger serves 20 % ± 3 % of the client ids", () => {
    const challenger = [...first.values()].filter((version) => version === "2").length;
    expect(rolloutId).toBe("00000000-0000-4000-8000-000000000001");
    expect(challenger).toBe(387);
    expect(Math.abs(challenger / clients.length - 0.2)).toBeLessThanOrEqual(0.03);
    // Every other client gets the champion: nothing else serves.
    expect(new Set(first.values())).toEqual(new Set(["2", "3"]));
  });

  it("each client's version is the one the hash of rollout id and client id assigns", () => {
    for (const client of clients) {
      const expected = inCanary({ id: rolloutId, mode: "canary", weight: 0.2 }, client) ? "2" : "3";
      expect(first.get(client)).toBe(expected);
    }
  });

  it("every client id gets the same version on a second request", async () => {
    for (const client of clients) {
      const again = await t.serve(client);
      expect(again.headers.get("x-model-version"), client).toBe(first.get(client));
    }
  }, 300_000);

  it("the answer and its header say how the version was chosen: canary or champion", async () => {
    const canaryClient = clients.find((c) => first.get(c) === "2") as string;
    const championClient = clients.find((c) => first.get(c) === "3") as string;
    const canary = await t.serve(canaryClient);
    expect(canary.headers.get("x-chosen-via")).toBe("canary");
    expect(await canary.json()).toMatchObject({ model_version: "2", chosen_via: "canary" });
    const champion = await t.serve(championClient);
    expect(champion.headers.get("x-chosen-via")).toBe("champion");
    expect(await champion.json()).toMatchObject({ model_version: "3", chosen_via: "champion" });
  });

  it("the prediction log records the challenger's forecast as chosen via canary, once per forecast made", async () => {
    await t.work.settled();
    const v2 = (await t.log.list(MODEL, { version: "2" })).items;
    const v3 = (await t.log.list(MODEL, { version: "3" })).items;
    // One forecast per version and as-of bar: the cache key carries the version, so the two never share one.
    expect(v2).toHaveLength(1);
    expect(v2[0]).toMatchObject({ chosen_via: "canary", source: "replay" });
    expect(v3).toHaveLength(1);
    expect(v3[0]).toMatchObject({ chosen_via: "champion", source: "replay" });
    expect(v2[0]?.prediction_id).not.toBe(v3[0]?.prediction_id);
  });

  it("a request without any client key (no id, no address) gets the champion", async () => {
    const canaryClient = clients.find((c) => first.get(c) === "2") as string;
    const anonymous = await t.serve();
    expect(anonymous.headers.get("x-model-version")).toBe("3");
    expect((await t.serve(canaryClient)).headers.get("x-model-version")).toBe("2");
  });

  it.each([
    ["over 128 characters", "x".repeat(129)],
    ["a control character", "a\u0001b"],
  ])("an x-client-id %s is refused 400 invalid_request", async (_, id) => {
    const res = await t.serve(id);
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe("invalid_request");
  });
});

describe("canary client key without x-client-id: the address as the rate limiter sees it", () => {
  let t: RolloutApp;
  beforeAll(async () => {
    // The platform's client-address header, as the Vercel wiring reads x-real-ip.
    t = await rolloutApp({ clientKey: (c) => c.req.header("x-test-address") });
    expect((await t.startRollout({ challenger: "2", mode: "canary", weight: 0.5 })).status).toBe(201);
  }, 120_000);
  afterAll(() => t.cleanup());

  it("addresses split between the versions, each address keeps its own, and x-client-id overrides it", async () => {
    const seen = new Map<string, string>();
    for (let i = 0; i < 40; i++) {
      const address = `203.0.113.${i}`;
      const res = await t.serve(undefined, DATA_AS_OF, { "x-test-address": address });
      seen.set(address, res.headers.get("x-model-version") as string);
    }
    expect(new Set(seen.values())).toEqual(new Set(["2", "3"]));
    for (const [address, version] of seen) {
      const again = await t.serve(undefined, DATA_AS_OF, { "x-test-address": address });
      expect(again.headers.get("x-model-version")).toBe(version);
    }
    // The same address under two client ids: each id decides, not the address.
    const ids = Array.from({ length: 40 }, (_, i) => `id-${i}`);
    const versions = new Set<string>();
    for (const id of ids) {
      const res = await t.serve(id, DATA_AS_OF, { "x-test-address": "203.0.113.1" });
      versions.add(res.headers.get("x-model-version") as string);
    }
    expect(versions).toEqual(new Set(["2", "3"]));
  });
});
