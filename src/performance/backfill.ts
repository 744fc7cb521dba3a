/**
 * Backfill: a version's forecasts replayed over history as if served at each bar's close, recorded in the prediction
 * log as `backfill` and resolved at once against the bar that closes at the target time. Only over bars that close
 * after the version's `data_cutoff`: what it was fitted, tuned or selected on is in sample, and a figure over it
 * would flatter the model. This is how the offline demo and the tests get real resolved outcomes from the CSVs.
 */
import { Tensor } from "onnxruntime-web/wasm";
import { z } from "zod";
import { EdgeMLError } from "../errors.js";
import { computeFeatures, FEATURE_NAMES, knownFeatureSet, MIN_HISTORY } from "../features/index.js";
import { firstBreak, INTERVAL_MS, isoTime } from "../market/symbols.js";
import type { Bar, MarketDataSource } from "../market/types.js";
import { ModelNameSchema, type VersionMetadata, VersionSchema } from "../registry/metadata.js";
import type { Registry } from "../registry/registry.js";
import {
  outcomeFor,
  type PredictionEntry,
  type PredictionLog,
  type PredictionResolution,
} from "../storage/prediction-log.js";

/**
 * Most as-of bars one call replays: 2000 daily bars are five and a half years, 2000 hourly ones twelve weeks. It bounds
 * one call's work (a market read, one batched model run, a few log writes) so that an admin request finishes well
 * inside a function's time limit; a longer history is several calls, and reruns cost nothing (records are keyed).
 */
export const MAX_BACKFILL_BARS = 2_000;

/** Records written per log call: an Upstash pipeline of 250 records is about 150 KB, well under its request limit. */
const RECORD_CHUNK = 250;

/**
 * A range end as a client writes it: a date (YYYY-MM-DD), which is that day's 00:00 UTC, or an ISO 8601 date-time.
 * Both ends are inclusive and name as-of instants (bar closes): a daily forecast as of 2026-03-27 is made at the
 * close of the bar dated 2026-03-26, so `--from 2026-01-27 --to 2026-03-27` replays the 60 forecasts dated so.
 */
const rangeEnd = z.union([
  z.iso.date().transform((day) => Date.parse(`${day}T00:00:00Z`)),
  z.iso.datetime({ offset: true }).transform((instant) => Date.parse(instant)),
]);

const RangeFields = {
  from: rangeEnd.describe(
    "Earliest as-of (bar close) replayed, inclusive: a date (its 00:00 UTC) or an ISO 8601 date-time",
  ),
  to: rangeEnd.describe(
    "Latest as-of (bar close) replayed, inclusive: a date (its 00:00 UTC) or an ISO 8601 date-time",
  ),
  version: VersionSchema.optional().describe("The version replayed; default the one that serves now"),
};
const inOrder = { message: "from must not be after to", path: ["to"] };

/** The body of `POST /api/ml/models/{name}/backfill`. */
export const BackfillRangeSchema = z
  .object(RangeFields)
  .strict()
  .refine((range) => range.from <= range.to, inOrder);

export const BackfillRequestSchema = z
  .object({ model: ModelNameSchema, ...RangeFields })
  .strict()
  .refine((range) => range.from <= range.to, inOrder);
export type BackfillRequest = z.input<typeof BackfillRequestSchema>;

/** What one backfill call did. Counts are of as-of bars in the range. */
export interface BackfillSummary {
  model: string;
  version: string;
  /** How the version was chosen: `requested` when the call named it, else how the registry resolved it. */
  chosen_via: string;
  /** Null for the naive baseline, which was fitted on nothing. */
  data_cutoff: string | null;
  /** The range as asked, ISO 8601 UTC. */
  from: string;
  to: string;
  /** Forecasts computed (each recorded, or found recorded by an earlier call). */
  forecasts: number;
  /** Records the log did not hold yet. */
  recorded: number;
  /** Forecasts with an outcome: the source has the bar that closes at their target time. */
  resolved: number;
  /** Forecasts whose target bar the source does not have yet: the resolver picks them up when it does. */
  unresolved: number;
  /** As-of bars in the range at or before `data_cutoff`: in sample, never replayed. */
  skipped_before_cutoff: number;
  /** As-of bars after the cutoff the source cannot forecast from: no bar closes there yet, or a gap in the history. */
  skipped_no_data: number;
  /** As-of of the first and last forecast, or null when there was none. */
  first_as_of: string | null;
  last_as_of: string | null;
}

export interface BackfillDeps {
  registry: Pick<Registry, "resolve" | "infer">;
  market: MarketDataSource;
  predictionLog: PredictionLog;
  /** Deadline of the one batched model run, ms. */
  timeoutMs: number;
  now?: () => Date;
}

