/** What bench/peer/load.ts checks in every response of a timed run, on either server. */

/** What a correct response holds; anything else counts as a wrong answer. */
export type Expect =
  | { kind: "infer"; modelName: string; prediction: number; tolerance: number }
  | { kind: "serve"; price: number; asOf: string };

type Check = (body: Record<string, unknown>) => boolean;

const checks: { [K in Expect["kind"]]: (expect: Extract<Expect, { kind: K }>) => Check } = {
  // One row in, one prediction out, within the tolerance of scikit-learn's for that row.
  infer: (expect) => (r) => {
    const data = (r.outputs as { data?: unknown[] }[] | undefined)?.[0]?.data;
    const value = data?.[0];
    return (
      r.model_name === expect.modelName &&
      data?.length === 1 &&
      typeof value === "number" &&
      Math.abs(value - expect.prediction) <= expect.tolerance
    );
  },
  // A cache hit of the one forecast: that close, that bar.
  serve: (expect) => (r) =>
    r.cached === true && r.predicted_price === expect.price && r.as_of === expect.asOf,
};

/** A checker of response bodies: JSON.parse and a few comparisons, a few µs per response on either server. */
export function verifier(expect: Expect): (body: string) => boolean {
  const check =
    expect.kind === "infer"
      ? checks.infer(expect)
      : checks.serve(expect as Extract<Expect, { kind: "serve" }>);
  return (body) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return false;
    }
    return typeof parsed === "object" && parsed !== null && check(parsed as Record<string, unknown>);
  };
}
