import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/redis/index.js';
import { createResultSink } from '../../../src/results/redis/index.js';
import { sinkContract } from '../../contract/sink.contract.js';
import { transportContract } from '../../contract/transport.contract.js';
import { testMessage } from '../../helpers/messages.js';
import { startSentinel, startSentinelWithReplica } from './servers.js';

/** A real master + `redis-server --sentinel` on spare ports; the URL names the sentinel and the master's name. */
let env: { sentinelPort: number; masterPort: number; stop: () => Promise<void> } | undefined;
const url = (): string => `redis+sentinel://127.0.0.1:${env?.sentinelPort}/mymaster/0`;

beforeAll(async () => {
  env = await startSentinel();
}, 30_000);
afterAll(async () => {
  await env?.stop();
});

transportContract('redis+sentinel', async () => ({
  transport: createTransport(new URL(url()), { options: { lease: '2s', pollInterval: 200 } }),
}));
sinkContract('redis+sentinel', async () => ({ sink: createResultSink(new URL(url()), {}) }));

describe('redis+sentinel', () => {
  it('finds the master through the sentinel (a second sentinel address may be listed with ?sentinel=)', async () => {
    const t = createTransport(new URL(`${url()}?sentinel=127.0.0.1:1`), {});
    try {
      await t.connect();
      await t.publish([{ queue: 'via-sentinel', message: testMessage() }]);
      expect(await t.depth('via-sentinel')).toBe(1);
      expect(await t.purge('via-sentinel')).toBe(1);
    } finally {
      await t.close();
    }
  });
});

describe('redis+sentinel failover', () => {
  it('follows the new master after the old one dies: degraded meanwhile, then publishes and consumes again', async () => {
    const env2 = await startSentinelWithReplica();
    const t = createTransport(new URL(`redis+sentinel://127.0.0.1:${env2.sentinelPort}/mymaster/0`), {
      options: { pollInterval: 100, lease: '2s' },
    });
    try {
      await t.connect();
      const got: string[] = [];
      await t.consume(
        ['fo'],
        (d) => {
          got.push(String(d.message?.headers.id));
          void t.ack(d);
        },
        { prefetch: 10 },
      );
      const first = testMessage();
      await t.publish([{ queue: 'fo', message: first }]);
      while (got.length < 1) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300)); // let the replica catch up
      await env2.master.stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      expect(t.health().status).toBe('degraded');
      const second = testMessage();
      const sent = t.publish([{ queue: 'fo', message: second }]); // waits in the backlog
      const end = Date.now() + 30_000;
      while (!got.includes(String(second.headers.id)) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 50));
      await sent;
      expect(got).toContain(String(second.headers.id));
      expect(t.health()).toEqual({ status: 'healthy' });
    } finally {
      await t.close();
      await env2.stop();
    }
  }, 60_000);
});
