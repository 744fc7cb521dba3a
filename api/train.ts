/**
 * The training function on Vercel's Node.js runtime (maxDuration in vercel.json): the daily cron
 * (`GET /api/train`, `Authorization: Bearer $CRON_SECRET`) and the app's training routes, which vercel.json
 * routes here. See src/runtime/vercel/train.ts.
 */
import { handle } from "hono/vercel";
import { surviveStrayRejections } from "../src/runtime/node/stray-rejections.js";
import { vercelNodeDeps } from "../src/runtime/vercel/node-deps.js";
import { createTrainFunction } from "../src/runtime/vercel/train.js";

// One function instance serves several invocations (Fluid compute): a stray rejection must not end them all.
surviveStrayRejections();

const app = createTrainFunction({ ...vercelNodeDeps(process.env), cronSecret: process.env.CRON_SECRET });

export const GET = handle(app);
export const POST = handle(app);
