import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from 'rabbitmq-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/amqp/index.js';
import { createTransport as createMemoryTransport } from '../../../src/brokers/memory/index.js';
import type { Transport } from '../../../src/brokers/transport.js';
import { ClosedError, ConfigError } from '../../../src/errors.js';
import { Celeriac } from '../../../src/index.js';
import { threadOid } from '../../../src/messages/ids.js';
import type { ResultMeta } from '../../../src/results/meta.js';
import { createResultSink, replyBody } from '../../../src/results/rpc/index.js';
import type { ResultSink } from '../../../src/results/sink.js';
import { fixturesDir } from '../../fixtures.js';
import { redisUrl } from '../redis/helpers.js';
import { amqpUrl, freshVhost, listQueues } from './helpers.js';

const FIXTURE = path.join(fixturesDir, 'amqp-result-rpc.json');
const DAY = 86_400_000;

let vhost = '';
let drop: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('rpc'));
});
afterAll(async () => {
  await drop();
});

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

async function broker(): Promise<Transport> {
  const t = createTransport(new URL(amqpUrl(vhost)), {});
  opened.push(t);
  await t.connect();
  return t;
}
/** An rpc sink borrowing `transport` (as an app's sink borrows the app's broker), or with its own connection (rpc://host). */
async function sink(transport?: Transport, url = 'rpc://'): Promise<ResultSink> {
  const s = createResultSink(new URL(url), transport ? { broker: async () => transport } : {});
  opened.push(s);
  await s.connect();
  return s;
}
function meta(id: string, status: string, result: unknown = null): ResultMeta {
  return { status, result, traceback: null, children: [], date_done: null, task_id: id };
}

