import { EdgeMLError } from "../errors.js";

/** The horizon every deployment serves; the users' current service documents it as required. */
export const DEFAULT_HORIZON = "24h";

/** Registry name of a symbol's forecaster for a horizon: `BTC-24h`. */
export const forecastModelName = (symbol: string, horizon: string) => `${symbol}-${horizon}`;

/** Hours in a horizon such as "24h" (also accepts "1d" as 24h); undefined when it is not one. */
export function horizonHours(horizon: string): number | undefined {
  const match = /^\s*([1-9][0-9]{0,3})\s*([hd])\s*$/i.exec(horizon);
  if (!match) return undefined;
  return Number(match[1]) * (match[2]?.toLowerCase() === "d" ? 24 : 1);
}

/** Normalises "24H", "1d" to the canonical "24h"; 400 naming the supported horizons otherwise. */
export function normaliseHorizon(horizon: string, supported: readonly string[]): string {
  const hours = horizonHours(horizon);
  const canonical = hours === undefined ? undefined : `${hours}h`;
  if (canonical && supported.includes(canonical)) return canonical;
  throw new EdgeMLError(
    "unsupported_horizon",
    `horizon ${JSON.stringify(horizon)} is not served; supported: ${supported.join(", ")}`,
    { details: { horizon, supported } },
  );
}
