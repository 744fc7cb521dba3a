import { describe, expect, it } from "vitest";
import { DEFAULT_LOAD, DOC_HEADING, formatReport, runLoad } from "../../scripts/load";

describe("npm run load (smoke: a few seconds, a few connections)", () => {
  it("runs the mix against the production adapters through a Redis crash and reports its counts", async () => {
    const report = await runLoad({
      ...DEFAULT_LOAD,
      durationS: 3,
      connections: 4,
      killAtS: 1,
      restartAtS: 2,
      log: () => {},
    });
    expect(report.streams.map((s) => s.key)).toEqual(["infer", "metadata", "cached", "uncached"]);
    expect(report.total.requests).toBeGreaterThan(0);
    expect(report.total.requests).toBe(
      report.total.s2xx + report.total.s429 + report.total.s5xx + report.total.other,
    );
    for (const s of report.streams) {
      expect(s.total.requests).toBe(
        s.phases.up.requests + s.phases.down.requests + s.phases.restarted.requests,
      );
    }
    expect(report.peakRssBytes).toBeGreaterThan(0);
    const section = formatReport(report, "npm run load -- --duration 3");
    expect(section.startsWith(`${DOC_HEADING}\n`)).toBe(true);
    expect(section).toContain(`**${report.total.requests.toLocaleString("en-US")} requests:`);
  });
});
