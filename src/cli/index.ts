import { readFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { VERSION } from "../config.js";
import type { EvaluationReport } from "../training/forecaster.js";
import { CliError, createRegistryClient, type InferRequest, type RegistryClient } from "./client.js";
import { addRolloutCommands } from "./rollout.js";
import { addRolloutEvaluateCommand } from "./rollout-evaluate.js";
import { table } from "./table.js";

function parseTags(values: string[] = []): Record<string, string> {
  return Object.fromEntries(
    values.map((pair) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw new CliError(`--tag takes key=value, got "${pair}"`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

async function readJson(pathOrJson: string): Promise<unknown> {
  const text =
    pathOrJson.trim().startsWith("{") || pathOrJson.trim().startsWith("[")
      ? pathOrJson
      : await readFile(pathOrJson, "utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${pathOrJson.slice(0, 60)} is not JSON (nor a file holding JSON)`);
  }
}

/** Shape of nested arrays: [[1,2],[3,4]] → [2, 2]. */
function shapeOf(data: unknown): number[] {
  const shape: number[] = [];
  let level: unknown = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

/** The `edgeml` command line: register, list, promote, roll back and predict, locally or against a server. */
/** `output` is the CLI's stdout (what the user asked to see), not logging: the services log nothing here. */
export function buildCli(output: (text: string) => void = (text) => console.log(text)): Command {
  const program = new Command("edgeml")
    .description("Manage and query the edgeml model registry")
    .version(VERSION)
    .addOption(
      new Option("--url <url>", "a running edgeml server (default: the local registry, in process)").env(
        "EDGEML_URL",
      ),
    )
    .addOption(new Option("--token <token>", "admin token of that server").env("ADMIN_TOKEN"));
  const client = (): RegistryClient => createRegistryClient(program.opts<{ url?: string; token?: string }>());

  program
    .command("register")
    .description("register an ONNX file as a new version of a model")
    .argument("<file>", ".onnx file")
    .requiredOption("-n, --name <name>", "model name")
    .option(
      "-g, --golden <file>",
      "golden rows JSON ({atol?, cases:[{inputs, outputs}]}) the model must reproduce",
    )
    .option("-m, --metadata <file>", "registration metadata JSON (description, tags, metrics, golden, ...)")
    .option("-t, --tag <key=value...>", "tags")
    .option("-d, --description <text>", "description")
    .action(
      async (
        file: string,
        options: { name: string; golden?: string; metadata?: string; tag?: string[]; description?: string },
      ) => {
        const bytes = await readFile(file).catch(() => {
          throw new CliError(`cannot read ${file}`);
        });
        const metadata = {
          ...((options.metadata ? await readJson(options.metadata) : {}) as Record<string, unknown>),
          ...(options.golden && { golden: await readJson(options.golden) }),
          ...(options.tag && { tags: parseTags(options.tag) }),
          ...(options.description && { description: options.description }),
        };
        const api = client();
        const meta = await api.register(options.name, new Uint8Array(bytes), file, metadata);
        if (meta.duplicate_of !== undefined) {
          output(
            `nothing registered: ${file} equals ${meta.name} version ${meta.duplicate_of} (same bytes and calibration) in ${api.target}`,
          );
          return;
        }
        output(`registered ${meta.name} version ${meta.version} in ${api.target}`);
        if (meta.archived) output(`  archived by retention: ${meta.archived.join(", ")}`);
        if (meta.retention_error) output(`  retention could not archive: ${meta.retention_error}`);
        output(
          `  sha256 ${meta.sha256}, ${meta.size_bytes} bytes, producer ${meta.producer.name} ${meta.producer.version}`,
        );
        for (const t of meta.signature.inputs)
          output(`  input  ${t.name}: ${t.datatype} [${t.shape.join(", ")}]`);
        for (const t of meta.signature.outputs)
          output(`  output ${t.name}: ${t.datatype} [${t.shape.join(", ")}]`);
        if (meta.golden)
          output(`  golden rows: ${meta.golden.cases.length} case(s) reproduced (atol ${meta.golden.atol})`);
      },
    );

  program
    .command("models")
    .description("list models, their versions and which one serves")
    .action(async () => {
      const { models } = await client().models();
      output(
        table(
          models.map((m) => ({
            model: m.name,
            versions: m.versions.join(","),
            serving: m.serving ? `${m.serving.version} (${m.serving.via})` : "-",
            champion: m.pointers.champion ?? "-",
            pinned: m.pointers.pinned ?? "-",
            archived: m.archived.map((a) => a.version).join(",") || "-",
          })),
        ),
      );
    });

  program
    .command("versions")
    .description("a model's versions with their metrics, and its audit log")
    .argument("<name>")
    .action(async (name: string) => {
      const model = await client().model(name);
      const archived = new Map(model.archived.map((a) => [a.version, a]));
      output(
        table(
          model.metadata.map((m) => ({
            version: m.version,
            serving: model.serving?.version === m.version ? `* ${model.serving.via}` : "",
            archived: archived.has(m.version) ? `since ${archived.get(m.version)?.at.slice(0, 10)}` : "",
            created: m.created_at.slice(0, 19),
            producer: `${m.producer.name} ${m.producer.version}`.trim(),
            metrics: Object.entries(m.metrics)
              .map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`)
              .join(" "),
            sha256: m.sha256.slice(0, 12),
            "data cutoff": m.data_cutoff ?? "-",
          })),
        ),
      );
      if (model.history.length > 0) {
        output("\nhistory:");
        for (const h of model.history) {
          output(
            `  ${h.at}  ${h.action.padEnd(8)} ${h.from ?? "-"} -> ${h.to ?? "-"}${h.reason ? `  (${h.reason})` : ""}`,
          );
        }
      }
    });

  addReportCommand(program, client, output);
  addBackfillCommand(program, client, output);
  addChangeAndPredictCommands(program, client, output);
  addRolloutEvaluateCommand(addRolloutCommands(program, output), program, output);
  return program;
}

type Client = () => RegistryClient;
type Output = (text: string) => void;

/** `report`: a version's evaluation report. */
function addReportCommand(program: Command, client: Client, output: Output): void {
  program
    .command("report")
    .description(
      "a version's evaluation report: held-out metrics beside the naive forecast, importance, data",
    )
    .argument("<name>")
    .argument("[version]", "default: the version that serves")
    .action(async (name: string, version: string | undefined) => {
      const model = await client().model(name);
      const wanted = version ?? model.serving?.version;
      const meta = model.metadata.find((m) => m.version === wanted);
      if (!meta) throw new CliError(`${name} has no version ${wanted}`);
      const report = meta.report as EvaluationReport | undefined;
      output(`${name}@${meta.version}  ${meta.description ?? ""}`.trimEnd());
      if (!report?.test) {
        output(
          (report?.family as string | undefined) === "naive"
            ? "  the naive baseline: log return 0 (no change), what serves when no version beats it significantly; metrics:"
            : "  no evaluation report (registered without one); metrics:",
        );
        for (const [k, v] of Object.entries(meta.metrics)) output(`    ${k}: ${v}`);
        return;
      }
      const t = report.test;
      const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
      output(
        table([
          { metric: "R² on log return", value: t.r2LogReturn.toFixed(4) },
          { metric: "MAPE (price)", value: `${t.mape.toFixed(3)}%` },
          { metric: "naive MAPE (no change)", value: `${t.naiveMape.toFixed(3)}%` },
          { metric: "skill = 1 − MAPE / naive", value: pct(t.skill) },
          { metric: "direction accuracy", value: pct(t.directionAccuracy) },
          {
            metric: "R² on price (≈1 for any model)",
            value: `${t.r2Price.toFixed(4)} (naive ${t.naiveR2Price.toFixed(4)})`,
          },
        ]),
      );
      const s = report.splits;
      output(
        `data: ${report.data.bars} ${report.interval} bars ${report.data.first.slice(0, 10)} .. ${report.data.last.slice(0, 10)}`,
      );
      output(
        `data cutoff: ${meta.data_cutoff ?? "not recorded (retrain to backfill this version)"} (close of the last bar read: backfill replays only later bars)`,
      );
      output(
        `rows: train ${s.train.rows}, validation ${s.validation.rows}, test ${s.test.rows} (${s.test.first.slice(0, 10)} .. ${s.test.last.slice(0, 10)}), embargo ${s.embargoRows}`,
      );
      output(
        `training time: ${Math.round(report.trainingTimeMs)} ms; evaluated with ${report.evaluatedWith}`,
      );
      output(`top features (${report.importanceKind}):`);
      for (const f of report.featureImportance.slice(0, 8))
        output(`  ${f.feature.padEnd(16)} ${pct(f.importance)}`);
    });
}

/** `backfill`: a version's forecasts replayed over history after its data cutoff, recorded and resolved. */
function addBackfillCommand(program: Command, client: Client, output: Output): void {
  program
    .command("backfill")
    .description(
      "replay a forecaster's forecasts over a range of past bars (after its data cutoff), labelled backfill, and resolve them",
    )
    .argument("<name>", "the model, e.g. BTC-24h")
    .requiredOption(
      "--from <date>",
      "earliest as-of, inclusive: YYYY-MM-DD (its 00:00 UTC) or an ISO 8601 date-time",
    )
    .requiredOption(
      "--to <date>",
      "latest as-of, inclusive: YYYY-MM-DD (its 00:00 UTC) or an ISO 8601 date-time",
    )
    // Not `--version`: the program's own --version (print the CLI's version) would take it, as for `predict`.
    .option("--model-version <version>", "the version replayed (default: the one that serves)")
    .action(async (name: string, options: { from: string; to: string; modelVersion?: string }) => {
      const api = client();
      const s = await api.backfill(name, {
        from: options.from,
        to: options.to,
        ...(options.modelVersion === undefined ? {} : { version: options.modelVersion }),
      });
      output(
        `${s.model}@${s.version} (${s.chosen_via}), data cutoff ${s.data_cutoff ?? "none (naive: fitted on nothing)"}, in ${api.target}`,
      );
      output(
        table([
          { what: "forecasts", count: s.forecasts },
          { what: "recorded (new)", count: s.recorded },
          { what: "resolved", count: s.resolved },
          { what: "unresolved (target bar not in the data yet)", count: s.unresolved },
          { what: "skipped: at or before the cutoff", count: s.skipped_before_cutoff },
          { what: "skipped: no bar to forecast from", count: s.skipped_no_data },
        ]),
      );
      if (s.first_as_of) output(`as of ${s.first_as_of} .. ${s.last_as_of}`);
    });
}

/** `promote`, `rollback`, `pin` and `predict`. */
function addChangeAndPredictCommands(program: Command, client: Client, output: Output): void {
  program
    .command("promote")
    .description(
      "make a version the champion (a person's choice: the selection policy leaves it alone), or --auto to hand the model back to the policy",
    )
    .argument("<name>")
    .argument("[version]")
    .option("--auto", "clear the champion you set and let the selection policy choose now and after training")
    .option("-r, --reason <text>")
    .action(
      async (name: string, version: string | undefined, options: { reason?: string; auto?: boolean }) => {
        if ((version === undefined) === !options.auto)
          throw new CliError("give a version, or --auto (not both)");
        if (options.auto) {
          const res = await client().handBack(name, options.reason);
          output(
            `${name}: handed back to the selection policy; serving ${res.serving?.version ?? "none"} (${res.serving?.via ?? "-"})`,
          );
          if (res.change.reason) output(res.change.reason);
          return;
        }
        const res = await client().promote(name, version as string, options.reason);
        output(`${name}: version ${version} is the champion; serving ${res.serving?.version ?? "none"}`);
      },
    );

  program
    .command("rollback")
    .description("put the previous champion back (or --to a version)")
    .argument("<name>")
    .option("--to <version>")
    .option("-r, --reason <text>")
    .action(async (name: string, options: { to?: string; reason?: string }) => {
      const res = await client().rollback(name, options);
      output(
        `${name}: rolled back ${res.change.from} -> ${res.change.to}; serving ${res.serving?.version ?? "none"}`,
      );
    });

  program
    .command("pin")
    .description("pin a version (it beats the champion); 'none' unpins")
    .argument("<name>")
    .argument("<version>")
    .option("-r, --reason <text>")
    .action(async (name: string, version: string, options: { reason?: string }) => {
      const res = await client().pin(name, version === "none" ? null : version, options.reason);
      output(
        `${name}: ${version === "none" ? "unpinned" : `pinned to ${version}`}; serving ${res.serving?.version ?? "none"}`,
      );
    });

  program
    .command("restore")
    .description("bring back a version retention archived; retention keeps it from then on")
    .argument("<name>")
    .argument("<version>")
    .option("-r, --reason <text>")
    .action(async (name: string, version: string, options: { reason?: string }) => {
      const res = await client().restore(name, version, options.reason);
      output(`${name}: version ${version} restored; serving ${res.serving?.version ?? "none"}`);
    });

  program
    .command("predict")
    .description(
      "run a model: --data with nested rows for a one-input model, or --request with a full OIP request",
    )
    .argument("<name>")
    .option("--model-version <version>", "a specific version (default: the one that serves)")
    .option("--data <json>", "rows as nested JSON arrays, e.g. '[[0.1, 0.2, ...]]' (or a file holding them)")
    .option("--request <json>", "an Open Inference Protocol request body (or a file holding one)")
    .action(async (name: string, options: { modelVersion?: string; data?: string; request?: string }) => {
      const api = client();
      let body: InferRequest;
      // Sent as given: the server validates it and says what is wrong.
      if (options.request) body = (await readJson(options.request)) as InferRequest;
      else if (options.data) {
        const data = await readJson(options.data);
        const meta = await api.metadata(name, options.modelVersion);
        const [input, ...others] = meta.inputs;
        if (!input || others.length > 0) {
          throw new CliError(
            `${name} has ${meta.inputs.length} inputs; use --request with a full OIP request`,
          );
        }
        body = {
          inputs: [
            { name: input.name, datatype: input.datatype, shape: shapeOf(data), data: data as unknown[] },
          ],
        };
      } else throw new CliError("give --data or --request");
      const result = await api.infer(name, options.modelVersion, body);
      output(`${name} version ${result.model_version}:`);
      for (const o of result.outputs)
        output(`  ${o.name} [${o.shape.join(", ")}]: ${JSON.stringify(o.data)}`);
    });
}
