import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/redis/index.js';
import type { Delivery, Transport } from '../../../src/brokers/transport.js';
import { fromKombuEnvelope } from '../../../src/messages/kombu.js';
import { fixturesDir } from '../../fixtures.js';
import { messageId, testMessage } from '../../helpers/messages.js';
import { deletePrefix, inspector, REDIS_HOST, REDIS_PORT, redisUrl, uniquePrefix } from './helpers.js';

const run = promisify(execFile);
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(fixturesDir, name), 'utf8')) as Record<string, unknown>;
const SEP = '\x06\x16';
const DB = 0;

const prefix = uniquePrefix('kombu');
const admin = inspector(DB);
const opened: Transport[] = [];
const children: ChildProcess[] = [];

function transport(options: Record<string, unknown> = {}): Transport {
  const t = createTransport(new URL(redisUrl({ db: DB, prefix })), {
    options: { pollInterval: 100, ...options },
  });
  opened.push(t);
  return t;
}

/** Runs kombu's own transport (Python) against the same Redis and prefix. */
async function kombu(...args: string[]): Promise<string> {
  const script = new URL('./procs/kombu_peer.py', import.meta.url).pathname;
  const { stdout } = await run(
    '/usr/bin/python3',
    [script, args[0] as string, `redis://${REDIS_HOST}:${REDIS_PORT}/${DB}`, prefix, ...args.slice(1)],
    {
      timeout: 20_000,
    },
  );
  return stdout.trim();
}

function collect(
  t: Transport,
  queues: string[],
  prefetch = 10,
): Promise<{ got: Delivery[]; next: (n: number) => Promise<Delivery[]> }> {
  const got: Delivery[] = [];
  const waiters: Array<() => void> = [];
  return t
    .consume(
      queues,
      (d) => {
        got.push(d);
        for (const w of waiters.splice(0)) w();
      },
      { prefetch },
    )
    .then(() => ({
      got,
      next: async (n: number) => {
        const end = Date.now() + 10_000;
        while (got.length < n) {
          if (Date.now() > end) throw new Error(`expected ${n} deliveries, got ${got.length}`);
          await new Promise<void>((r) => {
            waiters.push(r);
            setTimeout(r, 50);
          });
        }
        return got.slice(0, n);
      },
    }));
}

beforeAll(async () => {
  await admin.connect();
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const t of opened.splice(0)) await t.close();
  await deletePrefix(admin, prefix);
});
afterAll(async () => {
  await admin.quit();
});

