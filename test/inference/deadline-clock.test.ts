import { afterEach, describe, expect, it, vi } from "vitest";
import { pendingDeadlines, untilTime } from "../../src/inference/deadline-clock.js";

/**
 * The shared deadline clock (src/inference/deadline-clock.ts): every request's deadline kept by one timer. Time is
 * vitest's fake clock here, moved by hand: no assertion waits on a real timer.
 */

const passed = () => new Error("deadline passed");
const never = () => new Promise<never>(() => {});

describe("untilTime: a request's deadline on the shared clock", () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("settles with the work when it finishes first, and leaves no waiter behind", async () => {
    vi.useFakeTimers();
    await expect(untilTime(Promise.resolve(7), Date.now() + 1_000, passed)).resolves.toBe(7);
    await expect(untilTime(Promise.reject(new Error("own")), Date.now() + 1_000, passed)).rejects.toThrow(
      "own",
    );
    expect(pendingDeadlines()).toBe(0);
  });

  it("rejects with the deadline's reason once its instant passes, not before", async () => {
    vi.useFakeTimers();
    const outcome = untilTime(never(), Date.now() + 1_000, passed);
    let settled = false;
    outcome.catch(() => {}).finally(() => (settled = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(outcome).rejects.toThrow("deadline passed");
    expect(pendingDeadlines()).toBe(0);
  });

  it("an instant already past rejects at once", async () => {
    await expect(untilTime(never(), Date.now() - 1, passed)).rejects.toThrow("deadline passed");
  });

  it("many requests arm one timer, and each still gets its own instant", async () => {
    vi.useFakeTimers();
    const armed = vi.spyOn(globalThis, "setTimeout");
    const start = Date.now();
    const outcomes = Array.from({ length: 100 }, (_, i) => untilTime(never(), start + 1_000 + i, passed));
    for (const outcome of outcomes) outcome.catch(() => {});
    expect(armed).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1_050);
    expect(pendingDeadlines()).toBe(49);
    await vi.advanceTimersByTimeAsync(100);
    expect(pendingDeadlines()).toBe(0);
    await Promise.all(outcomes.map((o) => expect(o).rejects.toThrow("deadline passed")));
  });

  it("an earlier deadline than the one armed re-arms the timer for it", async () => {
    vi.useFakeTimers();
    const late = untilTime(never(), Date.now() + 5_000, passed);
    const early = untilTime(never(), Date.now() + 100, passed);
    late.catch(() => {});
    early.catch(() => {});
    await vi.advanceTimersByTimeAsync(100);
    await expect(early).rejects.toThrow("deadline passed");
    expect(pendingDeadlines()).toBe(1);
    await vi.advanceTimersByTimeAsync(4_900);
    await expect(late).rejects.toThrow("deadline passed");
  });
});
