import type { MiddlewareHandler } from "hono";
import type { InferenceEngine } from "../inference/engine.js";
import type { Registry } from "../registry/registry.js";
import type { InferenceOperations } from "../services/inference.js";
import { notedErrorCode } from "./error-code.js";
import { andThen, codeOf, knownCode, type LabelsOf, methodOf, routeOf, splitSessionKey } from "./labels.js";
import { METRIC, seriesKey } from "./series.js";
import { histogram, type Track } from "./writer.js";

const elapsedSince = (started: number) => (performance.now() - started) / 1000;

/** What the forecaster and the OIP operations report about each request they serve. */
export interface ServeObserver {
  /** A request answered, in `seconds` (cache hits included). */
  served(model: string, version: string, seconds: number): void;
  /** A request that failed with `error`; `version` when one had been chosen. */
  failed(model: string, version: string | undefined, seconds: number, error: unknown): void;
  /** A served forecast written to the prediction log, or not (`ok` false: the log failed). */
  predictionLogged(model: string, ok: boolean): void;
  /** A rollout's shadow forecast not logged: the engine was too busy, or the challenger or the log failed. */
  shadowDropped(model: string, reason: "queue_depth" | "failed"): void;
}

/** The observer of served requests: serve latency, failures by code, the last request's time, log writes. */
export function serveObserver(track: Track, labelsOf: LabelsOf, now: () => Date): ServeObserver {
  return {
    served(model, version, seconds) {
      const at = now().getTime();
      track(() =>
        andThen(labelsOf(model, version), (labels) => ({
          add: histogram(METRIC.serveDuration, labels, seconds),
          set: { [seriesKey(METRIC.lastInference, labels)]: at },
        })),
      );
    },
    failed(model, version, seconds, error) {
      const code = knownCode(codeOf(error));
      const at = now().getTime();
      track(async () => {
        const labels = await labelsOf(model, version);
        return {
          add: {
            [seriesKey(METRIC.serveErrors, { ...labels, code })]: 1,
            [seriesKey(METRIC.serveFailedUs, labels)]: Math.round(seconds * 1e6),
          },
          set: { [seriesKey(METRIC.lastInference, labels)]: at },
        };
      });
    },
    predictionLogged(model, ok) {
      track(async () => {
        const { model: label } = await labelsOf(model, undefined);
        const result = ok ? "ok" : "failed";
        return { add: { [seriesKey(METRIC.predictionLogWrites, { model: label, result })]: 1 } };
      });
    },
    shadowDropped(model, reason) {
      track(async () => {
        const { model: label } = await labelsOf(model, undefined);
        return { add: { [seriesKey(METRIC.shadowDropped, { model: label, reason })]: 1 } };
      });
    },
  };
}

/** HTTP middleware: every answer by route template, method and status; error answers by their code. */
export function httpMiddleware(track: Track): MiddlewareHandler {
  // Per route template (a bounded set): its labels object, and its request counters' keys by method and status,
  // built once instead of on every request.
  const routes = new Map<string, { labels: { route: string }; requests: Map<string, string> }>();
  const perRoute = (route: string) => {
    let entry = routes.get(route);
    if (!entry) {
      entry = { labels: { route }, requests: new Map() };
      routes.set(route, entry);
    }
    return entry;
  };
  const routeLabels = (route: string) => perRoute(route).labels;
  const requestsKey = (route: string, method: string, status: number) => {
    const { requests } = perRoute(route);
    const id = `${method} ${status}`;
    let key = requests.get(id);
    if (key === undefined) {
      key = seriesKey(METRIC.httpRequests, { route, method, status: String(status) });
      requests.set(id, key);
    }
    return key;
  };
  return async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = elapsedSince(started);
    const route = routeOf(c);
    const method = methodOf(c.req.method);
    const status = c.res.status;
    const answered = () => {
      const batch = histogram(METRIC.httpDuration, routeLabels(route), seconds);
      batch[requestsKey(route, method, status)] = 1;
      return batch;
    };
    if (status < 400) {
      track(() => ({ add: answered() }));
      return;
    }
    // Error answers carry their code in the JSON body (`{error, code}`): noted where the body was made, else read
    // from a copy of it, after the response.
    const noted = notedErrorCode(c);
    const body =
      noted === undefined && c.res.headers.get("content-type")?.includes("json") ? c.res.clone() : undefined;
    const withCode = (code: unknown) => {
      const batch = answered();
      batch[seriesKey(METRIC.httpErrors, { route, code: knownCode(code) })] = 1;
      return { add: batch };
    };
    if (noted !== undefined) {
      track(() => withCode(noted));
      return;
    }
    track(async () => {
      const parsed: unknown = await body?.json().catch(() => undefined);
      return withCode(
        typeof parsed === "object" && parsed !== null ? (parsed as { code?: unknown }).code : undefined,
      );
    });
  };
}

/** Counts each session load (a cold start) of the engine: `load` is called only when a session is not warm. */
export function instrumentEngine(engine: InferenceEngine, track: Track, labelsOf: LabelsOf): InferenceEngine {
  const counted = (key: string, load: () => Promise<Uint8Array>) => async () => {
    const bytes = await load();
    track(async () => {
      const [model, version] = splitSessionKey(key);
      return { add: { [seriesKey(METRIC.modelLoads, await labelsOf(model, version))]: 1 } };
    });
    return bytes;
  };
  return {
    init: () => engine.init(),
    signature: (key, load) => engine.signature(key, counted(key, load)),
    run: (request) => engine.run({ ...request, load: counted(request.key, request.load) }),
    evict: (key) => engine.evict(key),
    stats: () => engine.stats(),
  };
}

/** Times each model execution (`registry.infer`: forecasts that missed the cache, OIP infer) and counts its rows. */
export function instrumentRegistry(registry: Registry, track: Track, labelsOf: LabelsOf): Registry {
  return {
    ...registry,
    async infer(meta, feeds, outputs, deadline) {
      const started = performance.now();
      const result = await registry.infer(meta, feeds, outputs, deadline);
      const seconds = elapsedSince(started);
      const rows = Object.values(feeds)[0]?.dims[0] ?? 1;
      track(() =>
        andThen(labelsOf(meta.name, meta.version), (labels) => {
          const add = histogram(METRIC.inferenceDuration, labels, seconds);
          add[seriesKey(METRIC.inferenceRows, labels)] = rows;
          return { add };
        }),
      );
      return result;
    },
  };
}

/** Times each OIP infer request and counts its failures by code, by model and version. */
export function instrumentInference(
  operations: InferenceOperations,
  observer: ServeObserver,
): InferenceOperations {
  return {
    ...operations,
    async infer(name, version, body, routing) {
      const started = performance.now();
      try {
        const result = await operations.infer(name, version, body, routing);
        observer.served(result.model_name, result.model_version, elapsedSince(started));
        return result;
      } catch (error) {
        observer.failed(name, version, elapsedSince(started), error);
        throw error;
      }
    },
  };
}
