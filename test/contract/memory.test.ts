import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deque } from '../../src/brokers/memory/deque.js';
import { MinHeap } from '../../src/brokers/memory/heap.js';
import { createTransport } from '../../src/brokers/memory/index.js';
import type { Delivery, Transport } from '../../src/brokers/transport.js';
import { ConfigError } from '../../src/errors.js';
import { createResultSink } from '../../src/results/memory/index.js';
import type { ResultSink } from '../../src/results/sink.js';
import { messageId, testMessage } from '../helpers/messages.js';
import { sinkContract } from './sink.contract.js';
import { transportContract } from './transport.contract.js';

const suffix = randomUUID().slice(0, 8);

transportContract('memory', async () => ({
  transport: createTransport(new URL(`memory://contract-${suffix}`), {}),
}));
sinkContract('memory', async () => ({ sink: createResultSink(new URL(`memory://contract-${suffix}`), {}) }));

/** Every transport and sink a test opens, closed after it (a leak would keep brokers alive). */
const opened: (Transport | ResultSink)[] = [];
function transport(url = `memory://t-${randomUUID()}`): Transport {
  const t = createTransport(new URL(url), {});
  opened.push(t);
  return t;
}
function sink(url = `memory://s-${randomUUID()}`): ResultSink {
  const s = createResultSink(new URL(url), {});
  opened.push(s);
  return s;
}
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
  vi.useRealTimers();
});

describe('Deque', () => {
  it('keeps FIFO order across growth and wrap-around, with unshift at the head', () => {
    const d = new Deque<number>(4);
    const model: number[] = [];
    for (let i = 0; i < 1000; i++) {
      if (i % 3 === 2) expect(d.shift()).toBe(model.shift());
      else if (i % 7 === 0) {
        d.unshift(i);
        model.unshift(i);
      } else {
        d.push(i);
        model.push(i);
      }
      expect(d.length).toBe(model.length);
    }
    while (model.length) expect(d.shift()).toBe(model.shift());
    expect(d.shift()).toBeUndefined();
    d.push(1);
    expect(d.clear()).toBe(1);
    expect(d.length).toBe(0);
  });
});

describe('MinHeap', () => {
  it('pops in ascending order', () => {
    const h = new MinHeap<number>((a, b) => a < b);
    const values = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1009);
    for (const v of values) h.push(v);
    const out: number[] = [];
    for (let v = h.pop(); v !== undefined; v = h.pop()) out.push(v);
    expect(out).toEqual([...values].sort((a, b) => a - b));
  });
});

