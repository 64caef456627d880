import { randomUUID } from 'node:crypto';
import { type AsyncMessage, Connection } from 'rabbitmq-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/amqp/index.js';
import type { AmqpTransport } from '../../../src/brokers/amqp/transport.js';
import { PIDBOX_EXCHANGE, REPLY_EXCHANGE, replyMessage } from '../../../src/control/protocol.js';
import { Celeriac } from '../../../src/index.js';
import {
  describeControlCli,
  describeControlInterop,
  expectCeleryevTopics,
  pingRequest as ping,
} from '../../helpers/control-scenarios.js';
import { controlSuite } from '../control/suite.js';
import { redisUrl } from '../redis/helpers.js';
import { AMQP_HOST, AMQP_PORT, amqpUrl, closeNamedConnection, freshVhost, rabbitmqctl } from './helpers.js';

/**
 * Remote control, fan-out and revocations over RabbitMQ: the shared control suite (one vhost per
 * test, created up front), Celery's declarations and message properties, recovery after a lost
 * connection, and the scenarios shared with Redis (test/helpers/control-scenarios.ts: topic
 * semantics, the CLI, Python Celery 5.2.6 both ways). Results go to Redis db 6 (never flushed: task
 * ids are unique). Fails, never skips, when RabbitMQ, rabbitmqctl, Redis or the Python peer is missing.
 */
const RESULTS = redisUrl({ db: 6 });
const SUITE_VHOSTS = 16;
const vhosts: Array<{ vhost: string; drop: () => Promise<void> }> = [];
let nextSuiteVhost = 0;
let vhost = '';
/** The CLI scenario's own vhost: it counts the nodes that answer. */
let cliVhost = '';

beforeAll(async () => {
  vhosts.push(...(await Promise.all(Array.from({ length: SUITE_VHOSTS + 2 }, () => freshVhost('control')))));
  vhost = (vhosts[SUITE_VHOSTS] as { vhost: string }).vhost;
  cliVhost = (vhosts[SUITE_VHOSTS + 1] as { vhost: string }).vhost;
}, 120_000);

afterAll(async () => {
  await Promise.all(vhosts.map((v) => v.drop()));
}, 120_000);

