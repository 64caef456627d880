import type { AddressInfo, Server } from 'node:net';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../../src/brokers/transport.js';
import { Controller } from '../../../src/controller/controller.js';
import type { HealthReport } from '../../../src/health.js';
import { sleep, testApp, until } from '../../helpers/app.js';

async function get(port: number, path: string): Promise<{ status: number; body: HealthReport }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: (await res.json()) as HealthReport };
}

describe('Controller', () => {
  it('serves /livez and /readyz with components and reasons, and 503 once it stops consuming', async () => {
    const app = testApp();
    const add = app.task('c.add', (a: number, b: number) => a + b);
    // The transport the worker will use; a switch makes its consumer swallow deliveries, as a
    // consumer loop that died while the connection stayed up.
    const transport = await app.transport();
    let swallow = false;
    const swallowed: Delivery[] = [];
    const consume = transport.consume.bind(transport);
    transport.consume = (queues, onDelivery, options) =>
      consume(
        queues,
        (d) => {
          if (swallow) swallowed.push(d);
          else onDelivery(d);
        },
        options,
      );
    const controller = new Controller(app, {
      worker: { concurrency: 2, prefetch: 0 },
      healthPort: 0,
      healthHost: '127.0.0.1',
      progress: { stallAfterMs: 300, intervalMs: 50 },
    });
    await controller.start();
    const port = controller.healthPort as number;
    try {
      const live = await get(port, '/livez');
      expect(live.status).toBe(200);
      expect(live.body.status).toBe('healthy');
      const ready = await get(port, '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body.status).toBe('healthy');
      expect(Object.keys(ready.body.components ?? {}).sort()).toEqual(
        ['broker', 'consumption', 'eventLoop', 'results', 'worker'].sort(),
      );
      expect(await (await add.delay(2, 3)).get({ timeout: 2000 })).toBe(5);

      swallow = true;
      for (let i = 0; i < 5; i++) await add.delay(i, i);
      await until(() => swallowed.length === 2, 2000, 'the consumer to swallow its credit');
      // Connected, loop fine, 3 messages ready, 2 free slots, nothing received: unhealthy.
      await until(async () => (await get(port, '/readyz')).status === 503, 3000, '/readyz to fail');
      const stalled = await get(port, '/readyz');
      expect(stalled.body.status).toBe('unhealthy');
      expect(stalled.body.components?.consumption?.reason).toMatch(
        /^not consuming: 3 messages ready in celery and 2 free slots, but nothing received for \d+ s$/,
      );
      expect(stalled.body.reason).toMatch(/^consumption: not consuming/);
      expect(stalled.body.components?.broker?.status).toBe('healthy');
      // Liveness is about the process, not consumption: a restart is the readiness/alerting call.
      expect((await get(port, '/livez')).status).toBe(200);
    } finally {
      swallow = false;
      await controller.stop();
    }
    expect(controller.state).toBe('stopped');
    await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
  });

  it('says "stopping" on /readyz while the worker drains, and keeps /livez up', async () => {
    const app = testApp();
    const slow = app.task('c.slow', async (ms: number) => {
      await sleep(ms);
      return ms;
    });
    const controller = new Controller(app, {
      healthPort: 0,
      healthHost: '127.0.0.1',
      shutdownTimeoutMs: 5000,
    });
    await controller.start();
    const port = controller.healthPort as number;
    const result = await slow.delay(600);
    await until(() => controller.worker.active === 1, 2000, 'the task to start');
    const stopped = controller.stop();
    const ready = await get(port, '/readyz');
    expect(ready).toEqual({ status: 503, body: { status: 'unhealthy', reason: 'stopping' } });
    expect((await get(port, '/livez')).status).toBe(200);
    await stopped;
    expect(controller.worker.stats.succeeded).toBe(1);
    expect(result.id).toBeTruthy();
  });

  it('starts components in order and stops them in reverse, and a failed start leaves nothing open', async () => {
    const app = testApp({ broker: 'memory://ordered' });
    app.task('c.noop', () => null);
    const order: string[] = [];
    const controller = new Controller(app, { healthPort: 0, healthHost: '127.0.0.1' });
    controller.worker.on('worker-online', () => order.push('worker online'));
    controller.worker.on('worker-offline', () => order.push('worker offline'));
    await controller.start();
    const port = controller.healthPort as number;
    order.push(`http ${(await get(port, '/livez')).status}`);
    await controller.stop();
    // The worker went offline while HTTP was still up, and the app is closed after both.
    expect(order).toEqual(['worker online', 'http 200', 'worker offline']);
    await expect(app.transport()).rejects.toThrow(/closed/i);

    const busy = testApp();
    busy.task('c.noop', () => null);
    const holder = await new Promise<Server>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => resolve(s));
    });
    const usedPort = (holder.address() as AddressInfo).port;
    const clash = new Controller(busy, { healthPort: usedPort, healthHost: '127.0.0.1' });
    await expect(clash.start()).rejects.toThrow(/EADDRINUSE/);
    expect(clash.worker.health().status).toBe('unhealthy');
    await expect(busy.transport()).rejects.toThrow(/closed/i);
    holder.close();
  });
});
