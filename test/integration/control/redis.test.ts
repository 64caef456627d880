import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTransport } from '../../../src/brokers/redis/transport.js';
import { parseRedisUrl } from '../../../src/brokers/redis/url.js';
import { PIDBOX_EXCHANGE, REPLY_EXCHANGE, replyMessage } from '../../../src/control/protocol.js';
import { fromKombuEnvelope } from '../../../src/messages/kombu.js';
import { describeControlCli, expectCeleryevTopics, pingRequest } from '../../helpers/control-scenarios.js';
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

const ping = (oid: string) => pingRequest(oid, 9);

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

  it('subscribes with # → * (psubscribe); topic semantics, "" and # receive every routing key', async () => {
    const t = transport('sub:');
    try {
      await expectCeleryevTopics(t.fanout, async () => {
        expect(await redis.pubsub('NUMPAT')).toBeGreaterThanOrEqual(4);
      });
    } finally {
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

describeControlCli({
  label: 'Redis',
  urls: () => ({ broker: prefixed(`cli-${randomUUID().slice(0, 8)}:`), results: base }),
});
