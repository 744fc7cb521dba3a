import { fakeYahoo } from "../../market/fake-yahoo.js";

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/**
 * Yahoo Finance's chart API serving the recorded bars of `dir` as if they were the latest: every bar moved forward by
 * the whole number of weeks that makes the last daily bar the most recent one closed by now. Whole weeks keep each
 * bar's weekday and hour, which the features read, so a forecast "now" is the forecast as of the recording's end,
 * the same on every runtime that fetches through it. (The recording ends in the past; forecasts ask for bars up to
 * now, which is why the bars must move rather than the clock: an edge runtime's clock cannot be injected.)
 */
export function shiftedYahoo(dir: string, lastBarMs: number, now = Date.now()) {
  const shiftMs = Math.floor((now - DAY_MS - lastBarMs) / WEEK_MS) * WEEK_MS;
  const shiftS = shiftMs / 1000;
  const inner = fakeYahoo({ dir });
  const calls: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    calls.push(url.toString());
    for (const param of ["period1", "period2"]) {
      const value = url.searchParams.get(param);
      if (value !== null) url.searchParams.set(param, String(Number(value) - shiftS));
    }
    const response = await inner.fetch(url, init);
    if (!response.ok) return response;
    const body = (await response.json()) as {
      chart: { result: { timestamp?: number[]; meta: Record<string, unknown> }[] | null };
    };
    for (const result of body.chart.result ?? []) {
      if (result.timestamp) result.timestamp = result.timestamp.map((t) => t + shiftS);
      for (const key of ["regularMarketTime", "firstTradeDate"]) {
        if (typeof result.meta[key] === "number") result.meta[key] = (result.meta[key] as number) + shiftS;
      }
    }
    return Response.json(body, { headers: response.headers });
  };
  return { fetch: fetch as typeof globalThis.fetch, shiftMs, calls };
}