describe('redis transport: kombu layout', () => {
  it('writes the queue list and binding set exactly as a Python Celery client does (fixture redis-apply_async-basic)', async () => {
    const f = fixture('redis-apply_async-basic.json');
    const [sent] = f.messages as Array<{ raw: string; envelope: { properties: { delivery_tag: string } } }>;
    const wire = fromKombuEnvelope(sent?.raw as string).wire;
    const t = transport();
    await t.publish([{ queue: 'celery', message: wire }]);
    expect(await admin.smembers(`${prefix}_kombu.binding.celery`)).toEqual([`celery${SEP}${SEP}celery`]);
    const [raw] = await admin.lrange(`${prefix}celery`, 0, -1);
    const tag = (JSON.parse(raw as string) as { properties: { delivery_tag: string } }).properties
      .delivery_tag;
    expect(tag).toMatch(/^[0-9a-f-]{36}$/);
    // Byte for byte what Python wrote, but for the delivery tag each publisher makes up.
    expect(raw).toBe(sent?.raw.replace(sent.envelope.properties.delivery_tag, tag));
  });

  it('puts priorities in kombu sub-queues (fixture redis-priority): API 9 - wire, lower wire served first', async () => {
    const f = fixture('redis-priority.json') as {
      queues: Record<string, Array<{ redis_key: string; envelope: { properties: { priority: number } } }>>;
    };
    const t = transport();
    const expected: Array<[number, string]> = [];
    for (const entries of Object.values(f.queues)) {
      for (const e of entries) expected.push([e.envelope.properties.priority, e.redis_key]);
    }
    for (const [wire, key] of expected) {
      const m = testMessage({ priority: 9 - wire });
      await t.publish([{ queue: 'celery', message: m }]);
      const raw = await admin.lindex(`${prefix}${key}`, 0);
      expect(
        messageId(fromKombuEnvelope(raw as string).wire),
        `wire priority ${wire} → ${JSON.stringify(key)}`,
      ).toBe(messageId(m));
    }
    // Served wire 0 (API 9) first, as a Python worker does.
    const c = await collect(t, ['celery'], 20);
    const got = await c.next(expected.length);
    const wires = got.map((d) => 9 - (d.message?.priority ?? 0));
    expect(wires.map((w) => (w >= 9 ? 9 : w >= 6 ? 6 : w >= 3 ? 3 : 0))).toEqual(
      [...wires.map((w) => (w >= 9 ? 9 : w >= 6 ? 6 : w >= 3 ? 3 : 0))].sort((a, b) => a - b),
    );
  });

  it('takes a message a Python client LPUSHed and records it in unacked/unacked_index as kombu does', async () => {
    const f = fixture('redis-apply_async-basic.json');
    const [sent] = f.messages as Array<{
      raw: string;
      envelope: Record<string, unknown> & { properties: { delivery_tag: string } };
    }>;
    await admin.lpush(`${prefix}celery`, sent?.raw as string);
    const t = transport({ lease: '5s', visibilityTimeout: '1h' });
    const c = await collect(t, ['celery']);
    const [d] = await c.next(1);
    expect(d?.message?.headers.task).toBe('tasks.add');
    expect(d?.deliveryCount).toBe(1);
    const tag = sent?.envelope.properties.delivery_tag as string;
    const value = await admin.hget(`${prefix}unacked`, tag);
    expect(JSON.parse(value as string)).toEqual([sent?.envelope, '', 'celery']);
    const score = Number(await admin.zscore(`${prefix}unacked_index`, tag));
    // Lease end minus the visibility timeout: kombu's restore rule fires when the lease ends.
    expect(score).toBeGreaterThan(Date.now() / 1000 + 5 - 3600 - 2);
    expect(score).toBeLessThan(Date.now() / 1000 + 5 - 3600 + 1);
    await t.ack(d as Delivery);
    expect(await admin.hlen(`${prefix}unacked`)).toBe(0);
    expect(await admin.zcard(`${prefix}unacked_index`)).toBe(0);
  });

  it('a fetch queued behind a long wait leases from when it takes, not from when it was sent', async () => {
    const queue = `leased-${Date.now()}`;
    const t = transport({ lease: '5s', visibilityTimeout: '1h', pollInterval: 3000 });
    const c = await collect(t, [queue]);
    await new Promise((r) => setTimeout(r, 2000)); // the consumer is blocked, its fetch queued behind
    const publisher = transport();
    await publisher.publish([{ queue, message: testMessage({ args: [1, 2] }) }]);
    const [d] = await c.next(1);
    const takenAt = Date.now() / 1000;
    const tag = fromKombuEnvelope(d?.raw as string).deliveryTag as string;
    const score = Number(await admin.zscore(`${prefix}unacked_index`, tag));
    // Lease end (take + 5 s) minus the visibility timeout; a score taken when the wait was sent
    // plus the longest wait would be about 1 s later.
    expect(score).toBeGreaterThan(takenAt + 5 - 3600 - 0.5);
    expect(score).toBeLessThan(takenAt + 5 - 3600 + 0.5);
    await t.ack(d as Delivery);
  });

  it('a message published by Celeriac is taken and acked by kombu (Python)', async () => {
    const t = transport();
    const m = testMessage({ task: 'tasks.echo', args: ['h\u00e9llo \u2713'], kwargs: { k: 1 } });
    await t.publish([{ queue: 'celery', message: m }]);
    const out = JSON.parse(await kombu('get', 'celery')) as {
      headers: { id: string };
      body: string;
      delivery_info: string;
    };
    expect(out.headers.id).toBe(messageId(m));
    expect(out.body).toBe(m.body);
    expect(out.delivery_info).toBe('celery');
    expect(await t.depth('celery')).toBe(0);
  });
});

