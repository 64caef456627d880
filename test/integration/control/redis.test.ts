import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTransport } from '../../../src/brokers/redis/transport.js';
import { parseRedisUrl } from '../../../src/brokers/redis/url.js';
import {
  PIDBOX_EXCHANGE,
  REPLY_EXCHANGE,
  replyMessage,
  requestMessage,
} from '../../../src/control/protocol.js';
import { Celeriac } from '../../../src/index.js';
import { fromKombuEnvelope } from '../../../src/messages/kombu.js';
import type { WireMessage } from '../../../src/messages/types.js';
import { runCli } from '../../unit/cli/helpers.js';
import { inspector, REDIS_HOST, REDIS_PORT } from '../redis/helpers.js';
import { controlSuite } from './suite.js';

/**
 * Remote control, fan-out and revocations on real Redis, db 8 (flushed at the start of this file;
 * each test also has its own global_keyprefix). Fails, never skips, when Redis is missing.
 */
const DB = 8;
const base = `redis://${REDIS_HOST}:${REDIS_PORT}/${DB}`;
const redis = inspector(DB);

beforeAll(async () => {
  await redis.connect();
  await redis.flushdb();
});

afterAll(async () => {
  await redis.quit();
});

const prefixed = (prefix: string) => `${base}?global_keyprefix=${encodeURIComponent(prefix)}`;

controlSuite('redis', {
  urls: () => ({
    broker: prefixed(`ctl-${randomUUID().slice(0, 8)}:`),
    results: base,
    brokerOptions: { pollInterval: 50 },
  }),
});

function transport(prefix = ''): RedisTransport {
  const url = new URL(prefix ? prefixed(prefix) : base);
  return new RedisTransport(parseRedisUrl(url), url.href, {});
}

const ping = (oid: string): WireMessage =>
  requestMessage(
    {
      method: 'ping',
      arguments: {},
      destination: null,
      pattern: null,
      matcher: null,
      ticket: 't-1',
      reply_to: { exchange: REPLY_EXCHANGE, routing_key: oid },
    },
    { clock: 1, timeoutMs: 1000, priority: 9 },
  );