function invalid(message: string): EdgeMLError {
  return new EdgeMLError("invalid_request", message);
}

function parseRequest(request: BackfillRequest) {
  const parsed = BackfillRequestSchema.safeParse(request);
  if (!parsed.success) {
    throw new EdgeMLError(
      "invalid_request",
      `backfill request is not valid: ${z.prettifyError(parsed.error)}`,
      {
        details: parsed.error.issues,
      },
    );
  }
  return parsed.data;
}

/** The version to replay, checked: a forecaster on a feature set this server computes, with a data cutoff. */
async function versionToReplay(registry: BackfillDeps["registry"], model: string, version?: string) {
  const { meta, via } = await registry.resolve(model, version);
  const id = `${meta.name}@${meta.version}`;
  const spec = meta.forecast;
  if (!spec || !meta.feature_set) {
    throw new EdgeMLError(
      "conflict",
      `${id} is not a forecaster (its metadata has no forecast spec): backfill replays the forecasters that \`npm run train\` makes`,
    );
  }
  if (!knownFeatureSet(meta.feature_set.name, meta.feature_set.version)) {
    throw new EdgeMLError(
      "conflict",
      `${id} was trained on feature set ${meta.feature_set.name} v${meta.feature_set.version}, which this server does not compute; retrain it`,
    );
  }
  const input = meta.signature.inputs[0];
  const output = meta.signature.outputs[0];
  if (!input || !output || input.shape.at(-1) !== FEATURE_NAMES.length) {
    throw new EdgeMLError("conflict", `${id} does not take ${FEATURE_NAMES.length} features`);
  }
  // The naive baseline learned nothing from any bar (it holds the last close flat): every bar is out of sample.
  const learnsNothing = meta.tags?.family === "naive";
  if (!meta.data_cutoff && !learnsNothing) {
    throw new EdgeMLError(
      "conflict",
      `${id} has no data_cutoff in its metadata, so which bars it never saw is unknown and a backfill could replay its own training data; retrain it (\`npm run train -- ${spec.symbol} --until <date>\` or POST /api/ml/train) to record one`,
    );
  }
  return {
    meta,
    spec,
    input: input.name,
    output: output.name,
    cutoff: learnsNothing || !meta.data_cutoff ? Number.NEGATIVE_INFINITY : Date.parse(meta.data_cutoff),
    chosenVia: version === undefined ? via : "requested",
  };
}

/**
 * The backfill service (`services.backfill`): `run` replays one version over a range of as-of instants. Each forecast
 * is what `POST /api/ml/serve` would have answered at that bar's close: the same feature code on the MIN_HISTORY bars
 * closed by then, `as_of` the last bar's close, `target_time` as_of + horizon; the rows run through the registry as
 * one batch. Prediction ids are `bf-<version>-<as_of ms>`, so a rerun records nothing twice.
 */
