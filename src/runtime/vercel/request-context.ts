/**
 * `waitUntil` of the Vercel request being served, for code that has no context argument (Node functions). Vercel
 * exposes the request's context at `globalThis[Symbol.for("@vercel/request-context")]`: it is what
 * `@vercel/functions`' own `waitUntil` reads, and what `vercel dev` provides. Outside Vercel there is none, and the
 * work simply runs on in the process (with its failure logged).
 */
import { consoleLogger, type Logger } from "../../logger.js";

const REQUEST_CONTEXT = Symbol.for("@vercel/request-context");

interface RequestContext {
  waitUntil?: (work: Promise<unknown>) => void;
}

export function vercelWaitUntil(work: Promise<unknown>, logger: Pick<Logger, "error"> = consoleLogger): void {
  const holder = (globalThis as Record<symbol, { get?: () => RequestContext | undefined } | undefined>)[
    REQUEST_CONTEXT
  ];
  const waitUntil = holder?.get?.()?.waitUntil;
  if (waitUntil) waitUntil(work);
  else work.catch((error) => logger.error("background work failed", error));
}
