import type { Context } from "hono";
import { routePath } from "hono/route";
import { asEdgeMLError, ERROR_STATUS } from "../errors.js";
import type { Registry } from "../registry/registry.js";

/** The label of anything the registry does not name (a model or version label is never free text). */
export const OTHER = "other";
/** The route label of a request no route matched: raw paths never become labels. */
export const UNMATCHED_ROUTE = "unmatched";
/** The version label of a failure that happened before a version was chosen. */
export const UNRESOLVED = "unresolved";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The names and versions labels may take: the registry's (its cached listing, no store call per request). */
export type Catalog = Pick<Registry, "listModelNames" | "versionNames">;

export type ModelLabels = { model: string; version: string };

/**
 * Model and version labels bounded by the registry: a name it does not list is `other`. A name and version the
 * registry lists are remembered and labelled at once (synchronously) after that: the registry never unlists a version
 * (archived ones stay listed), and the memo holds only what it lists, so it is as small as the registry. Anything
 * else is looked up each time, so a model registered later is labelled as soon as the listing shows it.
 */
export function labeller(catalog: () => Catalog) {
  const listed = new Map<string, ModelLabels>();
  const lookup = async (model: string, version: string | undefined, key: string): Promise<ModelLabels> => {
    const names = await catalog()
      .listModelNames()
      .catch(() => [] as string[]);
    if (!names.includes(model)) return { model: OTHER, version: OTHER };
    if (version === undefined) return { model, version: UNRESOLVED };
    const versions = await catalog()
      .versionNames(model)
      .catch(() => [] as string[]);
    if (!versions.includes(version)) return { model, version: OTHER };
    const labels = { model, version };
    listed.set(key, labels);
    return labels;
  };
  return (model: string, version: string | undefined): ModelLabels | Promise<ModelLabels> => {
    const key = `${model}\u0000${version}`;
    return listed.get(key) ?? lookup(model, version, key);
  };
}

/** `f` of a value that may still be on its way: at once when it is there, after it otherwise. */
export const andThen = <T, R>(value: T | Promise<T>, f: (value: T) => R): R | Promise<R> =>
  value instanceof Promise ? value.then(f) : f(value);

export type LabelsOf = ReturnType<typeof labeller>;

/** The stable error code of a failure as a label: `internal` for anything not ours, `other` for an unknown code. */
export const codeOf = (error: unknown): string => asEdgeMLError(error)?.code ?? "internal";

export const knownCode = (code: unknown): string =>
  typeof code === "string" && Object.hasOwn(ERROR_STATUS, code) ? code : OTHER;

export const methodOf = (method: string): string => (METHODS.has(method) ? method : "OTHER");

/**
 * The route label: the template of the route that matched (Hono's `routePath` of the last matched handler, e.g.
 * `/v2/models/:name/infer`), never the raw path; a request only middleware matched is `unmatched`.
 */
export function routeOf(c: Context): string {
  const path = routePath(c, -1);
  return !path || path === "*" || path === "/*" ? UNMATCHED_ROUTE : path;
}

/** `name@version` (the engine's session key) split at its last `@`. */
export function splitSessionKey(key: string): [string, string | undefined] {
  const at = key.lastIndexOf("@");
  return at <= 0 ? [key, undefined] : [key.slice(0, at), key.slice(at + 1)];
}
