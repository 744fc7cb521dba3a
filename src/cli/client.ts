import { resolve } from "node:path";
import { type ClientResponse, hc, type InferRequestType, type InferResponseType } from "hono/client";
import type { SuccessStatusCode } from "hono/utils/http-status";
import { asEdgeMLError, EdgeMLError } from "../errors.js";
import { silentLogger } from "../logger.js";
import { RegistrationInputSchema } from "../registry/metadata.js";
import type { AdminRoutes } from "../routes/admin.js";
import type { BackfillRoutes } from "../routes/backfill.js";
import type { OipRoutes } from "../routes/oip.js";
import { DEFAULT_MODELS_DIR, nodeDeps } from "../runtime/node/deps.js";
import { createServices, type Services } from "../services/index.js";

type Admin = ReturnType<typeof hc<AdminRoutes>>;
type Oip = ReturnType<typeof hc<OipRoutes>>;
type Backfill = ReturnType<typeof hc<BackfillRoutes>>["api"]["ml"]["models"][":name"]["backfill"];
type ModelEndpoints = Admin["api"]["ml"]["models"][":name"];

/** The API's answers, typed from the routes themselves (hono's `hc`): no hand-copied response types. */
export type ModelSummaries = InferResponseType<Admin["api"]["ml"]["models"]["$get"], 200>;
export type ModelDetail = InferResponseType<ModelEndpoints["$get"], 200>;
/** 201 registered, or 200 with `duplicate_of`: nothing registered, the upload equals that version. */
export type Registered = InferResponseType<ModelEndpoints["versions"]["$post"], 200 | 201>;
export type PointerChange = InferResponseType<ModelEndpoints["promote"]["$post"], 200>;
export type ModelMetadata = InferResponseType<Oip["v2"]["models"][":name"]["$get"], 200>;
export type InferRequest = InferRequestType<Oip["v2"]["models"][":name"]["infer"]["$post"]>["json"];
export type InferResponse = InferResponseType<Oip["v2"]["models"][":name"]["infer"]["$post"], 200>;
export type BackfillBody = InferRequestType<Backfill["$post"]>["json"];
export type BackfillResult = InferResponseType<Backfill["$post"], 200>;

/** What the CLI does to a registry: over HTTP to a server, or on the services in this process. */
export interface RegistryClient {
  readonly target: string;
  register(name: string, bytes: Uint8Array, file: string, metadata: unknown): Promise<Registered>;
  models(): Promise<ModelSummaries>;
  model(name: string): Promise<ModelDetail>;
  promote(name: string, version: string, reason?: string): Promise<PointerChange>;
  /** `promote --auto`: hands the model back to the selection policy. */
  handBack(name: string, reason?: string): Promise<PointerChange>;
  rollback(name: string, options: { to?: string; reason?: string }): Promise<PointerChange>;
  pin(name: string, version: string | null, reason?: string): Promise<PointerChange>;
  restore(name: string, version: string, reason?: string): Promise<PointerChange>;
  metadata(name: string, version?: string): Promise<ModelMetadata>;
  infer(name: string, version: string | undefined, body: InferRequest): Promise<InferResponse>;
  backfill(name: string, body: BackfillBody): Promise<BackfillResult>;
}

/**
 * With a URL, requests go to that server with `token` as the admin bearer. Without one, the CLI calls the services
 * in process on the embedded registry (MODELS_DIR, default ./models): the same registry code as the server, no
 * server and no HTTP app needed.
 */
export function createRegistryClient(options: { url?: string; token?: string }): RegistryClient {
  if (options.url) return remoteClient(options.url.replace(/\/+$/, ""), options.token);
  const env = process.env;
  const deps = nodeDeps(env);
  return localClient(
    createServices(deps, { ...deps, logger: silentLogger }),
    `local registry (${env.MODELS_DIR || resolve(DEFAULT_MODELS_DIR)})`,
  );
}

