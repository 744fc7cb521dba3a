/** The Vercel Edge bundle that `npm run build:edge` writes from ./edge.ts (see api/[[...route]].ts). */
declare module "*/dist/vercel/edge.js" {
  const edgeml: (request: Request, context: { waitUntil(work: Promise<unknown>): void }) => Promise<Response>;
  export default edgeml;
}
