import { inCanary } from "../rollout/assign.js";
import { decideChampion, isForecastModel, type SelectionPolicy } from "../selection/policy.js";
import type { ModelPointers } from "../storage/pointers.js";
import type { VersionMetadata } from "./metadata.js";

/**
 * How a version was chosen, in the order resolution tries them. Without a champion, a forecast model under the strict
 * selection policy is served the version that beats naive with significance (`policy`), else its naive version
 * (`naive`), else, having no naive version, the best by metric as before, untested against naive (`best_unvetted`).
 */
export type Resolution =
  | "requested"
  | "pinned"
  /** A canary rollout's challenger, for the share of client keys its weight draws (src/rollout/assign.ts). */
  | "canary"
  | "champion"
  | "policy"
  | "naive"
  | "best_unvetted"
  | "best"
  | "latest";

export interface ResolveInput {
  /** A version the request names: it is served as asked (its reads decide 404 or 503). */
  requested?: string;
  pointers: ModelPointers;
  /** The versions the store lists, ascending. */
  versions: readonly string[];
  /** The metadata read so far: null for a version that cannot be read, absent for one not read yet. */
  metadata: ReadonlyMap<string, VersionMetadata | null>;
  /** The metric that picks the best version when no pointer applies, and its direction. */
  metric: string;
  higherIsBetter: boolean;
  /** SELECTION_POLICY: `strict` (default) applies the selection rule to forecast models; `best` ranks by metric. */
  policy?: SelectionPolicy;
  /** Who is asking (`x-client-id`, else the address): a canary rollout sends a stable share of keys to its challenger. */
  clientKey?: string;
}

export type ResolveOutcome =
  | { kind: "chosen"; version: string; via: Resolution }
  /** The metadata of these versions decides: read them and ask again. */
  | { kind: "needs"; versions: string[] }
  /** No version can serve: the model has none, or none whose metadata can be read (`unreadable`). */
  | { kind: "none"; unreadable: string[] };

/**
 * Which version serves: the requested one, else the pin, else a canary rollout's challenger for the clients its
 * weight draws, else the champion, else, for a forecast model under the
 * strict policy, what the selection rule chooses from the versions' metadata (src/selection/policy.ts: significant
 * against naive, else naive), else the best by metric (ties go to the newer version), else the latest. A pointer to a version the store does not list, or whose metadata cannot be
 * read, is skipped rather than failing every request.
 *
 * Pure: the same pointers, metadata and request always choose the same version, so a policy that moves pointers
 * (a later cron, canary weights) is testable without a store. It asks for metadata only as far as it needs it: a
 * pinned or champion version costs one read, not one per version.
 */
export function resolveVersion(input: ResolveInput): ResolveOutcome {
  if (input.requested !== undefined) return { kind: "chosen", version: input.requested, via: "requested" };
  const { pointers, versions, metadata } = input;
  const { rollout } = pointers;
  // No key (an internal call, the model summary) is never in a canary: it sees what everyone else is served.
  const canary =
    rollout && input.clientKey !== undefined && inCanary(rollout, input.clientKey)
      ? rollout.challenger
      : undefined;
  for (const [via, version] of [
    ["pinned", pointers.pinned],
    ["canary", canary],
    ["champion", pointers.champion],
  ] as const) {
    if (version === undefined || !versions.includes(version)) continue;
    const meta = metadata.get(version);
    if (meta === undefined) return { kind: "needs", versions: [version] };
    if (meta !== null) return { kind: "chosen", version, via };
  }
  const unread = versions.filter((version) => !metadata.has(version));
  if (unread.length > 0) return { kind: "needs", versions: unread };
  const readable = versions.flatMap((version) => metadata.get(version) ?? []);
  let unvetted = false;
  if ((input.policy ?? "strict") === "strict" && isForecastModel(readable)) {
    const decision = decideChampion({ versions: readable });
    if (decision.kind === "choose") {
      return { kind: "chosen", version: decision.version, via: decision.naive ? "naive" : "policy" };
    }
    // No naive version to serve: the best by metric as before, and the answer says it was not vetted.
    unvetted = true;
  }
  const sign = input.higherIsBetter ? 1 : -1;
  let winner: VersionMetadata | undefined;
  for (const meta of readable) {
    const value = meta.metrics[input.metric];
    if (value === undefined || !Number.isFinite(value)) continue;
    const current = winner?.metrics[input.metric];
    // Ties go to the newer version: versions are in ascending order.
    if (current === undefined || sign * value >= sign * current) winner = meta;
  }
  if (winner) return { kind: "chosen", version: winner.version, via: unvetted ? "best_unvetted" : "best" };
  const latest = readable.at(-1);
  if (latest) return { kind: "chosen", version: latest.version, via: "latest" };
  return { kind: "none", unreadable: versions.filter((version) => metadata.get(version) === null) };
}
