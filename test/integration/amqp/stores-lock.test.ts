import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/amqp/index.js';
import type { Transport } from '../../../src/index.js';
import { amqpUrl, freshVhost } from './helpers.js';

/**
 * Listings of the queue-backed stores read every message and put it back under a lock queue. The
 * lock is an exclusive queue, which RabbitMQ only refuses to *other* connections: listings on one
 * transport must take turns in the process too, or one sees messages another has taken out.
 */
let vhost: { vhost: string; drop: () => Promise<void> };
const transports: Transport[] = [];

beforeAll(async () => {
  vhost = await freshVhost('stores-lock');
});

afterAll(async () => {
  for (const t of transports.splice(0)) await t.close();
  await vhost?.drop();
});

describe('AMQP stores under concurrent listings', () => {
  it('eight concurrent subscription listings on one connection and on two each see every subscription', async () => {
    const make = async () => {
      const t = createTransport(new URL(amqpUrl(vhost.vhost)), {});
      transports.push(t);
      await t.connect();
      return t;
    };
    const [a, b] = [await make(), await make()];
    const subs = Array.from({ length: 5 }, (_, i) => ({ task: `t${i}`, queue: `q${i}` }));
    for (const s of subs) await a.subscriptions.add('order.paid', s);
    const lists = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? b : a).subscriptions.list('order.paid')),
    );
    for (const list of lists) expect(list.map((s) => s.task).sort()).toEqual(subs.map((s) => s.task));
  }, 60_000);
});
