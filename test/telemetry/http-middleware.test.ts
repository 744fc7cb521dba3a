import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { noteErrorCode } from "../../src/telemetry/error-code.js";
import { httpMiddleware } from "../../src/telemetry/instruments.js";
import { createMemoryMetricsStore } from "../../src/telemetry/store.js";
import { createWriter } from "../../src/telemetry/writer.js";

/**
 * The HTTP metrics middleware on the request path: records merged synchronously, error codes taken from where the
 * error body was made (no copy of the body parsed), and every answer counted exactly once either way.
 */
function appWithMetrics() {
  const store = createMemoryMetricsStore();
  const deferred: Promise<unknown>[] = [];
  const writer = createWriter({ store, defer: (work) => deferred.push(work), warn: () => {} });
  const app = new Hono();
  app.use("*", httpMiddleware(writer.track));
  app.get("/ok", (c) => c.json({ ok: true }));
  app.get("/noted", (c) => {
    noteErrorCode(c, "invalid_request");
    return c.json({ error: "edgeml: bad", code: "invalid_request" }, 400);
  });
  // An error answer made where nobody notes its code: the middleware reads it from the body.
  app.get("/unnoted", (c) => c.json({ error: "edgeml: gone", code: "not_found" }, 404));
  const counts = async () => {
    await writer.flush();
    const all = await store.readAll();
    const sum = (prefix: string) =>
      Object.entries(all)
        .filter(([k]) => k.startsWith(prefix))
        .reduce((n, [, v]) => n + v, 0);
    return { all, sum };
  };
  return { app, counts, deferred };
}

afterEach(() => vi.restoreAllMocks());

describe("httpMiddleware(track)", () => {
  it("counts every answer exactly once, by route, method and status, with one duration observation each", async () => {
    const { app, counts } = appWithMetrics();
    for (let i = 0; i < 25; i++) await app.request("/ok");
    for (let i = 0; i < 7; i++) await app.request("/noted");
    for (let i = 0; i < 3; i++) await app.request("/unnoted");
    const { all, sum } = await counts();
    expect(all["edgeml_http_requests_total|method=GET|route=%2Fok|status=200"]).toBe(25);
    expect(all["edgeml_http_requests_total|method=GET|route=%2Fnoted|status=400"]).toBe(7);
    expect(all["edgeml_http_requests_total|method=GET|route=%2Funnoted|status=404"]).toBe(3);
    expect(sum("edgeml_http_request_duration_seconds_bucket")).toBe(35);
    expect(all["edgeml_http_errors_total|code=invalid_request|route=%2Fnoted"]).toBe(7);
    expect(all["edgeml_http_errors_total|code=not_found|route=%2Funnoted"]).toBe(3);
  });

  it("a noted error code is counted without copying the body; an unnoted one is read from a copy", async () => {
    const { app, counts } = appWithMetrics();
    const clone = vi.spyOn(Response.prototype, "clone");
    await app.request("/noted");
    expect(clone).not.toHaveBeenCalled();
    await app.request("/unnoted");
    expect(clone).toHaveBeenCalledTimes(1);
    const { sum } = await counts();
    expect(sum("edgeml_http_errors_total")).toBe(2);
  });

  it("a success costs the request no promise of its own: one deferred write takes the records made until it runs", async () => {
    const { app, counts, deferred } = appWithMetrics();
    await Promise.all(Array.from({ length: 10 }, () => app.request("/ok")));
    // Ten answers, merged into the writes scheduled for them: fewer deferred promises than answers.
    expect(deferred.length).toBeLessThan(10);
    const { sum } = await counts();
    expect(sum("edgeml_http_requests_total")).toBe(10);
  });
});
