import { describe, expect, it } from 'vitest';
import type { ConsumingWorker } from '../../../src/controller/progress.js';
import { ProgressWatch } from '../../../src/controller/progress.js';

/** A worker and a queue under the test's control, and a clock. */
function setup(stallAfterMs = 10_000) {
  let now = 1_000_000;
  const state = { depth: 0, received: 0, active: 0, reserved: 0, credit: 4 };
  const worker: ConsumingWorker = {
    queues: ['celery'],
    get active() {
      return state.active;
    },
    get reserved() {
      return state.reserved;
    },
    stats: {
      get received() {
        return state.received;
      },
    },
    credit: () => state.credit,
  };
  const watch = new ProgressWatch(worker, async () => state.depth, { stallAfterMs, now: () => now });
  const advance = async (ms: number) => {
    now += ms;
    await watch.check();
  };
  return { state, watch, advance };
}

describe('ProgressWatch', () => {
  it('a worker with free slots that receives nothing while its queue has work becomes unhealthy', async () => {
    const { state, watch, advance } = setup();
    await advance(0);
    state.depth = 7;
    await advance(1000);
    expect(watch.report().status).toBe('healthy');
    await advance(9000);
    expect(watch.report().status).toBe('healthy');
    await advance(1000);
    const report = watch.report();
    expect(report.status).toBe('unhealthy');
    expect(report.reason).toMatch(
      /not consuming: 7 messages ready in celery and 4 free slots, but nothing received for 10 s/,
    );
    // It takes a message again: healthy at once.
    state.received++;
    await advance(1000);
    expect(watch.report().status).toBe('healthy');
  });

  it('a busy worker (no free credit) or an empty queue is never a stall', async () => {
    const { state, watch, advance } = setup();
    state.depth = 100;
    state.active = 3;
    state.reserved = 1;
    for (let i = 0; i < 5; i++) await advance(10_000);
    expect(watch.report().status).toBe('healthy');
    state.active = 0;
    state.reserved = 0;
    state.depth = 0;
    for (let i = 0; i < 5; i++) await advance(10_000);
    expect(watch.report().status).toBe('healthy');
  });

  it('the clock starts when a slot frees, not at the last delivery', async () => {
    const { state, watch, advance } = setup();
    state.depth = 5;
    state.active = 4; // busy for a long time: nothing received, rightly
    for (let i = 0; i < 10; i++) await advance(10_000);
    state.active = 3; // a slot frees
    await advance(1000);
    expect(watch.report().status).toBe('healthy');
    await advance(10_000);
    expect(watch.report().status).toBe('unhealthy');
  });

  it('a broker that cannot say its depth makes the check degraded, not unhealthy', async () => {
    let now = 0;
    const worker: ConsumingWorker = {
      queues: ['q'],
      active: 0,
      reserved: 0,
      stats: { received: 0 },
      credit: () => 1,
    };
    const watch = new ProgressWatch(
      worker,
      async () => {
        throw new Error('connection lost');
      },
      { now: () => now },
    );
    await watch.check();
    now += 100_000;
    expect(watch.report()).toEqual({
      status: 'degraded',
      reason: 'cannot read queue depth: connection lost',
    });
  });
});
