/** The Vercel Edge bundle that `npm run build:edge` writes from ./edge.ts (see api/[[...route]].ts). */
declare module "*/dist/vercel/edge.js" {
  const edgeml: (request: Request, context: { waitUntil(work: Promise<unknown>): void }) => Promise<Response>;
  export default edgeml;
}

/** The Vercel Node.js bundle that `npm run vercel-build` writes from ./node.ts (EDGEML_VERCEL_RUNTIME=nodejs). */
declare module "*/dist/vercel/node.js" {
  type Handler = (request: Request) => Response | Promise<Response>;
  export const DELETE: Handler;
  export const GET: Handler;
  export const HEAD: Handler;
  export const OPTIONS: Handler;
  export const PATCH: Handler;
  export const POST: Handler;
  export const PUT: Handler;
}
