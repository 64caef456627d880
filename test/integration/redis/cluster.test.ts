import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/redis/index.js';
import type { Delivery } from '../../../src/brokers/transport.js';
import { createResultSink } from '../../../src/results/redis/index.js';
import { sinkContract } from '../../contract/sink.contract.js';
import { transportContract } from '../../contract/transport.contract.js';
import { testMessage } from '../../helpers/messages.js';
import { startCluster } from './servers.js';

/** A real local 3-master Redis Cluster (redis-server --cluster-enabled yes on spare ports). */
let cluster: { ports: number[]; stop: () => Promise<void> } | undefined;
const url = (): string => {
  const [first, ...rest] = cluster?.ports ?? [];
  return `redis+cluster://127.0.0.1:${first}/?${rest.map((p) => `node=127.0.0.1:${p}`).join('&')}`;
};

beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

transportContract('redis+cluster', async () => ({
  transport: createTransport(new URL(url()), { options: { lease: '2s', pollInterval: 200 } }),
}));
sinkContract('redis+cluster', async () => ({ sink: createResultSink(new URL(url()), {}) }));

describe('redis+cluster layout', () => {
  it('keeps every key of a queue in one slot ({queue} hash tag) and spreads queues over the nodes', async () => {
    const t = createTransport(new URL(`${url()}&global_keyprefix=app1:`), { options: { lease: '2s' } });
    const admin = new Cluster(cluster?.ports.map((port) => ({ host: '127.0.0.1', port })) ?? []);
    try {
      const queues = Array.from({ length: 12 }, (_, i) => `q${i}`);
      await t.publish(queues.map((queue) => ({ queue, message: testMessage() })));
      await t.publish([{ queue: 'q0', message: testMessage(), notBefore: Date.now() + 60_000 }]);
      const got: Delivery[] = [];
      await t.consume(['q0'], (d) => got.push(d), { prefetch: 5 });
      while (got.length < 1) await new Promise((r) => setTimeout(r, 20));
      await t.deadLetter(got[0] as Delivery, 'test');
      const keys = [
        'app1:{q0}',
        'app1:{q0}.unacked',
        'app1:{q0}.unacked_index',
        'app1:{q0}.delayed',
        'app1:{q0}.dead',
        'app1:{q0}.wake',
      ];
      const slots = await Promise.all(keys.map((k) => admin.cluster('KEYSLOT', k)));
      expect(new Set(slots).size).toBe(1);
      expect(await admin.exists('app1:{q0}.dead')).toBe(1);
      expect(await admin.exists('app1:{q0}.delayed')).toBe(1);
      const queueSlots = await Promise.all(queues.map((q) => admin.cluster('KEYSLOT', `app1:{${q}}`)));
      expect(new Set(queueSlots).size).toBeGreaterThan(1);
      // A batch across slots was written (one script per slot).
      for (const q of queues.slice(1)) expect(await t.depth(q)).toBe(1);
    } finally {
      await t.close();
      admin.disconnect();
    }
  });
});
