import { z } from "zod";
import { EdgeMLError } from "../errors.js";
import { pointersUnavailable } from "../registry/failures.js";
import type { VersionMetadata } from "../registry/metadata.js";
import type { Registry } from "../registry/registry.js";
import type { AuditEntry, ModelPointers, PointerStore, Rollout } from "../storage/pointers.js";

/** The body of `POST /api/ml/models/{name}/rollout`. */
export const StartRolloutSchema = z
  .object({
    challenger: z.string().min(1).max(64).describe("The version rolled out beside the serving one"),
    mode: z
      .enum(["canary", "shadow"])
      .describe(
        "canary: a stable share of clients is served the challenger; shadow: the champion answers and the challenger's forecast is only logged",
      ),
    weight: z
      .number()
      .min(0, "weight is a fraction from 0 to 1")
      .max(1, "weight is a fraction from 0 to 1")
      .describe(
        "canary: the share of clients served the challenger; shadow: the share of forecasts mirrored",
      ),
    min_outcomes: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Resolved outcomes each version needs before a decision; default ROLLOUT_MIN_OUTCOMES"),
    max_duration_seconds: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("The rollout is ended undecided after this long; default ROLLOUT_MAX_DURATION_SECONDS"),
    reason: z.string().max(500).optional(),
  })
  .strict();
export type StartRollout = z.infer<typeof StartRolloutSchema>;

export interface RolloutControlDeps {
  pointers: PointerStore;
  registry: Pick<Registry, "resolve" | "versionNames">;
  defaults: { minOutcomes: number; maxDurationSeconds: number };
  now: () => Date;
  /** A fresh rollout id: the canary hash is salted with it. */
  newId?: () => string;
}

const noRollout = (model: string) =>
  new EdgeMLError(
    "no_rollout",
    `'${model}' has no rollout running; start one with POST /api/ml/models/${model}/rollout {"challenger", "mode", "weight"}`,
  );

/** The challenger must forecast what the champion forecasts: the same symbol, bar interval and horizon. */
function assertComparable(model: string, champion: VersionMetadata, challenger: VersionMetadata): void {
  const a = champion.forecast;
  const b = challenger.forecast;
  if (a && (!b || a.symbol !== b.symbol || a.interval !== b.interval || a.horizon_bars !== b.horizon_bars)) {
    throw new EdgeMLError(
      "invalid_request",
      `${model}@${challenger.version} does not forecast what ${champion.version} does (symbol, interval and horizon must match): its outcomes could not be compared`,
    );
  }
}

/**
 * Starting, reading and ending a model's rollout (`…/rollout`, `npm run cli -- rollout`). Every change goes through
 * the pointer store's `update` (the model's lock) with its audit entry, so a rollout started twice at once is one
 * rollout and a 409, and its history sits with the promotions in the audit log.
 */
export function createRolloutControl(deps: RolloutControlDeps) {
  const newId = deps.newId ?? (() => crypto.randomUUID());

  const update = async (
    model: string,
    decide: (current: ModelPointers) => { pointers: ModelPointers; entry: Omit<AuditEntry, "at" | "model"> },
  ): Promise<AuditEntry> => {
    try {
      const { entry } = await deps.pointers.update(model, (current) => {
        const next = decide(current);
        return { pointers: next.pointers, entry: { at: deps.now().toISOString(), model, ...next.entry } };
      });
      return entry;
    } catch (error) {
      throw pointersUnavailable(error);
    }
  };

  return {
    /** Starts a rollout of `challenger` against the version serving now. */
    async start(model: string, input: StartRollout): Promise<{ rollout: Rollout; change: AuditEntry }> {
      // The serving version (no client key: what everyone gets) is what the challenger is compared against.
      const serving = await deps.registry.resolve(model);
      // A version the model does not have is a 404, an archived one a 410 (the registry's own answers).
      const challenger = await deps.registry.resolve(model, input.challenger);
      if (challenger.meta.version === serving.meta.version) {
        throw new EdgeMLError(
          "invalid_request",
          `${model}@${input.challenger} is the version serving now; roll out another version against it`,
        );
      }
      assertComparable(model, serving.meta, challenger.meta);
      const rollout: Rollout = {
        id: newId(),
        challenger: challenger.meta.version,
        champion: serving.meta.version,
        mode: input.mode,
        weight: input.weight,
        started_at: deps.now().toISOString(),
        min_outcomes: input.min_outcomes ?? deps.defaults.minOutcomes,
        max_duration_seconds: input.max_duration_seconds ?? deps.defaults.maxDurationSeconds,
      };
      const change = await update(model, (current) => {
        if (current.rollout) {
          throw new EdgeMLError(
            "conflict",
            `'${model}' already has a ${current.rollout.mode} rollout of version ${current.rollout.challenger} (id ${current.rollout.id}); end it with DELETE /api/ml/models/${model}/rollout first`,
          );
        }
        if (current.pinned !== undefined) {
          throw new EdgeMLError(
            "conflict",
            `'${model}' is pinned to version ${current.pinned}, which every request gets: a rollout would never be served nor compared; unpin it first`,
          );
        }
        return {
          pointers: { ...current, rollout },
          entry: {
            action: "rollout_start",
            from: rollout.champion,
            to: rollout.challenger,
            reason: input.reason ?? `${rollout.mode} at weight ${rollout.weight}`,
            rollout_id: rollout.id,
          },
        };
      });
      return { rollout, change };
    },

    /** The running rollout, fresh from the store; a 404 `no_rollout` when there is none. */
    async get(model: string): Promise<{ rollout: Rollout; pointers: ModelPointers }> {
      await deps.registry.versionNames(model);
      const pointers = await deps.pointers.get(model).catch((error: unknown) => {
        throw pointersUnavailable(error);
      });
      if (!pointers.rollout) throw noRollout(model);
      return { rollout: pointers.rollout, pointers };
    },

    /** Ends the running rollout: nothing is promoted, the champion keeps serving every client. */
    async stop(
      model: string,
      reason = "stopped by admin",
    ): Promise<{ rollout: Rollout; change: AuditEntry }> {
      await deps.registry.versionNames(model);
      let ended: Rollout | undefined;
      const change = await update(model, ({ rollout, ...rest }) => {
        if (!rollout) throw noRollout(model);
        ended = rollout;
        return {
          pointers: rest,
          entry: {
            action: "rollout_end",
            from: rollout.challenger,
            to: rollout.champion,
            reason,
            rollout_id: rollout.id,
          },
        };
      });
      return { rollout: ended as Rollout, change };
    },
  };
}

export type RolloutControl = ReturnType<typeof createRolloutControl>;
