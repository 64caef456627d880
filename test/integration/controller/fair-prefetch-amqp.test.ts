import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fairScenario } from '../../unit/controller/fair-scenario.js';
import { amqpUrl, freshVhost } from '../amqp/helpers.js';

/** Fair prefetch over RabbitMQ (per-consumer basic.qos): two workers, two connections, a vhost of this file. */
let vhost: { vhost: string; drop: () => Promise<void> };

beforeAll(async () => {
  vhost = await freshVhost('fair-prefetch');
});

afterAll(async () => {
  await vhost?.drop();
});

describe('fair prefetch (RabbitMQ)', () => {
  it('prefetch 0: while A runs a long task, every short task published after it runs on B', async () => {
    const r = await fairScenario(amqpUrl(vhost.vhost), { prefetchA: 0 });
    expect(r).toEqual({ shortsOnA: 0, shortsOnB: 10, maxReservedOnA: 0, maxHeldOnA: 1 });
  });

  it('prefetch 1: A reserves at most one (inspect reserved ≤ prefetch); B runs the rest', async () => {
    const r = await fairScenario(amqpUrl(vhost.vhost), { prefetchA: 1 });
    expect(r.maxReservedOnA).toBeLessThanOrEqual(1);
    expect(r.maxHeldOnA).toBeLessThanOrEqual(2);
    expect(r.shortsOnA + r.shortsOnB).toBe(10);
    expect(r.shortsOnB).toBeGreaterThanOrEqual(9);
  });
});
