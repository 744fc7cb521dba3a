/** Polls until `check` holds: for behaviour that depends on a clock (expiry, reconnection), without asserting how long it takes. */
export async function eventually(check: () => Promise<boolean>, what: string, attempts = 400): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what}: never happened`);
}
