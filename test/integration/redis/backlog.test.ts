import { describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/redis/index.js';
import { ClosedError, ConfigError, ConnectionError } from '../../../src/errors.js';
import { createResultSink } from '../../../src/results/redis/index.js';
import { testMessage } from '../../helpers/messages.js';
import { RedisServer, sparePort, tempDir } from './servers.js';

describe('redis broker while Redis is unreachable', () => {
  it('keeps at most maxBacklog messages, refuses more with ConnectionError, flushes them when Redis comes', async () => {
    const port = await sparePort();
    const t = createTransport(new URL(`redis://127.0.0.1:${port}/0`), { options: { maxBacklog: 5 } });
    try {
      await expect(t.connect()).rejects.toBeInstanceOf(ConnectionError);
      expect(t.health()).toMatchObject({ status: 'degraded' });
      const waiting = [1, 2, 3, 4, 5].map(() => t.publish([{ queue: 'q', message: testMessage() }]));
      const refused = await t.publish([{ queue: 'q', message: testMessage() }]).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ConnectionError);
      expect(String((refused as Error).message)).toMatch(
        /backlog is full \(5 of 5 messages; brokerOptions\.maxBacklog\)/,
      );
      expect(t.health().reason).toMatch(/5 messages waiting to be published/);
      // Redis comes up on that port: the backlog goes out, nothing is lost.
      const { server, remove } = await startStandaloneOn(port);
      try {
        await Promise.all(waiting);
        expect(await t.depth('q')).toBe(5);
        expect(t.health()).toEqual({ status: 'healthy' });
      } finally {
        await t.close();
        await server.stop('SIGKILL');
        remove();
      }
    } finally {
      await t.close();
    }
  }, 30_000);

  it('close() rejects publishes still waiting for a connection with ClosedError', async () => {
    const port = await sparePort();
    const t = createTransport(new URL(`redis://127.0.0.1:${port}/0`), {});
    const waiting = t.publish([{ queue: 'q', message: testMessage() }]);
    await new Promise((r) => setTimeout(r, 100));
    await t.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
  });

  it('refuses bad URLs and options with ConfigError naming the field', () => {
    expect(() => createTransport(new URL('redis+sentinel://127.0.0.1:26379'), {})).toThrow(ConfigError);
    expect(() => createTransport(new URL('redis+cluster://127.0.0.1:7000/3'), {})).toThrow(/no database/);
    expect(() => createTransport(new URL('redis://127.0.0.1/x'), {})).toThrow(/database number/);
    expect(() => createTransport(new URL('redis://127.0.0.1/0'), { options: { lease: '2h' } })).toThrow(
      /lease/,
    );
    expect(() => createTransport(new URL('redis://127.0.0.1/0?visibility_timeout=abc'), {})).toThrow(
      /visibility_timeout/,
    );
    expect(() => createResultSink(new URL('redis+cluster://h:1/?global_keyprefix=%7Bx%7D'), {})).toThrow(
      /global_keyprefix/,
    );
  });
});

/** A test-owned redis-server on the port the transport is already trying. */
async function startStandaloneOn(port: number): Promise<{ server: RedisServer; remove: () => void }> {
  const { dir, remove } = tempDir('backlog');
  const server = new RedisServer(port, dir, [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
  ]);
  await server.start();
  return { server, remove };
}
