// Stands in for undici's types in the runtime-agnostic check (tsconfig.agnostic.json). @vercel/blob's declarations
// import undici, whose declarations reference Node's types; left alone, that reference would put `process`, `Buffer`
// and `node:*` back into scope for every agnostic module and the check would prove nothing.
declare const undici: unknown;
export = undici;
