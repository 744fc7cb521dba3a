import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { hc, type InferResponseType } from "hono/client";
import { asEdgeMLError } from "../errors.js";
import { silentLogger } from "../logger.js";
import type { StartRollout } from "../rollout/control.js";
import type { RolloutRoutes } from "../routes/rollout.js";
import { DEFAULT_MODELS_DIR, nodeDeps } from "../runtime/node/deps.js";
import { createServices } from "../services/index.js";
import { CliError, expectOk } from "./client.js";
import { table } from "./table.js";

type Endpoint = ReturnType<typeof hc<RolloutRoutes>>["api"]["ml"]["models"][":name"]["rollout"];
export type RolloutChange = InferResponseType<Endpoint["$post"], 201>;
export type RolloutStatus = InferResponseType<Endpoint["$get"], 200>;

/** The rollout routes, over HTTP to a server or on the services in this process (as the registry client does). */
export interface RolloutClient {
  readonly target: string;
  start(name: string, body: StartRollout): Promise<RolloutChange>;
  status(name: string): Promise<RolloutStatus>;
  stop(name: string): Promise<RolloutChange>;
}

export function createRolloutClient(options: { url?: string; token?: string }): RolloutClient {
  if (options.url) {
    const base = options.url.replace(/\/+$/, "");
    const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
    const rollout = (name: string) => ({ param: { name } });
    const api = hc<RolloutRoutes>(base, { headers }).api.ml.models[":name"].rollout;
    return {
      target: base,
      start: async (name, json) => expectOk(await api.$post({ ...rollout(name), json })),
      status: async (name) => expectOk(await api.$get(rollout(name))),
      stop: async (name) => expectOk(await api.$delete(rollout(name))),
    };
  }
  const deps = nodeDeps(process.env);
  const services = createServices(deps, { ...deps, logger: silentLogger });
  // Through JSON as over HTTP, and the API's errors as the CLI prints them.
  const wire = async <T>(work: Promise<unknown>): Promise<T> => {
    try {
      return JSON.parse(JSON.stringify(await work)) as T;
    } catch (error) {
      const known = asEdgeMLError(error);
      if (!known) throw error;
      throw new CliError(`${known.message} [${known.code}]`);
    }
  };
  const control = services.rolloutControl;
  return {
    target: `local registry (${process.env.MODELS_DIR || resolve(DEFAULT_MODELS_DIR)})`,
    start: (name, body) => wire(control.start(name, body)),
    status: (name) =>
      wire(
        control
          .get(name)
          .then(async ({ rollout }) => ({ rollout, comparison: await services.rollouts.compare(name) })),
      ),
    stop: (name) => wire(control.stop(name)),
  };
}

// Checked in the action (a CliError), not by commander's option parsers: from a subcommand those exit the process.
const fraction = (text: string) => {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new CliError(`--weight is a fraction from 0 to 1, not ${text}`);
  return value;
};

const positiveInt = (text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new CliError(`--min-outcomes is a whole number above 0, not ${text}`);
  return value;
};

/** `12d`, `36h` or seconds: the rollout's longest run. */
const duration = (text: string) => {
  const match = /^(\d+)([dhms]?)$/.exec(text.trim());
  const unit = { d: 86_400, h: 3_600, m: 60, s: 1, "": 1 }[match?.[2] ?? ""] ?? 1;
  const value = Number(match?.[1]) * unit;
  if (!match || value < 1)
    throw new CliError(`--max-duration is a duration such as 14d, 36h or 86400 (seconds), not ${text}`);
  return value;
};

function describe(change: RolloutChange["rollout"]): string {
  return `${change.mode} rollout ${change.id}: v${change.challenger} against v${change.champion ?? "-"} at weight ${change.weight}, since ${change.started_at} (min ${change.min_outcomes} outcomes, at most ${Math.round(change.max_duration_seconds / 86_400)} d)`;
}

/**
 * `rollout start|status|stop <model>`: the admin API's `…/rollout` routes. Returns the `rollout` command so that
 * further subcommands (`evaluate`) join the same group.
 */
export function addRolloutCommands(program: Command, output: (text: string) => void): Command {
  const client = () => createRolloutClient(program.opts<{ url?: string; token?: string }>());
  const rollout = program
    .command("rollout")
    .description(
      "roll a version out beside the serving one: canary (a share of clients) or shadow (logged only)",
    );

  rollout
    .command("start")
    .description("start a rollout of a version against the one serving now")
    .argument("<name>", "the model, e.g. BTC-24h")
    .requiredOption("--challenger <version>", "the version rolled out")
    .addOption(
      new Option(
        "--mode <mode>",
        "canary: serve it to a share of clients; shadow: run it beside the champion",
      )
        .choices(["canary", "shadow"])
        .makeOptionMandatory(),
    )
    .requiredOption("--weight <fraction>", "canary: share of clients; shadow: share of forecasts mirrored")
    .option("--min-outcomes <n>", "resolved outcomes per version before a decision")
    .option("--max-duration <duration>", "ended undecided after this long: 14d, 36h or seconds")
    .option("-r, --reason <text>")
    .action(async (name: string, options: Record<string, string | undefined>) => {
      const body: StartRollout = {
        challenger: options.challenger as string,
        mode: options.mode as StartRollout["mode"],
        weight: fraction(options.weight as string),
        ...(options.minOutcomes === undefined ? {} : { min_outcomes: positiveInt(options.minOutcomes) }),
        ...(options.maxDuration === undefined ? {} : { max_duration_seconds: duration(options.maxDuration) }),
        ...(options.reason === undefined ? {} : { reason: options.reason }),
      };
      const api = client();
      const { rollout: started } = await api.start(name, body);
      output(`${name}: started the ${describe(started)}, in ${api.target}`);
    });

  rollout
    .command("status")
    .description("the running rollout and its live comparison so far")
    .argument("<name>")
    .action(async (name: string) => {
      const { rollout: running, comparison } = await client().status(name);
      output(`${name}: ${describe(running)}`);
      if (!comparison) return;
      const fields = Object.entries(comparison).filter(
        ([, value]) => value === null || typeof value !== "object",
      );
      output(table(fields.map(([field, value]) => ({ field, value: String(value) }))));
    });

  rollout
    .command("stop")
    .description("end the running rollout: the champion serves every client again, nothing is promoted")
    .argument("<name>")
    .action(async (name: string) => {
      const { rollout: ended } = await client().stop(name);
      output(
        `${name}: ended the ${ended.mode} rollout ${ended.id} of v${ended.challenger}; v${ended.champion ?? "-"} serves`,
      );
    });
  return rollout;
}