function remoteClient(base: string, token: string | undefined): RegistryClient {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const admin = hc<AdminRoutes>(base, { headers });
  const oip = hc<OipRoutes>(base);
  const backfill = hc<BackfillRoutes>(base, { headers });
  const models = admin.api.ml.models;
  return {
    target: base,
    async register(name, bytes, file, metadata) {
      // The upload is multipart (its body is read by the route, not a JSON validator): sent as the request's body.
      const form = new FormData();
      form.append("model", new Blob([bytes as Uint8Array<ArrayBuffer>]), file);
      form.append("metadata", JSON.stringify(metadata));
      return expectOk(await models[":name"].versions.$post({ param: { name } }, { init: { body: form } }));
    },
    models: async () => expectOk(await models.$get()),
    model: async (name) => expectOk(await models[":name"].$get({ param: { name } })),
    promote: async (name, version, reason) =>
      expectOk(await models[":name"].promote.$post({ param: { name }, json: { version, reason } })),
    handBack: async (name, reason) =>
      expectOk(await models[":name"].promote.$post({ param: { name }, json: { auto: true, reason } })),
    rollback: async (name, body) =>
      expectOk(await models[":name"].rollback.$post({ param: { name }, json: body })),
    pin: async (name, version, reason) =>
      expectOk(await models[":name"].pin.$post({ param: { name }, json: { version, reason } })),
    restore: async (name, version, reason) =>
      expectOk(
        await models[":name"].versions[":version"].restore.$post({
          param: { name, version },
          json: { reason },
        }),
      ),
    metadata: async (name, version) =>
      expectOk(
        await (version === undefined
          ? oip.v2.models[":name"].$get({ param: { name } })
          : oip.v2.models[":name"].versions[":version"].$get({ param: { name, version } })),
      ),
    infer: async (name, version, json) =>
      expectOk(
        await (version === undefined
          ? oip.v2.models[":name"].infer.$post({ param: { name }, json })
          : oip.v2.models[":name"].versions[":version"].infer.$post({ param: { name, version }, json })),
      ),
    backfill: async (name, json) =>
      expectOk(await backfill.api.ml.models[":name"].backfill.$post({ param: { name }, json })),
  };
}

/**
 * The services in this process. Answers go through JSON as they would over HTTP (dates and tensors as the wire
 * has them), and failures are the API's errors, so both modes print the same.
 */
function localClient(services: Services, target: string): RegistryClient {
  const { models, registry, inference } = services;
  const wire = async <T>(work: Promise<unknown>): Promise<T> => {
    try {
      return JSON.parse(JSON.stringify(await work)) as T;
    } catch (error) {
      const known = asEdgeMLError(error);
      if (!known) throw error;
      const details =
        known.details && known.status < 500 ? `\n${JSON.stringify(known.details, null, 2)}` : "";
      throw new CliError(`${known.message} [${known.code}]${details}`);
    }
  };
  return {
    target,
    register: (name, bytes, _file, metadata) => wire(registerLocally(name, bytes, metadata)),
    models: () => wire(models.list().then((list) => ({ models: list }))),
    model: (name) => wire(models.detail(name)),
    promote: (name, version, reason) => wire(models.promote(name, version, reason)),
    handBack: (name, reason) => wire(models.handBack(name, reason)),
    rollback: (name, options) => wire(models.rollback(name, options)),
    pin: (name, version, reason) => wire(models.pin(name, version, reason)),
    restore: (name, version, reason) => wire(models.restore(name, version, reason)),
    metadata: (name, version) => wire(inference.metadata(name, version)),
    infer: (name, version, body) => wire(inference.infer(name, version, body)),
    backfill: (name, body) => wire(services.backfill.run({ ...body, model: name })),
  };
  async function registerLocally(name: string, bytes: Uint8Array, metadata: unknown) {
    // What the route checks before registering: the metadata as the registration schema reads it.
    const input = RegistrationInputSchema.safeParse(metadata);
    if (!input.success) {
      throw new EdgeMLError("invalid_request", "the registration metadata is not valid", {
        details: input.error.issues,
      });
    }
    return registry.register(name, bytes, input.data);
  }
}

/** The body of a 2xx answer, typed by the route; the API's own error message otherwise. */
export async function expectOk<R extends ClientResponse<unknown, number, string>>(
  response: R,
): Promise<
  R extends ClientResponse<infer T, infer S, string> ? (S extends SuccessStatusCode ? T : never) : never
> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text };
  }
  if (!response.ok) {
    const error = (body as { error?: string; code?: string; details?: unknown }) ?? {};
    const details = error.details ? `\n${JSON.stringify(error.details, null, 2)}` : "";
    throw new CliError(
      `${error.error ?? `HTTP ${response.status}`} [${error.code ?? response.status}]${details}`,
    );
  }
  return body as never;
}

export class CliError extends Error {}
