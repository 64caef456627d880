import { describe, expect, it } from 'vitest';
import type { Component } from '../../../src/controller/lifecycle.js';
import { Lifecycle } from '../../../src/controller/lifecycle.js';

function recorder(names: string[], failStart?: string, failStop?: string) {
  const log: string[] = [];
  const components: Component[] = names.map((name) => ({
    name,
    start: async () => {
      if (name === failStart) throw new Error(`${name} refused`);
      log.push(`start ${name}`);
    },
    stop: async () => {
      log.push(`stop ${name}`);
      if (name === failStop) throw new Error(`${name} stuck`);
    },
  }));
  return { log, components };
}

describe('Lifecycle', () => {
  it('starts in order and stops in reverse', async () => {
    const { log, components } = recorder(['connections', 'http', 'worker']);
    const lifecycle = new Lifecycle(components, () => undefined);
    await lifecycle.start();
    expect(lifecycle.started).toEqual(['connections', 'http', 'worker']);
    await lifecycle.stop(1000);
    expect(log).toEqual([
      'start connections',
      'start http',
      'start worker',
      'stop worker',
      'stop http',
      'stop connections',
    ]);
    expect(lifecycle.started).toEqual([]);
  });

  it('a failed start stops what had started, in reverse, and rethrows', async () => {
    const { log, components } = recorder(['connections', 'http', 'worker'], 'worker');
    const lifecycle = new Lifecycle(components, () => undefined);
    await expect(lifecycle.start()).rejects.toThrow('worker refused');
    expect(log).toEqual(['start connections', 'start http', 'stop http', 'stop connections']);
  });

  it('a failed stop is reported and the others still stop', async () => {
    const { log, components } = recorder(['connections', 'http', 'worker'], undefined, 'http');
    const errors: string[] = [];
    const lifecycle = new Lifecycle(components, (name, err) =>
      errors.push(`${name}: ${(err as Error).message}`),
    );
    await lifecycle.start();
    await lifecycle.stop(1000);
    expect(log.slice(3)).toEqual(['stop worker', 'stop http', 'stop connections']);
    expect(errors).toEqual(['http: http stuck']);
  });

  it('each stop gets what is left of the budget', async () => {
    const budgets: number[] = [];
    const slow = (name: string): Component => ({
      name,
      start: async () => undefined,
      stop: async (ms) => {
        budgets.push(ms);
        await new Promise((r) => setTimeout(r, 100));
      },
    });
    const lifecycle = new Lifecycle([slow('a'), slow('b')], () => undefined);
    await lifecycle.start();
    await lifecycle.stop(1000);
    expect(budgets[0]).toBeGreaterThan(900);
    expect(budgets[1]).toBeLessThanOrEqual(910);
    expect(budgets[1]).toBeGreaterThan(700);
  });
});