describe('redis transport: unacked, restore and leases with kombu', () => {
  it('a Celeriac consumer killed with SIGKILL: kombu restore_visible gives its message back, Celeriac takes it again', async () => {
    const t = transport({ lease: '1s', visibilityTimeout: '2s' });
    const m = testMessage();
    await t.publish([{ queue: 'lost', message: m }]);
    const url = redisUrl({ db: DB, prefix, query: { visibility_timeout: '2' } });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', new URL('./procs/hold.ts', import.meta.url).pathname, url, 'lost', '1', '1000'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const held = await new Promise<{ id: string }>((resolve) => {
      lines.on('line', (l) => {
        if (l.startsWith('{')) resolve(JSON.parse(l) as { id: string });
      });
    });
    expect(held.id).toBe(messageId(m));
    child.kill('SIGKILL');
    expect(await admin.hlen(`${prefix}unacked`)).toBe(1);
    await new Promise((r) => setTimeout(r, 1300)); // the lease (1 s) ends
    expect(await kombu('restore', '2')).toBe('restored');
    expect(await admin.hlen(`${prefix}unacked`)).toBe(0);
    const c = await collect(t, ['lost']);
    const [again] = await c.next(1);
    expect(messageId(again?.message)).toBe(messageId(m));
    expect(again?.redelivered).toBe(true);
    expect(again?.deliveryCount).toBe(2);
  });

  it('a Python consumer lost mid-task: Celeriac restores it after the visibility timeout (kombu rule)', async () => {
    const t = transport({ lease: '1s', visibilityTimeout: '2s' });
    const m = testMessage();
    await t.publish([{ queue: 'pylost', message: m }]);
    const taken = JSON.parse(await kombu('take', 'pylost')) as { tag: string; headers: { id: string } };
    expect(taken.headers.id).toBe(messageId(m));
    expect(await admin.hexists(`${prefix}unacked`, taken.tag)).toBe(1);
    const start = Date.now();
    const c = await collect(t, ['pylost']);
    const [again] = await c.next(1);
    expect(Date.now() - start).toBeGreaterThan(1000); // not before visibility_timeout (2 s from the take)
    expect(messageId(again?.message)).toBe(messageId(m));
    expect(again?.redelivered).toBe(true);
    expect(again?.deliveryCount).toBe(2);
  });

  it('keeps the lease of a long task: neither kombu nor another Celeriac worker restores it', async () => {
    const owner = transport({ lease: '1s', visibilityTimeout: '2s' });
    const other = transport({ lease: '1s', visibilityTimeout: '2s' });
    await owner.publish([{ queue: 'long', message: testMessage() }]);
    const c = await collect(owner, ['long']);
    const [d] = await c.next(1);
    const rival = await collect(other, ['long']);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      expect(await kombu('restore', '2')).toBe('restored');
    }
    expect(rival.got).toHaveLength(0);
    expect(c.got).toHaveLength(1);
    expect(await admin.hlen(`${prefix}unacked`)).toBe(1);
    await owner.ack(d as Delivery);
    expect(await admin.hlen(`${prefix}unacked`)).toBe(0);
  });
});

describe('redis transport: global_keyprefix', () => {
  it('applyMany writes one batch as kombu messages: 2,500 on the list in call order, run by a worker', async () => {
    const { Celeriac } = await import('../../../src/index.js');
    const app = new Celeriac({ broker: redisUrl({ db: DB, prefix }), logger: 'silent' });
    try {
      const ran: number[] = [];
      const t = app.task('bulk.t', (n: number) => void ran.push(n), { ignoreResult: true });
      const queue = `bulk-${Date.now()}`;
      const results = await t.applyMany(Array.from({ length: 2500 }, (_, i) => ({ args: [i], queue })));
      expect(await admin.llen(`${prefix}${queue}`)).toBe(2500);
      // kombu's consumer pops from the right: the oldest (first call) is there.
      const oldest = fromKombuEnvelope((await admin.lindex(`${prefix}${queue}`, -1)) as string);
      expect(oldest.wire.headers.id).toBe(results[0]?.id);
      const worker = app.worker({ queues: [queue], concurrency: 10 });
      await worker.start();
      const deadline = Date.now() + 10_000;
      while (ran.length < 2500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(ran).toHaveLength(2500);
      expect(new Set(ran).size).toBe(2500);
      await worker.stop();
    } finally {
      await app.close();
    }
  });

  it('prefixes every key it writes (queues, bindings, unacked, dead letters, delayed, subscriptions)', async () => {
    const t = transport();
    await t.publish([{ queue: 'pfx', message: testMessage() }]);
    await t.publish([{ queue: 'pfx', message: testMessage(), notBefore: Date.now() + 60_000 }]);
    await t.subscriptions.add('user.registered', { task: 'emails.welcome', queue: 'emails' });
    const c = await collect(t, ['pfx']);
    const [d] = await c.next(1);
    const keysWhileHeld = await scanAll();
    await t.deadLetter(d as Delivery, 'test');
    const keys = [...new Set([...keysWhileHeld, ...(await scanAll())])];
    expect(keys.every((k) => k.startsWith(prefix))).toBe(true);
    const names = keys.map((k) => k.slice(prefix.length)).sort();
    expect(names).toEqual(
      expect.arrayContaining([
        '_kombu.binding.pfx',
        'celeriac.dead.pfx',
        'celeriac.delayed.pfx',
        'celeriac.subscriptions.user.registered',
        'unacked',
        'unacked_index',
      ]),
    );
    // Nothing of ours outside the prefix.
    const stray = (await admin.scan('0', 'MATCH', '*pfx*', 'COUNT', 10000))[1].filter(
      (k) => !k.startsWith(prefix),
    );
    expect(stray).toEqual([]);
  });
});

async function scanAll(): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}
