import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { readRegistryDir } from "../../../scripts/edge/embed.js";
import { type App, type AppDeps, createApp } from "../../../src/app.js";
import { trainSymbol } from "../../../src/forecast/training.js";
import { silentLogger } from "../../../src/logger.js";
import { createCsvMarketData } from "../../../src/market/node/csv.js";
import { createYahooMarketData } from "../../../src/market/yahoo.js";
import type { EmbeddedRegistry } from "../../../src/storage/embedded.js";
import { createFsArtifactStore } from "../../../src/storage/node/fs-artifacts.js";
import { createJsonFilePointerStore } from "../../../src/storage/node/json-file-pointers.js";
import { trainForecaster } from "../../../src/training/forecaster.js";
import { testEngine } from "../../support/app.js";
import { BYO_MODELS, MARKET_DATA, tempDir } from "../../support/paths.js";
import { shiftedYahoo } from "./shifted-yahoo.js";

export const ADMIN_TOKEN = "runtime-admin-token-0123456789";

/** Bring-your-own exports served in every runtime: a float32 tree ensemble and a float64 MLP. */
export const BYO = ["sk_gbr_f32", "sk_mlp_f64"] as const;

export interface RuntimeFixture {
  /** The registry the edge bundles embed: the same files the Node app serves. */
  embedded: EmbeddedRegistry;
  /** The reference: the app on Node over the same models and the same Yahoo answers. */
  node: App;
  /** Yahoo's chart API over the recorded bars, for both sides. */
  yahoo: ReturnType<typeof shiftedYahoo>;
  byo: Record<
    (typeof BYO)[number],
    { input: { name: string; datatype: string; shape: number[]; data: number[] } }
  >;
  cleanup: () => Promise<void>;
}

/**
 * A registry in a temporary directory with what the runtimes must serve: BTC and ETH forecasters trained here on the
 * recorded market data (both families; BTC's ridge promoted so that pointers matter), and two scikit-learn exports.
 */
export async function runtimeFixture(): Promise<RuntimeFixture> {
  const dir = await tempDir("edgeml-runtime-");
  const modelsDir = join(dir.path, "models");
  const base: AppDeps = {
    artifacts: createFsArtifactStore(modelsDir),
    pointers: createJsonFilePointerStore(join(modelsDir, "pointers.json")),
    engine: testEngine(),
    market: createCsvMarketData({ dir: MARKET_DATA }),
    config: { adminToken: ADMIN_TOKEN },
    logger: silentLogger,
  };
  const { registry } = createApp(base);
  let lastBar = 0;
  for (const symbol of ["BTC", "ETH"]) {
    const trained = await trainSymbol({ trainer: trainForecaster, symbol, market: base.market, registry });
    const bars = await base.market.getBars(symbol, "1d");
    lastBar = Math.max(lastBar, bars.at(-1)?.time ?? 0);
    if (symbol === "BTC") {
      const ridge = trained.find((t) => t.family === "ridge");
      if (ridge)
        await registry.promote(ridge.name, ridge.version, "runtime suites: serve a promoted version");
    }
  }
  const byo = {} as RuntimeFixture["byo"];
  for (const name of BYO) {
    const spec = JSON.parse(await readFile(join(BYO_MODELS, `${name}.json`), "utf8"));
    const bytes = new Uint8Array(await readFile(join(BYO_MODELS, spec.model)));
    await registry.register(name, bytes, { description: spec.description, tags: { source: "byo" } });
    byo[name] = { input: spec.input };
  }
  const yahoo = shiftedYahoo(MARKET_DATA, lastBar);
  const node = createApp({ ...base, market: createYahooMarketData({ fetch: yahoo.fetch }) });
  return { embedded: await readRegistryDir(modelsDir), node, yahoo, byo, cleanup: dir.cleanup };
}
