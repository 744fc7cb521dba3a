import cluster from "node:cluster";
import { parseEnv } from "../env-schema.js";
import { workerCount } from "./cluster.js";
import { surviveStrayRejections } from "./stray-rejections.js";

surviveStrayRejections();

/**
 * `npm start`: the Node server on embedded defaults. PORT (3000) and HOST (127.0.0.1) move it; WORKERS (default:
 * every core) runs that many processes behind one port (src/runtime/node/cluster.ts), WORKERS=1 one process alone.
 * Each branch imports only what it runs: the primary never loads the app nor onnxruntime.
 */
// Validated with every other variable (src/runtime/env-schema.ts), in the primary too: a wrong setting stops the
// server once, naming the variable, instead of every worker failing in turn.
const env = parseEnv(process.env);
const { PORT: port = 3000, HOST: hostname = "127.0.0.1" } = env;
const workers = workerCount(env.WORKERS);

if (workers === 1) {
  // Today's server exactly: one process, its stores in its own memory.
  const [{ serveNode }, { nodeDeps }] = await Promise.all([import("./serve.js"), import("./deps.js")]);
  const serving = await serveNode(nodeDeps(), { port, hostname, banner: true });
  const stop = () => void serving.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} else if (cluster.isPrimary) {
  const { runPrimary, preparePredictionLog, freePort } = await import("./cluster.js");
  runPrimary({
    workers,
    port: port === 0 ? await freePort(hostname) : port,
    prepare: () => preparePredictionLog(env),
  });
} else {
  const { connectToPrimary, isStopMessage, workerDeps, workerPlace } = await import("./cluster.js");
  const client = connectToPrimary();
  const { id, banner } = workerPlace();
  // Registered before the app starts: a stop that arrives while onnxruntime initialises ends the worker at once.
  let stop: () => void = () => process.exit(0);
  process.on("message", (message) => {
    if (isStopMessage(message)) stop();
  });
  // The terminal's Ctrl-C reaches every process of the group: the primary stops the workers.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => stop());
  const [{ serveNode }, { nodeDeps }] = await Promise.all([import("./serve.js"), import("./deps.js")]);
  const serving = await serveNode(workerDeps(nodeDeps(), client), {
    port,
    hostname,
    banner,
    workerHeader: String(process.pid),
    label: `worker ${id}, pid ${process.pid}`,
  });
  // A metrics read on any worker first collects what this one has recorded and not yet written.
  client.on("flush", () => serving.services.telemetry.flush());
  // A version another worker registered is listed here before its registration is answered.
  client.on("registry", () => serving.services.registry.refreshListing?.());
  stop = () => {
    void serving.close().then(() => process.exit(0));
  };
}
