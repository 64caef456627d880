import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/redis/index.js';
import { createResultSink } from '../../../src/results/redis/index.js';
import { sinkContract } from '../../contract/sink.contract.js';
import { transportContract } from '../../contract/transport.contract.js';
import { testMessage } from '../../helpers/messages.js';
import { startSentinel } from './servers.js';

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
