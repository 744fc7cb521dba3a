import { createAsyncCache } from "../cache/async-cache.js";
import { EdgeMLError } from "../errors.js";
import type { InferenceEngine } from "../inference/engine.js";
import type { ServingFiguresSource } from "../performance/service.js";
import type { Registry } from "../registry/registry.js";
import type { InferenceOperations } from "../services/inference.js";
import type { Family } from "./exposition.js";
import {
  httpMiddleware,
  instrumentEngine,
  instrumentInference,
  instrumentRegistry,
  serveObserver,
} from "./instruments.js";
import { type Catalog, labeller } from "./labels.js";
import {
  familiesOf,
  servingFiguresOf,
  statsScope,
  type TritonModelStat,
  tritonStat,
  type UsageReader,
} from "./readers.js";
import { parseSeries, type Series } from "./series.js";
import type { MetricsStore } from "./store.js";
import { createWriter } from "./writer.js";

export type { ServeObserver } from "./instruments.js";
export type { TritonModelStat } from "./readers.js";

export interface TelemetryDeps {
  store: MetricsStore;
  /** The registry, read lazily (the registry is built with the instrumented engine, after the telemetry). */
  catalog: () => Catalog;
  /** Forecast cache hits and misses per version: the usage tracker counts them already; read, never re-counted. */
  usage: () => UsageReader;
  defer: (work: Promise<unknown>) => void;
  warn: (message: string, error: unknown) => void;
  now?: () => Date;
}

/**
 * Telemetry of this server: what it records (requests by route and status, serve and inference latency by model
 * and version, failures by code, cold starts, prediction-log writes) into a shared metrics store, and what it reads
 * back (the /metrics exposition, Triton's statistics, the performance API's serving figures).
 *
 * Recording never touches the response path: each record is handed to `defer` (the edge's waitUntil), labels are
 * checked against the registry there, and writes are coalesced (src/telemetry/writer.ts).
 */
export function createTelemetry(deps: TelemetryDeps) {
  const { store } = deps;
  const writer = createWriter(deps);
  const labelsOf = labeller(deps.catalog);
  const observer = serveObserver(writer.track, labelsOf, deps.now ?? (() => new Date()));

  // Policy: singleFlight: concurrent readers (scrapes, public performance and statistics reads) share one store
  // read, so a burst of public requests costs the store one read, not one each; nothing is kept after it.
  const reads = createAsyncCache<"all", Record<string, number>>({
    policy: { kind: "singleFlight" },
    load: () => store.readAll(),
  });

  /** Every series in the store, parsed; a series whose name cannot be parsed (not ours) is skipped. */
  const read = async (): Promise<Series[]> => {
    // This instance's records first: they wait up to a batching window before they are written (writer.ts).
    await writer.flush();
    const values = await reads.get("all");
    return Object.entries(values).flatMap(([key, value]) => {
      const parsed = parseSeries(key, value);
      return parsed ? [parsed] : [];
    });
  };

  const servingFigures: ServingFiguresSource = async (model) => {
    let series: Series[];
    try {
      series = await read();
    } catch (error) {
      deps.warn(`could not read the metrics store (${store.kind})`, error);
      return null;
    }
    return servingFiguresOf(series, model, deps.catalog(), deps.usage());
  };

  return {
    /** Registered before every route (src/http.ts): counts every answer, 429s and 404s included. */
    middleware: httpMiddleware(writer.track),
    observer,
    instrumentEngine: (engine: InferenceEngine) => instrumentEngine(engine, writer.track, labelsOf),
    instrumentRegistry: (registry: Registry) => instrumentRegistry(registry, writer.track, labelsOf),
    instrumentInference: (operations: InferenceOperations) => instrumentInference(operations, observer),
    /** Resolves once every record made so far is written (or dropped): a scrape then includes this instance's. */
    flush: writer.flush,
    read,
    /** The exposition's families (throws when the store cannot be read: the route answers 503). */
    families: async (): Promise<Family[]> => familiesOf(await read(), deps.catalog(), deps.usage()),
    servingFigures,
    /**
     * Triton's statistics of every version of `name` (every model without it), or of the one version named: 404
     * for a name or version the registry does not have, 503 when the store cannot be read.
     */
    async modelStats(name?: string, version?: string): Promise<TritonModelStat[]> {
      const scope = await statsScope(deps.catalog(), name, version);
      const series = await read().catch((error: unknown) => {
        throw new EdgeMLError("store_unavailable", "the metrics store cannot be read; try again shortly", {
          cause: error,
        });
      });
      const stats: TritonModelStat[] = [];
      for (const [model, versions] of scope) {
        const usage = (await deps.usage().read(model, versions)).versions;
        for (const v of versions) stats.push(tritonStat(series, model, v, usage[v]));
      }
      return stats;
    },
  };
}

export type Telemetry = ReturnType<typeof createTelemetry>;