controlSuite('amqp', {
  urls: () => {
    const v = vhosts[nextSuiteVhost++];
    if (!v || nextSuiteVhost > SUITE_VHOSTS) throw new Error('control.test.ts: raise SUITE_VHOSTS');
    return { broker: amqpUrl(v.vhost), results: RESULTS };
  },
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition') {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `rabbitmqctl list_queues` rows with the columns asked for. */
async function queues(columns: string[]): Promise<string[][]> {
  const out = await rabbitmqctl('list_queues', '-p', vhost, ...columns);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('name\t'))
    .map((l) => l.split('\t'));
}

async function exchanges(): Promise<Map<string, string>> {
  const out = await rabbitmqctl('list_exchanges', '-p', vhost, 'name', 'type', 'durable', 'auto_delete');
  const map = new Map<string, string>();
  for (const l of out.split('\n')) {
    const [name, ...rest] = l.split('\t');
    if (name) map.set(name, rest.join(' '));
  }
  return map;
}

function transport(options: Record<string, unknown> = {}): AmqpTransport {
  return createTransport(new URL(amqpUrl(vhost)), { options }) as AmqpTransport;
}

describe("amqp fan-out: Celery's declarations and properties", () => {
  it('declares celery.pidbox fanout, reply.celery.pidbox direct (non-durable), celeryev topic (durable) and their queues with Celery arguments', async () => {
    const t = transport();
    const oid = randomUUID();
    const offs = [
      await t.fanout.subscribe(PIDBOX_EXCHANGE, '', () => {}, { node: 'decl@test' }),
      await t.fanout.subscribe(REPLY_EXCHANGE, oid, () => {}),
      await t.fanout.subscribe('celeryev', '#', () => {}),
    ];
    try {
      const x = await exchanges();
      expect(x.get('celery.pidbox')).toBe('fanout false false');
      expect(x.get('reply.celery.pidbox')).toBe('direct false false');
      expect(x.get('celeryev')).toBe('topic true false');
      const rows = await queues(['name', 'durable', 'auto_delete', 'exclusive', 'arguments']);
      const byName = new Map(rows.map(([name, ...rest]) => [name, rest]));
      const pidboxArgs = expect.stringMatching(
        /x-expires.*10000.*x-message-ttl.*300000|x-message-ttl.*300000.*x-expires.*10000/,
      );
      expect(byName.get('decl@test.celery.pidbox')).toEqual(['false', 'true', 'false', pidboxArgs]);
      expect(byName.get(`${oid}.reply.celery.pidbox`)).toEqual(['false', 'true', 'false', pidboxArgs]);
      const ev = rows.find(([name]) => /^celeryev\.[0-9a-f-]{36}$/.test(name ?? ''));
      expect(ev?.slice(1, 4)).toEqual(['false', 'true', 'false']);
      expect(ev?.[4]).toMatch(/x-message-ttl.*5000/);
      expect(ev?.[4]).toMatch(/x-expires.*60000/);
      const bindings = await rabbitmqctl(
        'list_bindings',
        '-p',
        vhost,
        'source_name',
        'destination_name',
        'routing_key',
      );
      expect(bindings).toContain(`celery.pidbox\tdecl@test.celery.pidbox\t\n`);
      expect(bindings).toContain(`reply.celery.pidbox\t${oid}.reply.celery.pidbox\t${oid}\n`);
      expect(bindings).toMatch(/celeryev\tceleryev\.[0-9a-f-]{36}\t#\n/);
    } finally {
      for (const off of offs) await off();
      await t.close();
    }
    // auto-delete: the queues go with their consumers.
    const left = (await queues(['name'])).map(([n]) => n);
    expect(left).not.toContain('decl@test.celery.pidbox');
    expect(left).not.toContain(`${oid}.reply.celery.pidbox`);
  });

  it('publishes as Celery: raw JSON body, content type, headers, delivery_mode 2 for requests and 1 for replies', async () => {
    const t = transport();
    const conn = new Connection({
      hostname: AMQP_HOST,
      port: AMQP_PORT,
      vhost,
      username: 'guest',
      password: 'guest',
    });
    const seen: AsyncMessage[] = [];
    const oid = randomUUID();
    const capture = conn.createConsumer(
      {
        queue: `capture-${randomUUID()}`,
        noAck: true,
        queueOptions: { exclusive: true, autoDelete: true },
        exchanges: [
          { exchange: PIDBOX_EXCHANGE, type: 'fanout', durable: false },
          { exchange: REPLY_EXCHANGE, type: 'direct', durable: false },
        ],
        queueBindings: [
          { exchange: PIDBOX_EXCHANGE, routingKey: '' },
          { exchange: REPLY_EXCHANGE, routingKey: oid },
        ],
      },
      (m) => void seen.push(m),
    );
    await new Promise((r) => capture.once('ready', r));
    try {
      await t.fanout.publish(PIDBOX_EXCHANGE, '', ping(oid));
      await t.fanout.publish(
        REPLY_EXCHANGE,
        oid,
        replyMessage('n@h', { ok: 'pong' }, { ticket: 't-1', clock: 2, priority: 0 }),
      );
      await until(() => seen.length === 2);
      const [req, rep] = seen as [AsyncMessage, AsyncMessage];
      expect(req).toMatchObject({
        exchange: 'celery.pidbox',
        routingKey: '',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 2,
        priority: 0,
      });
      expect(Object.keys(req.headers ?? {})).toEqual(['clock', 'expires']);
      expect(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : req.body).toBe(
        `{"method": "ping", "arguments": {}, "destination": null, "pattern": null, "matcher": null, "ticket": "t-1", "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "${oid}"}}`,
      );
      expect(req.timestamp).toBeUndefined();
      expect(rep).toMatchObject({
        exchange: 'reply.celery.pidbox',
        routingKey: oid,
        contentType: 'application/json',
        deliveryMode: 1,
        headers: { ticket: 't-1', clock: 2 },
      });
      expect(Buffer.isBuffer(rep.body) ? rep.body.toString('utf8') : rep.body).toBe(
        '{"n@h": {"ok": "pong"}}',
      );
    } finally {
      await capture.close();
      await conn.close();
      await t.close();
    }
  });

  it('topic semantics on celeryev ("" and # mean everything); two subscribers of one reply oid in a process both get every reply', async () => {
    const t = transport();
    try {
      await expectCeleryevTopics(t.fanout);
      const got: Record<'r1' | 'r2', string[]> = { r1: [], r2: [] };
      const oid = randomUUID();
      const offs = await Promise.all([
        t.fanout.subscribe(REPLY_EXCHANGE, oid, (m) => got.r1.push(m.body)),
        t.fanout.subscribe(REPLY_EXCHANGE, oid, (m) => got.r2.push(m.body)),
      ]);
      await t.fanout.publish(
        REPLY_EXCHANGE,
        oid,
        replyMessage('n@h', 1, { ticket: 't', clock: 1, priority: 0 }),
      );
      await t.fanout.publish(
        REPLY_EXCHANGE,
        'nobody',
        replyMessage('n@h', 2, { ticket: 't', clock: 1, priority: 0 }),
      );
      await until(() => got.r1.length === 1 && got.r2.length === 1);
      await new Promise((r) => setTimeout(r, 100));
      expect(got.r1).toEqual(['{"n@h": 1}']);
      expect(got.r2).toEqual(['{"n@h": 1}']);
      for (const off of offs) await off();
    } finally {
      await t.close();
    }
  });

  it('a worker mailbox and a client recover after the connection is closed by the server', async () => {
    const name = `reconnect-${randomUUID().slice(0, 8)}`;
    const worker = new Celeriac({
      broker: amqpUrl(vhost),
      results: RESULTS,
      logger: 'silent',
      brokerOptions: { connectionName: name },
    });
    const client = new Celeriac({ broker: amqpUrl(vhost), results: RESULTS, logger: 'silent' });
    try {
      const w = worker.worker({ name: 'phoenix@test', queues: [`q-${name}`], concurrency: 1 });
      await w.start();
      expect(await client.control.ping({ destination: 'phoenix@test', timeout: 2000 })).toEqual({
        'phoenix@test': { ok: 'pong' },
      });
      expect(await closeNamedConnection(vhost, name)).toBe(1);
      let replies = {};
      await until(
        async () => {
          replies = await client.control.ping({ destination: 'phoenix@test', timeout: 500 });
          return Object.keys(replies).length === 1;
        },
        15_000,
        'a pong after the reconnect',
      );
      expect(replies).toEqual({ 'phoenix@test': { ok: 'pong' } });
    } finally {
      await client.close();
      await worker.close();
    }
  });
});

describe('amqp revocations: the durable queue celeriac.revoked', () => {
  it('add persists (one persistent message per revoke), list returns the ids not expired and drops the expired', async () => {
    const t = transport();
    const now = Date.now();
    await t.revocations.add(['a', 'b'], now + 60_000);
    await t.revocations.add(['a'], now + 30_000);
    await t.revocations.add(['soon'], now + 300);
    await t.revocations.add(['old'], now - 1); // already expired: not kept
    expect((await t.revocations.list()).sort()).toEqual(['a', 'b', 'soon']);
    const row = (await queues(['name', 'durable', 'messages'])).find(([n]) => n === 'celeriac.revoked');
    expect(row).toEqual(['celeriac.revoked', 'true', '3']);
    await new Promise((r) => setTimeout(r, 400));
    expect((await t.revocations.list()).sort()).toEqual(['a', 'b']);
    // Another connection (a worker started later) sees them; concurrent readers, on one connection
    // or several, all see everything.
    const other = transport();
    const lists = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 3 === 0 ? t : other).revocations.list()),
    );
    for (const l of lists) expect(l.sort()).toEqual(['a', 'b']);
    await other.close();
    await t.close();
  });

  it('list on a vhost without the queue is empty and declares nothing', async () => {
    const { vhost: empty, drop } = await freshVhost('revempty');
    try {
      const t = createTransport(new URL(amqpUrl(empty)), {});
      expect(await t.revocations?.list()).toEqual([]);
      await t.close();
      expect(await rabbitmqctl('list_queues', '-p', empty, 'name')).not.toContain('celeriac.revoked');
    } finally {
      await drop();
    }
  });
});

describeControlCli({ label: 'AMQP', urls: () => ({ broker: amqpUrl(cliVhost), results: RESULTS }) });

describeControlInterop({ label: 'AMQP', urls: () => ({ broker: amqpUrl(vhost), results: RESULTS }) });