describe('redis fanout and revocations: kombu layout', () => {
  it('publishes fanout messages on /<db>.<exchange>[/<rk>] with the kombu envelope, global_keyprefix first', async () => {
    const t = transport('pfx:');
    const sub = redis.duplicate();
    const seen: Array<{ pattern: string; channel: string; data: string }> = [];
    sub.on('pmessage', (pattern: string, channel: string, data: string) =>
      seen.push({ pattern, channel, data }),
    );
    await sub.psubscribe('pfx:/8.*');
    try {
      await t.fanout.publish(PIDBOX_EXCHANGE, '', ping('oid-1'));
      await t.fanout.publish('celeryev', 'task.sent', ping('oid-2'));
      await until(() => seen.length === 2);
      expect(seen.map((s) => s.channel)).toEqual(['pfx:/8.celery.pidbox', 'pfx:/8.celeryev/task.sent']);
      const env = JSON.parse(seen[0]?.data as string) as Record<string, unknown>;
      expect(Object.keys(env)).toEqual(['body', 'content-encoding', 'content-type', 'headers', 'properties']);
      expect(env.properties).toMatchObject({
        delivery_mode: 2,
        delivery_info: { exchange: 'celery.pidbox', routing_key: '' },
        priority: 0,
        body_encoding: 'base64',
      });
      expect(Object.keys(env.headers as object)).toEqual(['clock', 'expires']);
      const body = Buffer.from(env.body as string, 'base64').toString('utf8');
      expect(body).toMatch(
        /^\{"method": "ping", "arguments": \{\}, "destination": null, "pattern": null, "matcher": null, "ticket": "t-1", "reply_to": \{"exchange": "reply.celery.pidbox", "routing_key": "oid-1"\}\}$/,
      );
    } finally {
      await sub.quit();
      await t.close();
    }
  });

  it('subscribes with # → *, checks topic semantics, and both "" and # receive every routing key', async () => {
    const t = transport('sub:');
    const got: Record<string, string[]> = { all: [], hash: [], task: [], exact: [] };
    const offs = await Promise.all([
      t.fanout.subscribe('celeryev', '', (_m, rk) => got.all?.push(rk)),
      t.fanout.subscribe('celeryev', '#', (_m, rk) => got.hash?.push(rk)),
      t.fanout.subscribe('celeryev', 'task.*', (_m, rk) => got.task?.push(rk)),
      t.fanout.subscribe('celeryev', 'worker.heartbeat', (_m, rk) => got.exact?.push(rk)),
    ]);
    try {
      expect(await redis.pubsub('NUMPAT')).toBeGreaterThanOrEqual(4);
      for (const rk of ['', 'task.sent', 'task.a.b', 'worker.heartbeat'])
        await t.fanout.publish('celeryev', rk, ping('x'));
      await until(() => (got.all?.length ?? 0) === 4 && (got.hash?.length ?? 0) === 4);
      await new Promise((r) => setTimeout(r, 100));
      expect(got.all?.sort()).toEqual(['', 'task.a.b', 'task.sent', 'worker.heartbeat']);
      expect(got.task).toEqual(['task.sent']);
      expect(got.exact).toEqual(['worker.heartbeat']);
    } finally {
      for (const off of offs) await off();
      await t.close();
    }
  });

  it('routes replies as kombu: _kombu.binding.reply.celery.pidbox → LPUSH <oid>.reply.celery.pidbox; unbound keys are dropped', async () => {
    const t = transport();
    const oid = randomUUID();
    const bindingKey = '_kombu.binding.reply.celery.pidbox';
    // Nobody bound: dropped, as kombu 5.2.4.
    await t.fanout.publish(
      REPLY_EXCHANGE,
      oid,
      replyMessage('n@h', { ok: 'pong' }, { ticket: 't', clock: 2, priority: 9 }),
    );
    expect(await redis.exists(`${oid}.reply.celery.pidbox`)).toBe(0);
    // A Python client's binding (no reader): the reply lands in the list, byte-compatible.
    await redis.sadd(bindingKey, `${oid}\x06\x16\x06\x16${oid}.reply.celery.pidbox`);
    await t.fanout.publish(
      REPLY_EXCHANGE,
      oid,
      replyMessage('n@h', { ok: 'pong' }, { ticket: 't', clock: 2, priority: 9 }),
    );
    const raw = await redis.lrange(`${oid}.reply.celery.pidbox`, 0, -1);
    expect(raw).toHaveLength(1);
    const env = JSON.parse(raw[0] as string) as { headers: unknown; properties: Record<string, unknown> };
    expect(env.headers).toEqual({ ticket: 't', clock: 2 });
    expect(env.properties).toMatchObject({
      delivery_mode: 1,
      delivery_info: { exchange: 'reply.celery.pidbox', routing_key: oid },
      priority: 0,
    });
    expect(fromKombuEnvelope(raw[0] as string).wire.body).toBe('{"n@h": {"ok": "pong"}}');
    await redis.del(`${oid}.reply.celery.pidbox`);
    await redis.srem(bindingKey, `${oid}\x06\x16\x06\x16${oid}.reply.celery.pidbox`);
    // A Celeriac subscriber declares the same binding and reads the list; unsubscribing removes both.
    const replies: string[] = [];
    const off = await t.fanout.subscribe(REPLY_EXCHANGE, oid, (m) => replies.push(m.body));
    expect(await redis.smembers(bindingKey)).toContain(`${oid}\x06\x16\x06\x16${oid}.reply.celery.pidbox`);
    await t.fanout.publish(
      REPLY_EXCHANGE,
      oid,
      replyMessage('n@h', { ok: 1 }, { ticket: 't', clock: 3, priority: 9 }),
    );
    await until(() => replies.length === 1);
    expect(replies).toEqual(['{"n@h": {"ok": 1}}']);
    await off();
    expect(await redis.smembers(bindingKey)).not.toContain(
      `${oid}\x06\x16\x06\x16${oid}.reply.celery.pidbox`,
    );
    await t.close();
  });

  it('revocations: a zset scored by expiry (ms), expired ids trimmed, a later expiry kept', async () => {
    const t = transport('rev:');
    const now = Date.now();
    await t.revocations.add(['a', 'b'], now + 60_000);
    await t.revocations.add(['a'], now + 30_000); // shorter: ignored (GT)
    await t.revocations.add(['old'], now - 1);
    expect((await t.revocations.list()).sort()).toEqual(['a', 'b']);
    expect(await redis.type('rev:celeriac.revoked')).toBe('zset');
    expect(Number(await redis.zscore('rev:celeriac.revoked', 'a'))).toBe(now + 60_000);
    expect(await redis.zscore('rev:celeriac.revoked', 'old')).toBeNull();
    await t.close();
  });
});

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('celeriac inspect / control (CLI) against a Celeriac worker over Redis', () => {
  it('prints tables and JSON keyed by node, changes the pool, and exits 1 / 2 on no reply / bad input', async () => {
    const url = prefixed(`cli-${randomUUID().slice(0, 8)}:`);
    const app = new Celeriac({ broker: url, results: base, logger: 'silent' });
    app.task('tasks.add', (a: number, b: number) => a + b);
    const worker = app.worker({ name: 'cli@test', concurrency: 2, queues: ['celery'] });
    await worker.start();
    try {
      const ping = await runCli(['inspect', 'ping', '-b', url]);
      expect(ping.code, ping.stderr).toBe(0);
      expect(ping.stdout).toMatch(/cli@test\s*│\s*pong/);
      expect(ping.stderr).toBe('1 node replied\n');
      const grow = await runCli(['control', 'pool_grow', '3', '-b', url, '-d', 'cli@test']);
      expect(grow.stdout).toMatch(/cli@test\s*│\s*pool will grow/);
      expect(worker.concurrency).toBe(5);
      const stats = await runCli(['inspect', 'stats', '-b', url, '--json']);
      expect(JSON.parse(stats.stdout)).toMatchObject({ 'cli@test': { pool: { 'max-concurrency': 5 } } });
      const registered = await runCli(['inspect', 'registered', '-b', url, '-j']);
      expect(JSON.parse(registered.stdout)).toEqual({ 'cli@test': ['tasks.add'] });
      const unknown = await runCli(['control', 'rate_limit', 'tasks.nope', '1/s', '-b', url]);
      expect(unknown.code).toBe(1);
      expect(unknown.stdout).toMatch(/error: unknown task/);
      const none = await runCli(['inspect', 'active', '-b', url, '-d', 'other@test', '-t', '0.2']);
      expect(none.code).toBe(1);
      expect(none.stderr).toBe('error: no nodes replied within 0.2s (destination: other@test)\n');
      const bad = await runCli(['control', 'pool_shrink', 'x', '-b', url]);
      expect(bad.code).toBe(2);
      const revoke = await runCli(['control', 'revoke', 'id-1', 'id-2', '-b', url]);
      expect(revoke.stdout).toMatch(/tasks id-1, id-2 flagged as revoked/);
      expect(await (await app.transport()).revocations?.list()).toEqual(
        expect.arrayContaining(['id-1', 'id-2']),
      );
      const shutdown = await runCli(['control', 'shutdown', '-b', url, '-d', 'cli@test']);
      expect(shutdown.stdout).toBe('shutdown sent to cli@test\n');
      const end = Date.now() + 5000;
      while (worker.health().status !== 'unhealthy' && Date.now() < end)
        await new Promise((r) => setTimeout(r, 20));
      expect(worker.health().status).toBe('unhealthy');
    } finally {
      await app.close();
    }
  });
});
