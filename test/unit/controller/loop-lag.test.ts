import { describe, expect, it } from 'vitest';
import { LoopLag } from '../../../src/controller/loop-lag.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: the event loop cannot turn
  }
}

describe('LoopLag', () => {
  it('is healthy on an idle loop and says so when a task blocks it', async () => {
    const lag = new LoopLag({ degradedMs: 100, unhealthyMs: 400, windowMs: 60_000 });
    lag.start();
    try {
      await sleep(200);
      expect(lag.report()).toEqual({ status: 'healthy' });
      // Many blocked ticks in a row: p99 of the window is the block.
      for (let i = 0; i < 5; i++) {
        block(150);
        await sleep(25);
      }
      const degraded = lag.report();
      expect(degraded.status).toBe('degraded');
      expect(degraded.reason).toMatch(/event loop delay p99 \d+ ms .*≥ 100 ms/);
      for (let i = 0; i < 5; i++) {
        block(500);
        await sleep(25);
      }
      expect(lag.report().status).toBe('unhealthy');
      expect(lag.sample().maxMs).toBeGreaterThanOrEqual(450);
    } finally {
      lag.stop();
    }
  });

  it('forgets a blocked window once a quiet window has passed', async () => {
    const lag = new LoopLag({ degradedMs: 100, unhealthyMs: 10_000, windowMs: 300 });
    lag.start();
    try {
      for (let i = 0; i < 3; i++) {
        block(150);
        await sleep(25);
      }
      expect(lag.report().status).toBe('degraded');
      await sleep(800);
      expect(lag.report().status).toBe('healthy');
    } finally {
      lag.stop();
    }
  });
});
