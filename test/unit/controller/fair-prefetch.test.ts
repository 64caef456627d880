import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fairScenario } from './fair-scenario.js';

/** Fair prefetch on the memory broker (the Redis run is in test/integration/controller). */
describe('fair prefetch (memory broker)', () => {
  const broker = () => `memory://fair-${randomUUID().slice(0, 8)}`;

  it('prefetch 0: while A runs a long task, every short task published after it runs on B', async () => {
    const r = await fairScenario(broker(), { prefetchA: 0 });
    expect(r).toEqual({ shortsOnA: 0, shortsOnB: 10, maxReservedOnA: 0, maxHeldOnA: 1 });
  });

  it('prefetch 1: A reserves at most one (inspect reserved ≤ prefetch); B runs the rest', async () => {
    const r = await fairScenario(broker(), { prefetchA: 1 });
    expect(r.maxReservedOnA).toBe(1);
    expect(r.maxHeldOnA).toBe(2);
    expect(r.shortsOnA + r.shortsOnB).toBe(10);
    expect(r.shortsOnB).toBeGreaterThanOrEqual(9);
  });

  // KNOWN DEFECT (it.fails: passes while the defect is there; flip it to `it` when fixed). A task
  // with acksLate: false is acked when it starts, which gives its broker credit back while it
  // still runs, so A takes one more message than concurrency + prefetch and a short task waits
  // behind the long one. A fix needs Consumer.setPrefetch(0) (both transports refuse 0 today)
  // and the worker lowering its credit by the early-acked runs.
  it.fails('prefetch 0 with an early-acked long task (acksLate: false): A still reserves nothing', async () => {
    const r = await fairScenario(broker(), { prefetchA: 0, longAcksLate: false });
    expect(r).toEqual({ shortsOnA: 0, shortsOnB: 10, maxReservedOnA: 0, maxHeldOnA: 1 });
  });
});