describe('memory transport', () => {
  it('drains 100k messages in FIFO order, each once, without starving the event loop', async () => {
    const t = transport();
    const total = 100_000;
    const batch = Array.from({ length: 1000 }, (_, i) => testMessage({ id: `m-${i}` }));
    for (let b = 0; b < total / batch.length; b++) {
      await t.publish(
        batch.map((message, i) => ({ queue: 'bulk', message: { ...message, body: String(b * 1000 + i) } })),
      );
    }
    expect(await t.depth('bulk')).toBe(total);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    let received = 0;
    let inOrder = true;
    let firstDeliveries = true;
    const drained = new Promise<void>((resolve) => {
      void t.consume(
        ['bulk'],
        (d) => {
          if (d.message?.body !== String(received)) inOrder = false;
          if (d.deliveryCount !== 1) firstDeliveries = false;
          received++;
          void t.ack(d).then(() => {
            if (received === total) resolve();
          });
        },
        { prefetch: 500 },
      );
    });
    await drained;
    clearInterval(ticker);
    expect(received).toBe(total);
    expect(inOrder).toBe(true);
    expect(firstDeliveries).toBe(true);
    expect(ticks).toBeGreaterThan(0);
    expect(await t.depth('bulk')).toBe(0);
  });

  it('shares a broker between transports of the same name, isolates other names', async () => {
    const a = transport('memory://');
    const b = transport('memory://');
    const other = transport('memory://elsewhere');
    await b.connect();
    await a.publish([{ queue: 'celery', message: testMessage() }]);
    expect(await b.depth('celery')).toBe(1);
    expect(await other.depth('celery')).toBe(0);
  });

  it('drops a broker when its last transport closes, not before', async () => {
    const name = `memory://refs-${randomUUID()}`;
    const first = transport(name);
    await first.publish([{ queue: 'q', message: testMessage() }]);
    const second = transport(name);
    await second.connect();
    await first.close();
    expect(await second.depth('q')).toBe(1);
    await second.close();
    const third = transport(name);
    expect(await third.depth('q')).toBe(0);
  });

  it('copies messages in and out: later edits by publisher or consumer change nothing', async () => {
    const t = transport();
    const sent = testMessage();
    const id = messageId(sent);
    await t.publish([{ queue: 'q', message: sent }]);
    sent.headers['id'] = 'edited';
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d), { prefetch: 5 });
    await vi.waitFor(() => expect(got).toHaveLength(1));
    const first = got[0] as Delivery;
    expect(messageId(first.message)).toBe(id);
    if (first.message) first.message.headers['id'] = 'edited-too';
    await t.requeue(first);
    await vi.waitFor(() => expect(got).toHaveLength(2));
    expect(messageId(got[1]?.message)).toBe(id);
  });

  it('refuses to settle a delivery through another transport', async () => {
    const name = `memory://owner-${randomUUID()}`;
    const owner = transport(name);
    const stranger = transport(name);
    await owner.publish([{ queue: 'q', message: testMessage() }]);
    const got: Delivery[] = [];
    await owner.consume(['q'], (d) => got.push(d), { prefetch: 1 });
    await vi.waitFor(() => expect(got).toHaveLength(1));
    await expect(stranger.ack(got[0] as Delivery)).rejects.toMatchObject({ code: 'ERR_SETTLED' });
    await owner.ack(got[0] as Delivery);
  });

  it('reports a consumer callback that throws and keeps delivering', async () => {
    const log = vi.fn();
    const t = createTransport(new URL(`memory://throws-${randomUUID()}`), { log });
    opened.push(t);
    await t.publish([1, 2].map(() => ({ queue: 'q', message: testMessage() })));
    const got: Delivery[] = [];
    await t.consume(
      ['q'],
      (d) => {
        got.push(d);
        if (got.length === 1) throw new Error('handler bug');
      },
      { prefetch: 5 },
    );
    await vi.waitFor(() => expect(got).toHaveLength(2));
    expect(log).toHaveBeenCalledWith(
      'error',
      expect.stringContaining('threw'),
      expect.objectContaining({ queue: 'q' }),
    );
    await t.ack(got[0] as Delivery); // still owned, settles normally
  });

  it('replays a dead letter as a fresh message (deliveryCount starts again)', async () => {
    const t = transport();
    await t.publish([{ queue: 'q', message: testMessage() }]);
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d), { prefetch: 1 });
    await vi.waitFor(() => expect(got).toHaveLength(1));
    await t.requeue(got[0] as Delivery);
    await vi.waitFor(() => expect(got).toHaveLength(2));
    expect(got[1]?.deliveryCount).toBe(2);
    await t.deadLetter(got[1] as Delivery, 'poison');
    expect(await t.deadLetters.replay('q')).toBe(1);
    await vi.waitFor(() => expect(got).toHaveLength(3));
    expect(got[2]?.deliveryCount).toBe(1);
  });

  it('validates queues and prefetch with ConfigError', async () => {
    const t = transport();
    await expect(t.consume([], () => {}, { prefetch: 1 })).rejects.toBeInstanceOf(ConfigError);
    await expect(t.consume(['q'], () => {}, { prefetch: 0 })).rejects.toBeInstanceOf(ConfigError);
    const consumer = await t.consume(['q'], () => {}, { prefetch: 1 });
    expect(() => consumer.setPrefetch(1.5)).toThrow(ConfigError);
  });

  it('releases delayed messages in due order with one timer, and clears it on close', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'] });
    const t = transport();
    const now = Date.now();
    const messages = [300, 100, 200, 100].map((delay) => ({ delay, message: testMessage() }));
    await t.publish(messages.map(({ delay, message }) => ({ queue: 'q', message, notBefore: now + delay })));
    expect(vi.getTimerCount()).toBe(1);
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d), { prefetch: 10 });
    await vi.advanceTimersByTimeAsync(99);
    expect(got).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(got.map((d) => messageId(d.message))).toEqual([1, 3].map((i) => messageId(messages[i]?.message)));
    await vi.advanceTimersByTimeAsync(200);
    expect(got.map((d) => messageId(d.message))).toEqual(
      [1, 3, 2, 0].map((i) => messageId(messages[i]?.message)),
    );
    await t.publish([{ queue: 'q', message: testMessage(), notBefore: Date.now() + 60_000 }]);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await t.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('memory result sink', () => {
  const meta = (id: string, status: string) => ({
    status,
    result: 1,
    traceback: null,
    children: [],
    date_done: null,
    task_id: id,
  });

  it('shares a store between sinks of the same name, isolates other names, frees it on last close', async () => {
    const name = `memory://results-${randomUUID()}`;
    const a = sink(name);
    const b = sink(name);
    const other = sink();
    await b.connect();
    await a.store(meta('t1', 'SUCCESS'), { expiresMs: 60_000 });
    expect(await b.get('t1')).toMatchObject({ status: 'SUCCESS' });
    expect(await other.get('t1')).toBeNull();
    await a.close();
    await b.close();
    expect(await sink(name).get('t1')).toBeNull();
  });

  it('copies results in and out', async () => {
    const s = sink();
    const stored = meta('t2', 'SUCCESS');
    await s.store(stored, { expiresMs: 60_000 });
    stored.result = 2;
    const got = await s.get('t2');
    expect(got?.result).toBe(1);
    if (got) got.result = 3;
    expect((await s.get('t2'))?.result).toBe(1);
  });

  it('never expires a result stored with expiresMs 0', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const s = sink();
    await s.store(meta('t3', 'SUCCESS'), { expiresMs: 0 });
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 * 365 * 86_400_000);
    expect(await s.get('t3')).not.toBeNull();
  });

  it('sweeps expired entries with an unref-ed timer that close clears', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const s = sink();
    await s.store(meta('t4', 'SUCCESS'), { expiresMs: 500 });
    await s.incr('k', 1, { expiresMs: 500 });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1000); // the sweep drops both and, with nothing left, stops itself
    expect(vi.getTimerCount()).toBe(0);
    await s.store(meta('t5', 'SUCCESS'), { expiresMs: 500 });
    expect(vi.getTimerCount()).toBe(1);
    await s.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