describe('rpc:// result sink', () => {
  it('writes the reply exactly as Celery 5.2.6 does (fixture amqp-result-rpc)', () => {
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as {
      messages: Array<{ body_raw_utf8: string; body_decoded: Record<string, unknown> }>;
    };
    for (const m of fixture.messages) {
      const b = m.body_decoded;
      const built = replyBody({
        task_id: b.task_id as string,
        status: b.status as string,
        result: b.result,
        traceback: b.traceback as string | null,
        children: b.children as unknown[],
        date_done: '2030-01-01T00:00:00', // Celery's rpc body has no date_done: it must not appear
      });
      expect(built).toBe(m.body_raw_utf8);
    }
  });

  it('declares the reply queue as Celery does (non-durable, auto-delete, x-expires 1 day)', async () => {
    await sink(await broker());
    const q = (await listQueues(vhost)).find((x) => x.name === threadOid());
    expect(q).toBeDefined();
    expect(q?.durable).toBe(false);
    expect(q?.args).toContain('x-expires');
    expect(q?.args).toContain('86400000');
  });

  it('publishes to the reply queue with correlation_id = task id, delivery_mode 1, empty headers', async () => {
    const conn = new Connection(amqpUrl(vhost));
    opened.push(conn);
    const ch = await conn.acquire();
    const replyQueue = `reply-${randomUUID().slice(0, 8)}`;
    await ch.queueDeclare({ queue: replyQueue, autoDelete: false, durable: false });
    // A task delivered through the sink's AMQP transport: its reply_to decides where the result goes.
    const t = await broker();
    const s = await sink(t);
    const id = randomUUID();
    await t.publish([
      {
        queue: 'celery',
        message: {
          headers: { lang: 'py', task: 'tasks.add', id },
          properties: { correlation_id: id, reply_to: replyQueue, delivery_mode: 2 },
          priority: 0,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          body: '[[2, 3], {}, {}]',
        },
      },
    ]);
    await new Promise<void>((resolve) => {
      void t.consume(['celery'], (d) => void t.ack(d).then(resolve), { prefetch: 1 });
    });
    await s.store(meta(id, 'SUCCESS', 5), { expiresMs: DAY });
    let got = await ch.basicGet({ queue: replyQueue, noAck: true });
    for (let i = 0; !got && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      got = await ch.basicGet({ queue: replyQueue, noAck: true });
    }
    expect(got?.correlationId).toBe(id);
    expect(got?.durable).toBe(false);
    expect(got?.headers).toEqual({});
    expect(got?.contentType).toBe('application/json');
    expect(got?.contentEncoding).toBe('utf-8');
    expect(Buffer.isBuffer(got?.body) ? got?.body.toString() : '').toBe(
      `{"task_id": "${id}", "status": "SUCCESS", "result": 5, "traceback": null, "children": []}`,
    );
    await ch.close();
  });

  it('stores and gets in the sending process; a later store overwrites; another sink of the process sees it', async () => {
    const s = await sink(await broker());
    const id = randomUUID();
    await s.store(meta(id, 'STARTED'), { expiresMs: DAY });
    const other = await sink(await broker());
    const started = await other.watch(id, () => {});
    await started();
    await s.store(meta(id, 'SUCCESS', { sum: 5 }), { expiresMs: DAY });
    expect(await s.wait(id, {})).toEqual(meta(id, 'SUCCESS', { sum: 5 }));
    expect(await other.get(id)).toEqual(meta(id, 'SUCCESS', { sum: 5 }));
    expect(await s.get(randomUUID())).toBeNull();
  });

  for (const ready of ['SUCCESS', 'FAILURE', 'REVOKED']) {
    it(`wait resolves on ${ready}, not on STARTED, RETRY or a progress state`, async () => {
      const t = await broker();
      const waiter = await sink(t);
      const writer = await sink(t);
      const id = randomUUID();
      let done = false;
      const waiting = waiter.wait(id, {}).then((m) => {
        done = true;
        return m;
      });
      for (const st of ['STARTED', 'RETRY', 'PROGRESS']) await writer.store(meta(id, st), { expiresMs: DAY });
      await new Promise((r) => setTimeout(r, 150));
      expect(done).toBe(false);
      await writer.store(meta(id, ready, 5), { expiresMs: DAY });
      expect((await waiting).status).toBe(ready);
    });
  }

  it('watch sees every state in order until unsubscribed; forget; expiry; abort', async () => {
    const s = await sink(await broker());
    const id = randomUUID();
    const seen: string[] = [];
    const stop = await s.watch(id, (m) => seen.push(m.status));
    for (const st of ['STARTED', 'PROGRESS', 'RETRY', 'SUCCESS'])
      await s.store(meta(id, st), { expiresMs: DAY });
    for (let i = 0; seen.length < 4 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(['STARTED', 'PROGRESS', 'RETRY', 'SUCCESS']);
    await stop();
    await s.forget(id);
    expect(await s.get(id)).toBeNull();

    const short = randomUUID();
    await s.store(meta(short, 'SUCCESS', 1), { expiresMs: 80 });
    await s.wait(short, {});
    await new Promise((r) => setTimeout(r, 120));
    expect(await s.get(short)).toBeNull();

    const reason = new Error('gave up');
    const c = new AbortController();
    const w = s.wait(randomUUID(), { signal: c.signal });
    c.abort(reason);
    await expect(w).rejects.toBe(reason);
  });

  it('refuses incr (no shared store for chords) and, closed, refuses work', async () => {
    const s = await sink(await broker());
    await expect(s.incr('k', 1, { expiresMs: DAY })).rejects.toBeInstanceOf(ConfigError);
    const pending = s.wait(randomUUID(), {}).catch((e: unknown) => e);
    await s.close();
    expect(await pending).toBeInstanceOf(ClosedError);
    expect(s.health()).toMatchObject({ status: 'unhealthy', reason: 'closed' });
    await expect(s.get('x')).rejects.toBeInstanceOf(ClosedError);
  });

  it('without an amqp:// broker, rpc:// says what it needs; rpc://host works alone', async () => {
    await broker(); // an AMQP transport elsewhere in the process is not borrowed
    const lonely = createResultSink(new URL('rpc://'), {});
    opened.push(lonely);
    await expect(lonely.connect()).rejects.toBeInstanceOf(ConfigError);
    const memory = createMemoryTransport(new URL('memory://rpc-test'), {});
    opened.push(memory);
    const onMemory = createResultSink(new URL('rpc://'), { broker: async () => memory });
    opened.push(onMemory);
    await expect(onMemory.connect()).rejects.toThrow(/must be amqp:\/\/ \(it is memory:\/\/\)/);
    const own = await sink(undefined, amqpUrl(vhost).replace(/^amqp:/, 'rpc:'));
    const id = randomUUID();
    await own.store(meta(id, 'SUCCESS', 'alone'), { expiresMs: DAY });
    expect((await own.wait(id, {})).result).toBe('alone');
  });
});

describe('Celeriac app on amqp:// with rpc:// results', () => {
  it('runs tasks and gets their results, failures included', async () => {
    const url = amqpUrl(vhost);
    const app = new Celeriac({ broker: url, results: 'rpc://', logger: 'silent' });
    opened.push(app);
    const add = app.task('tasks.add', async (a: number, b: number) => a + b);
    const fail = app.task('tasks.fail', async (m: string) => {
      throw new Error(m);
    });
    const worker = app.worker({ queues: ['celery'], concurrency: 4 });
    await worker.start();
    opened.push({ close: () => worker.stop() });
    const r = await add.delay(2, 3);
    expect(await r.get({ timeout: '10s' })).toBe(5);
    const f = await fail.delay('boom');
    await expect(f.get({ timeout: '10s' })).rejects.toMatchObject({ excType: 'Error' });
  });

  it('works with Redis results on an AMQP broker', async () => {
    const app = new Celeriac({ broker: amqpUrl(vhost), results: redisUrl(), logger: 'silent' });
    opened.push(app);
    const mul = app.task('tasks.mul', async (a: number, b: number) => a * b);
    const worker = app.worker({ queues: ['celery'], concurrency: 4 });
    await worker.start();
    opened.push({ close: () => worker.stop() });
    const r = await mul.delay(6, 7);
    expect(await r.get({ timeout: '10s' })).toBe(42);
  });
});
