import { isEdgeMLError } from "../errors.js";
import { knownFeatureSet } from "../features/index.js";
import { outageReporter } from "../logger.js";
import type { VersionMetadata } from "../registry/metadata.js";
import { type Deadline, deadlineIn, type Registry } from "../registry/registry.js";
import type { Rollout } from "../storage/pointers.js";
import type { PredictionEntry, PredictionLog } from "../storage/prediction-log.js";
import type { ServeObserver } from "../telemetry/recorder.js";
import { CANARY_BUCKETS, canaryBucket } from "./assign.js";

/** The challenger's forecast on the answer's features: what the forecaster computes for a given version. */
export type ChallengerForecast = (
  challenger: VersionMetadata,
  deadline: Deadline,
) => Promise<Pick<PredictionEntry, "predicted_price" | "predicted_log_return" | "as_of" | "target_time">>;

export interface ShadowDeps {
  registry: Pick<Registry, "resolve">;
  predictionLog: PredictionLog;
  /** Hands the shadow run to the runtime after the answer: `waitUntil` on the edge, a tracked promise on Node. */
  defer: (work: Promise<unknown>) => void;
  warn: (message: string, error: unknown) => void;
  observer?: Pick<ServeObserver, "shadowDropped">;
  /** Runs waiting for or running on the engine now (EngineStats.queued). */
  queueDepth: () => number;
  /** SHADOW_MAX_QUEUE_DEPTH: deeper than this, a shadow run is dropped and counted. */
  maxQueueDepth: number;
  timeoutMs: number;
  /** A mirror of a replay is due at once, like the replay: resolved by the performance tracker right away. */
  onReplayRecorded?: (entry: PredictionEntry) => Promise<void>;
  now: () => Date;
}

/**
 * Whether a shadow rollout mirrors this answer: the champion it compares against made it, and the answer's bucket
 * (a stable hash of rollout id and prediction id) falls in the weight's share, so a retry never changes the draw.
 */
export function mirrors(rollout: Rollout | undefined, served: PredictionEntry): rollout is Rollout {
  if (rollout?.mode !== "shadow" || served.version === rollout.challenger) return false;
  if (rollout.champion !== null && served.version !== rollout.champion) return false;
  return canaryBucket(rollout.id, served.prediction_id) < Math.round(rollout.weight * CANARY_BUCKETS);
}

/**
 * Shadow forecasts of a rollout: when the champion makes a forecast (once per prediction id, inside the forecaster's
 * single flight; a cached copy is the same forecast and is not mirrored again), the challenger runs on the same bars
 * off the response path, and its forecast is logged as `shadow` with `shadow_of` the answer's prediction id (and the
 * same prediction id: the log keys records by prediction id and version, so both sit under one id). It is never
 * returned and never awaited by the answer.
 *
 * Dropped, and counted (`edgeml_shadow_dropped_total{reason="queue_depth"}`), when the engine already has more than
 * `maxQueueDepth` runs waiting or running: mirrors yield to answers by a depth, not a time, so the rule does not
 * depend on how fast the machine is. A failure (challenger unreadable, archived, the log down) is warned about
 * once until a mirror succeeds again, and counted (`reason="failed"`); it never rejects unobserved.
 */
export function createShadowRunner(deps: ShadowDeps) {
  const outage = outageReporter(
    deps.warn,
    "shadow forecasts",
    "answers are unaffected, mirrors are not logged",
  );

  const run = async (
    rollout: Rollout,
    served: PredictionEntry,
    source: string,
    forecast: ChallengerForecast,
  ) => {
    const deadline = deadlineIn(deps.timeoutMs);
    // The registry refuses an archived challenger (410) and reads its metadata as any request would.
    const { meta } = await deps.registry.resolve(served.model, rollout.challenger, deadline);
    if (!meta.feature_set || !knownFeatureSet(meta.feature_set.name, meta.feature_set.version)) {
      throw new Error(`${served.model}@${meta.version} does not take the features this server computes`);
    }
    const made = await forecast(meta, deadline);
    if (made.as_of !== served.as_of || made.target_time !== served.target_time) {
      throw new Error(
        `${served.model}@${rollout.challenger} forecasts another bar (${made.target_time}) than the champion (${served.target_time}): not comparable`,
      );
    }
    const entry: PredictionEntry = {
      ...served,
      version: meta.version,
      predicted_price: made.predicted_price,
      predicted_log_return: made.predicted_log_return,
      served_at: deps.now().toISOString(),
      chosen_via: "shadow",
      source: "shadow",
      shadow_of: served.prediction_id,
    };
    await deps.predictionLog.record([entry]);
    if (source === "replay") await deps.onReplayRecorded?.(entry);
  };

  return {
    /**
     * Mirrors `served` (the log entry of the answer just made) when its rollout says so. Synchronous and cheap on the
     * response path: a hash and a depth check; the run itself goes to `defer`.
     */
    mirror(rollout: Rollout | undefined, served: PredictionEntry, forecast: ChallengerForecast): void {
      if (!mirrors(rollout, served)) return;
      if (deps.queueDepth() > deps.maxQueueDepth) {
        deps.observer?.shadowDropped(served.model, "queue_depth");
        return;
      }
      const source = served.source;
      deps.defer(
        run(rollout, served, source, forecast).then(
          () => outage.succeeded(),
          (error: unknown) => {
            outage.failed(isEdgeMLError(error) ? error.message : error);
            deps.observer?.shadowDropped(served.model, "failed");
          },
        ),
      );
    },
  };
}

export type ShadowRunner = ReturnType<typeof createShadowRunner>;
