import { describe, expect, it } from 'vitest';
import { Autoscaler, parseAutoscale } from '../../../src/controller/autoscale.js';
import { Controller } from '../../../src/controller/controller.js';
import { sleep, testApp, until } from '../../helpers/app.js';

describe('autoscale', () => {
  it('grows under a backlog up to MAX and shrinks to MIN once idle for the cooldown', async () => {
    const app = testApp();
    const work = app.task('a.work', async (ms: number) => {
      await sleep(ms);
    });
    const controller = new Controller(app, {
      worker: { prefetch: 0 },
      autoscale: { max: 8, min: 2, intervalMs: 50, cooldownMs: 400 },
    });
    await controller.start();
    const worker = controller.worker;
    const sizes: number[] = [worker.concurrency];
    let peakActive = 0;
    const sampler = setInterval(() => {
      if (sizes.at(-1) !== worker.concurrency) sizes.push(worker.concurrency);
      peakActive = Math.max(peakActive, worker.active);
    }, 10);
    try {
      expect(worker.concurrency).toBe(2);
      await Promise.all(Array.from({ length: 40 }, () => work.delay(150)));
      await until(() => worker.concurrency === 8, 3000, 'growth to MAX');
      await until(() => worker.stats.succeeded === 40, 10_000, 'the backlog to drain');
      expect(peakActive).toBe(8);
      // Idle: down to MIN (the cooldown itself is checked with a fake clock below).
      await until(() => worker.concurrency === 2, 3000, 'shrink to MIN');
      await sleep(30); // one more sample
      expect(sizes[0]).toBe(2);
      expect(Math.max(...sizes)).toBe(8);
      expect(sizes.at(-1)).toBe(2);
      expect(sizes.every((s) => s >= 2 && s <= 8)).toBe(true);
    } finally {
      clearInterval(sampler);
      await controller.stop();
    }
  });

  it('does not shrink within the cooldown after a change, and does not grow while slots are free', async () => {
    let now = 0;
    let ready = 0;
    const w = {
      queues: ['q'],
      concurrency: 2,
      active: 0,
      reserved: 0,
      resize: (n: number) => {
        w.concurrency = n;
      },
    };
    const scaler = new Autoscaler(w, async () => ready, {
      max: 10,
      min: 1,
      cooldownMs: 1000,
      now: () => now,
    });
    scaler.start();
    scaler.stop();
    // Free slots: a backlog the current slots can take is not a reason to grow.
    ready = 5;
    w.active = 1;
    expect(await scaler.tick()).toBeNull();
    w.active = 2;
    expect(await scaler.tick()).toBe(7);
    ready = 0;
    w.active = 0;
    now += 500;
    expect(await scaler.tick()).toBeNull();
    now += 600;
    expect(await scaler.tick()).toBe(1);
  });

  it("parses Celery's MAX,MIN", () => {
    expect(parseAutoscale('10,3')).toEqual({ max: 10, min: 3 });
    expect(parseAutoscale('4')).toEqual({ max: 4, min: 1 });
    expect(() => parseAutoscale('3,10')).toThrow(/MIN ≤ MAX/);
    expect(() => parseAutoscale('ten')).toThrow(/expected MAX,MIN/);
  });
});
