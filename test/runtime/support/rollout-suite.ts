import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EdgeConfigEmulatorHandle,
  startEdgeConfigEmulator,
} from "../../../scripts/dev/edge-config-emulator.js";
import type { RunningEdge, StartOptions } from "../../../scripts/edge/runtimes.js";
import { edgeConfigKeys } from "../../../src/storage/edge-config-pointers.js";
import type { ModelPointers } from "../../../src/storage/pointers.js";
import { DATA_AS_OF } from "../../support/paths.js";
import { ADMIN_TOKEN, type RuntimeFixture } from "./fixture.js";

const MODEL = "BTC-24h";
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

/**
 * Rollouts on a runtime, as deployed: the pointers (the rollout with them) in Edge Config — the local emulator,
 * written through the Vercel REST API by the admin route — and the shadow run handed to the runtime's `waitUntil`.
 * A second instance of the same bundle, so the suite's other tests keep their embedded pointers.
 */
export function describeRollouts(
  context: () => {
    bundle: string;
    fixture: RuntimeFixture;
    start: (options: StartOptions) => Promise<RunningEdge>;
  },
): void {
  describe("rollouts, with the pointers in Edge Config", () => {
    let emulator: EdgeConfigEmulatorHandle;
    let edge: RunningEdge;
    let champion: string;
    let challenger: string;
    let key: string;

    const serve = (clientId: string, asOf = DATA_AS_OF) =>
      edge.fetch("/api/ml/serve", {
        method: "POST",
        headers: { "content-type": "application/json", "x-client-id": clientId },
        body: JSON.stringify({ symbol: "BTC", horizon: "24h", as_of: asOf }),
      });
    const rollout = (init: RequestInit = {}) =>
      edge.fetch(`/api/ml/models/${MODEL}/rollout`, { ...init, headers: admin });

    beforeAll(async () => {
      const { bundle, fixture, start } = context();
      const model = await fixture.node.registry.getModel(MODEL);
      champion = model.serving?.version as string;
      challenger = model.versions.find((version) => version !== champion) as string;
      key = (await edgeConfigKeys(MODEL)).pointers;
      emulator = await startEdgeConfigEmulator({
        items: { [key]: model.pointers as Record<string, string> },
      });
      edge = await start({
        bundle,
        env: {
          ADMIN_TOKEN,
          EDGE_CONFIG: emulator.connectionString,
          VERCEL_API_TOKEN: emulator.apiToken,
          VERCEL_API_URL: emulator.url,
        },
        // Edge Config is on this machine; the market is the recorded Yahoo of the fixture.
        outbound: (request) =>
          request.url.startsWith(emulator.url) ? fetch(request) : fixture.yahoo.fetch(request),
      });
    }, 120_000);
    afterAll(async () => {
      await edge?.close();
      await emulator?.close();
    });

    it("canary: the rollout is written to Edge Config, splits clients, and each client keeps its version", async () => {
      const started = await rollout({
        method: "POST",
        body: JSON.stringify({ challenger, mode: "canary", weight: 0.5 }),
      });
      expect(started.status).toBe(201);
      const stored = emulator.items()[key] as ModelPointers;
      expect(stored.rollout).toMatchObject({ challenger, champion, mode: "canary", weight: 0.5 });

      const first = new Map<string, string>();
      for (let i = 0; i < 24; i++) {
        const res = await serve(`runtime-client-${i}`);
        expect(res.status).toBe(200);
        const version = res.headers.get("x-model-version") as string;
        expect(res.headers.get("x-chosen-via")).toBe(version === challenger ? "canary" : "champion");
        first.set(`runtime-client-${i}`, version);
      }
      expect(new Set(first.values())).toEqual(new Set([champion, challenger]));
      for (const [client, version] of first) {
        expect((await serve(client)).headers.get("x-model-version"), client).toBe(version);
      }
      const ended = await rollout({ method: "DELETE" });
      expect(ended.status).toBe(200);
      expect((emulator.items()[key] as ModelPointers).rollout).toBeUndefined();
    });

    it("shadow: the champion answers; the challenger's forecast is logged through waitUntil as shadow_of the answer", async () => {
      const started = await rollout({
        method: "POST",
        body: JSON.stringify({ challenger, mode: "shadow", weight: 1 }),
      });
      expect(started.status).toBe(201);
      const res = await serve("runtime-shadow", "2026-03-15");
      expect(res.status).toBe(200);
      const answer = await res.json();
      expect(answer.model_version).toBe(champion);
      // The shadow run finishes after the answer, in the runtime's waitUntil: asked again until it is logged. The
      // bound only ends a broken run; a working one is logged within a few requests.
      let shadow: Record<string, unknown> | undefined;
      for (let attempt = 0; attempt < 600 && !shadow; attempt++) {
        const page = await edge.fetch(`/api/ml/performance/${MODEL}/predictions?source=shadow`, {
          headers: admin,
        });
        const { items } = (await page.json()) as { items: Record<string, unknown>[] };
        shadow = items.find((item) => item.shadow_of === answer.prediction_id);
        if (!shadow) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(shadow).toMatchObject({
        prediction_id: answer.prediction_id,
        version: challenger,
        source: "shadow",
        as_of: answer.as_of,
        target_time: answer.target_time,
      });
      expect((await rollout({ method: "DELETE" })).status).toBe(200);
    }, 120_000);
  });
}