export function createBackfillService(deps: BackfillDeps) {
  const now = deps.now ?? (() => new Date());

  return {
    async run(request: BackfillRequest): Promise<BackfillSummary> {
      const { model, version, from, to } = parseRequest(request);
      const chosen = await versionToReplay(deps.registry, model, version);
      const { meta, spec, cutoff } = chosen;
      const step = INTERVAL_MS[spec.interval];
      const horizonMs = spec.horizon_bars * step;

      // As-of instants are bar closes, on the interval's UTC grid; none is later than now.
      const first = Math.ceil(from / step) * step;
      const last = Math.floor(Math.min(to, now().getTime()) / step) * step;
      const inRange = last >= first ? (last - first) / step + 1 : 0;
      if (inRange > MAX_BACKFILL_BARS) {
        throw invalid(
          `the range holds ${inRange} ${spec.interval} bars; a backfill call replays at most ${MAX_BACKFILL_BARS}: split it into several calls (reruns record nothing twice)`,
        );
      }
      const start = Math.max(first, Math.floor(cutoff / step) * step + step);
      const skippedBeforeCutoff = Math.min(inRange, Math.max(0, (start - first) / step));
      if (inRange > 0 && start > last) {
        throw invalid(
          `every bar in the range closes at or before ${meta.name}@${meta.version}'s data_cutoff ${isoTime(cutoff)}: the version was fitted, tuned or selected on them; ask for a range after it`,
        );
      }

      const asOfs: number[] = [];
      for (let t = start; t <= last; t += step) asOfs.push(t);
      const bars = asOfs.length === 0 ? [] : await historyFor(deps.market, spec, start, last + horizonMs);
      const index = new Map<number, number>(bars.map((bar, i) => [bar.time + step, i]));

      // The rows serving would have computed: for each as-of, the bars closed by then, ending at the bar closing there.
      const made: { asOf: number; bars: Bar[] }[] = [];
      for (const asOf of asOfs) {
        const i = index.get(asOf);
        if (i === undefined || i < MIN_HISTORY - 1) continue;
        const window = bars.slice(i - MIN_HISTORY + 1, i + 1);
        // Serving refuses a history with a gap (the windows count bars); so does its replay.
        if (firstBreak(window, spec.interval) > 0) continue;
        made.push({ asOf, bars: window });
      }

      const entries = await forecastsOf(deps, chosen, made);
      let recorded = 0;
      for (let i = 0; i < entries.length; i += RECORD_CHUNK) {
        recorded += await deps.predictionLog.record(entries.slice(i, i + RECORD_CHUNK));
      }

      const resolvedAt = now();
      const resolutions: PredictionResolution[] = [];
      for (const entry of entries) {
        const target = Date.parse(entry.target_time);
        const bar = bars[index.get(target) ?? -1];
        if (!bar) continue;
        const actual = { price: bar.close, time: isoTime(target) };
        resolutions.push({
          prediction_id: entry.prediction_id,
          version: entry.version,
          outcome: outcomeFor(entry, actual, resolvedAt),
        });
      }
      for (let i = 0; i < resolutions.length; i += RECORD_CHUNK) {
        // Final per record: a rerun's resolutions are no-ops, and an earlier outcome stays as it was.
        await deps.predictionLog.resolve(meta.name, resolutions.slice(i, i + RECORD_CHUNK));
      }

      return {
        model: meta.name,
        version: meta.version,
        chosen_via: chosen.chosenVia,
        data_cutoff: Number.isFinite(cutoff) ? isoTime(cutoff) : null,
        from: isoTime(from),
        to: isoTime(to),
        forecasts: entries.length,
        recorded,
        resolved: resolutions.length,
        unresolved: entries.length - resolutions.length,
        skipped_before_cutoff: skippedBeforeCutoff,
        skipped_no_data: asOfs.length - entries.length,
        first_as_of: entries[0]?.as_of ?? null,
        last_as_of: entries.at(-1)?.as_of ?? null,
      };
    },
  };
}

export type BackfillService = ReturnType<typeof createBackfillService>;

/**
 * One market read for the whole range: the MIN_HISTORY bars before its first as-of through the bar closing at its
 * last target (or the source's last bar, when the range runs past its data).
 */
async function historyFor(
  market: MarketDataSource,
  spec: NonNullable<VersionMetadata["forecast"]>,
  firstAsOf: number,
  lastTarget: number,
): Promise<Bar[]> {
  const step = INTERVAL_MS[spec.interval];
  // Never before the source's first bar: the range starts after the data cutoff, which is inside the history.
  const limit = (lastTarget - firstAsOf) / step + MIN_HISTORY;
  return market.getBars(spec.symbol, spec.interval, { end: new Date(lastTarget), limit });
}

/** The forecasts of `made`, from one batched run of the version: the log's entries, ascending by as-of. */
async function forecastsOf(
  deps: BackfillDeps,
  chosen: Awaited<ReturnType<typeof versionToReplay>>,
  made: { asOf: number; bars: Bar[] }[],
): Promise<PredictionEntry[]> {
  if (made.length === 0) return [];
  const { meta, spec } = chosen;
  const width = FEATURE_NAMES.length;
  const features = new Float64Array(made.length * width);
  made.forEach((row, r) => {
    features.set(computeFeatures(row.bars, row.bars.length - 1), r * width);
  });
  const outputs = await deps.registry.infer(
    meta,
    { [chosen.input]: new Tensor("float64", features, [made.length, width]) },
    [chosen.output],
    deps.timeoutMs,
  );
  const data = outputs[chosen.output]?.data;
  const horizonMs = spec.horizon_bars * INTERVAL_MS[spec.interval];
  return made.map((row, r): PredictionEntry => {
    const logReturn = Number(data?.[r]);
    if (!Number.isFinite(logReturn)) {
      throw new EdgeMLError(
        "model_unavailable",
        `${meta.name}@${meta.version} returned ${logReturn} for the forecast as of ${isoTime(row.asOf)}`,
      );
    }
    const last = row.bars.at(-1) as Bar;
    const asOf = isoTime(row.asOf);
    return {
      prediction_id: `bf-${meta.version}-${row.asOf}`,
      model: meta.name,
      version: meta.version,
      symbol: spec.symbol,
      horizon: spec.horizon,
      as_of: asOf,
      target_time: isoTime(row.asOf + horizonMs),
      last_close: last.close,
      predicted_price: last.close * Math.exp(logReturn),
      predicted_log_return: logReturn,
      // As if served at the bar's close: the earliest a live request could have had this forecast.
      served_at: asOf,
      chosen_via: chosen.chosenVia,
      source: "backfill",
    };
  });
}
