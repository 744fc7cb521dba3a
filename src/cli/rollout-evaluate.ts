import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { hc, type InferResponseType } from "hono/client";
import { asEdgeMLError } from "../errors.js";
import { silentLogger } from "../logger.js";
import { EVALUATION_SOURCES, type EvaluateRequest } from "../rollout/evaluate.js";
import type { RolloutEvaluateRoutes } from "../routes/rollout-evaluate.js";
import { DEFAULT_MODELS_DIR, nodeDeps } from "../runtime/node/deps.js";
import { createServices } from "../services/index.js";
import { CliError, expectOk } from "./client.js";
import { table } from "./table.js";

type Endpoint = ReturnType<
  typeof hc<RolloutEvaluateRoutes>
>["api"]["ml"]["models"][":name"]["rollout"]["evaluate"];
export type Evaluation = InferResponseType<Endpoint["$post"], 200>;

/** `POST …/rollout/evaluate` over HTTP to a server, or the services in this process (the embedded registry). */
async function evaluate(
  options: { url?: string; token?: string },
  name: string,
  body: EvaluateRequest,
  dryRun: boolean,
): Promise<{ target: string; result: Evaluation }> {
  if (options.url) {
    const base = options.url.replace(/\/+$/, "");
    const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
    const api = hc<RolloutEvaluateRoutes>(base, { headers }).api.ml.models[":name"].rollout.evaluate;
    const query = dryRun ? { dry_run: "true" as const } : {};
    return { target: base, result: await expectOk(await api.$post({ param: { name }, query, json: body })) };
  }
  const deps = nodeDeps(process.env);
  const services = createServices(deps, { ...deps, logger: silentLogger });
  try {
    const result = await services.rollouts.evaluate(name, { ...body, dryRun });
    return {
      target: `local registry (${process.env.MODELS_DIR || resolve(DEFAULT_MODELS_DIR)})`,
      // Through JSON, as over HTTP.
      result: JSON.parse(JSON.stringify(result)) as Evaluation,
    };
  } catch (error) {
    const known = asEdgeMLError(error);
    if (!known) throw error;
    throw new CliError(`${known.message} [${known.code}]`);
  }
}

const num = (value: unknown, digits = 4) =>
  typeof value === "number"
    ? Math.abs(value) < 1e-4 && value !== 0
      ? value.toExponential(2)
      : value.toFixed(digits)
    : "-";

/** The numbers of a rollout decision, a row per version and the test's line. */
function printRollout(rollout: NonNullable<Evaluation["rollout"]>, output: (text: string) => void): void {
  const e = rollout.evidence as {
    champion?: string;
    challenger?: string;
    outcomes?: { champion: number; challenger: number };
    mean_ape?: { champion: number | null; challenger: number | null };
    pairs?: number;
    dm_statistic?: number | null;
    p_value_better?: number | null;
    p_value_worse?: number | null;
    alpha?: number;
  };
  output(`rollout: ${rollout.action} (${rollout.reason}): ${rollout.summary}`);
  output(
    table([
      {
        role: "challenger",
        version: e.challenger ?? "-",
        outcomes: e.outcomes?.challenger ?? 0,
        "mean APE % (paired)": num(e.mean_ape?.challenger),
      },
      {
        role: "champion",
        version: e.champion ?? "-",
        outcomes: e.outcomes?.champion ?? 0,
        "mean APE % (paired)": num(e.mean_ape?.champion),
      },
    ]),
  );
  output(
    `paired ${e.pairs ?? 0}, DM ${num(e.dm_statistic, 3)}, p(better) ${num(e.p_value_better)}, p(worse) ${num(e.p_value_worse)}, alpha ${e.alpha ?? "-"}`,
  );
  const written = rollout.written as { action?: string; at?: string } | null;
  output(written ? `written: ${written.action} at ${written.at}` : "written: nothing");
}

/** `rollout evaluate <model>`: the decision from outcomes now, joined to the `rollout` command group. */
export function addRolloutEvaluateCommand(
  rollout: Command,
  program: Command,
  output: (text: string) => void,
): void {
  rollout
    .command("evaluate")
    .description(
      "decide the rollout from outcomes now (promote, end or continue) and check the champion against naive; written to the audit log unless --dry-run",
    )
    .argument("<name>", "the model, e.g. BTC-24h")
    .option("--dry-run", "say what would be decided, write nothing")
    .addOption(
      new Option(
        "--source <source>",
        "live (default): live and shadow records since the rollout started; backfill or replay: those records",
      ).choices([...EVALUATION_SOURCES]),
    )
    .option("--from <date>", "earliest served_at counted: YYYY-MM-DD or an ISO 8601 date-time")
    .option("--to <date>", "latest served_at counted: YYYY-MM-DD or an ISO 8601 date-time")
    .action(
      async (
        name: string,
        options: { dryRun?: boolean; source?: EvaluateRequest["source"]; from?: string; to?: string },
      ) => {
        const body: EvaluateRequest = {
          ...(options.source === undefined ? {} : { source: options.source }),
          ...(options.from === undefined ? {} : { from: options.from }),
          ...(options.to === undefined ? {} : { to: options.to }),
        };
        const { target, result } = await evaluate(
          program.opts<{ url?: string; token?: string }>(),
          name,
          body,
          options.dryRun === true,
        );
        output(`${name}${result.dry_run ? " (dry run: nothing written)" : ""}, in ${target}`);
        if (result.rollout) printRollout(result.rollout, output);
        else output("rollout: none running");
        const back = result.rollback;
        output(`rollback check: ${back.action}: ${back.summary}`);
        const written = back.written as { action?: string; at?: string } | null;
        if (written) output(`written: ${written.action} at ${written.at}`);
      },
    );
}
