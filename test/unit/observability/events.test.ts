import { describe, expect, it } from 'vitest';
import type { Fanout } from '../../../src/brokers/transport.js';
import { fromKombuEnvelope } from '../../../src/messages/kombu.js';
import type { WireMessage } from '../../../src/messages/types.js';
import { LamportClock } from '../../../src/observability/events/clock.js';
import { decodeEvents } from '../../../src/observability/events/codec.js';
import { EventDispatcher } from '../../../src/observability/events/dispatcher.js';
import { EventReceiver } from '../../../src/observability/events/receiver.js';
import { sendTaskSentEvents } from '../../../src/observability/events/sent-events.js';
import { ClusterState } from '../../../src/observability/events/state.js';
import type { CeleryEvent } from '../../../src/observability/events/types.js';
import { loadFixture } from '../../fixtures.js';
import { testApp, until } from '../../helpers/app.js';

interface Captured {
  exchange: string;
  routingKey: string;
  message: WireMessage;
}

function fakeFanout(): Fanout & { sent: Captured[] } {
  const sent: Captured[] = [];
  return {
    sent,
    async publish(exchange, routingKey, message) {
      sent.push({ exchange, routingKey, message });
    },
    async subscribe() {
      return async () => {};
    },
  };
}

const COMMON = ['hostname', 'utcoffset', 'pid', 'clock'];

describe('monitoring events: Celery wire format', () => {
  it('decodes every event of the captured Redis fixture, task.multi batches (and empty ones) included', () => {
    const fixture = loadFixture('redis-events') as unknown as {
      messages: Array<{ data: string; channel: string; body_decoded: unknown }>;
    };
    const all: CeleryEvent[] = [];
    for (const m of fixture.messages) {
      const events = decodeEvents(fromKombuEnvelope(m.data).wire);
      const expected = Array.isArray(m.body_decoded) ? m.body_decoded : [m.body_decoded];
      expect(events).toEqual(expected);
      all.push(...events);
    }
    const state = new ClusterState();
    for (const e of all) state.apply(e);
    expect(state.workers.get('peer@vm')).toMatchObject({
      online: false,
      processed: 4,
      sw_ident: 'py-celery',
    });
    const ids = (loadFixture('redis-events') as unknown as { task_ids: Record<string, string> }).task_ids;
    expect(state.tasks.get(ids.add as string)).toMatchObject({
      state: 'SUCCESS',
      result: '5',
      name: 'tasks.add',
    });
    expect(state.tasks.get(ids.fail as string)).toMatchObject({
      state: 'FAILURE',
      exception: "ValueError('ev')",
    });
    expect(state.tasks.get(ids.expired as string)?.state).toBe('REVOKED');
    const retry = state.tasks.get(ids.retry as string);
    expect(retry).toMatchObject({ state: 'SUCCESS', retries: 1, result: "{'retries': 1}" });
    expect(retry?.timeline.map((t) => t.type)).toEqual([
      'task-sent',
      'task-received',
      'task-started',
      'task-received',
      'task-retried',
      'task-started',
      'task-succeeded',
    ]);
  });

  it("decodes the AMQP fixture's events (bodies as RabbitMQ delivered them)", () => {
    const fixture = loadFixture('amqp-events') as unknown as {
      messages: Array<{ body_raw_utf8: string; delivery_info: string }>;
    };
    const types: string[] = [];
    for (const m of fixture.messages) {
      const events = decodeEvents({
        headers: {},
        properties: {},
        priority: 0,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        body: m.body_raw_utf8,
      });
      const raw = JSON.parse(m.body_raw_utf8) as unknown;
      expect(events.length).toBe(Array.isArray(raw) ? raw.length : 1);
      types.push(...events.map((e) => e.type));
    }
    expect(types).toEqual(
      expect.arrayContaining(['task-sent', 'task-received', 'task-succeeded', 'worker-online']),
    );
  });

  it('sends events with the common fields in order, a clock tick each, task events batched under task.multi', async () => {
    const fanout = fakeFanout();
    const d = new EventDispatcher({ fanout, hostname: 'w1@host', priority: 9, flushIntervalMs: 20 });
    d.send('worker-online', {
      freq: 2,
      active: 0,
      processed: 0,
      loadavg: [0, 0, 0],
      sw_ident: 'celeriac',
      sw_ver: '0.1.0',
      sw_sys: 'Linux',
    });
    d.send('task-received', {
      uuid: 'u1',
      name: 'tasks.add',
      args: '(2, 3)',
      kwargs: '{}',
      root_id: 'u1',
      parent_id: null,
      retries: 0,
      eta: null,
      expires: null,
    });
    d.send('task-started', { uuid: 'u1' });
    d.send('task-succeeded', { uuid: 'u1', result: '5', runtime: 0.01 });
    await until(() => fanout.sent.length === 2, 2000, 'the batch');
    await d.close();
    const [online, multi] = fanout.sent as [Captured, Captured];
    expect(online).toMatchObject({ exchange: 'celeryev', routingKey: 'worker.online' });
    expect(online.message.headers).toEqual({ hostname: 'w1@host' });
    expect(online.message.properties).toEqual({ delivery_mode: 1 });
    expect(online.message.contentType).toBe('application/json');
    const body = JSON.parse(online.message.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual([
      ...COMMON,
      'freq',
      'active',
      'processed',
      'loadavg',
      'sw_ident',
      'sw_ver',
      'sw_sys',
      'timestamp',
      'type',
    ]);
    expect(body.clock).toBe(1);
    expect(multi.routingKey).toBe('task.multi');
    const batch = JSON.parse(multi.message.body) as Array<Record<string, unknown>>;
    expect(batch.map((e) => [e.type, e.clock])).toEqual([
      ['task-received', 2],
      ['task-started', 3],
      ['task-succeeded', 4],
    ]);
    expect(Object.keys(batch[0] as object)).toEqual([
      ...COMMON,
      'uuid',
      'name',
      'args',
      'kwargs',
      'root_id',
      'parent_id',
      'retries',
      'eta',
      'expires',
      'timestamp',
      'type',
    ]);
  });

  it('a Lamport clock merges received values', () => {
    const c = new LamportClock();
    expect(c.forward()).toBe(1);
    expect(c.adjust(10)).toBe(11);
    expect(c.adjust(3)).toBe(12);
  });
});

describe('monitoring events: a worker with events: true (memory broker)', () => {
  it('sends worker-online, task events with reprs, heartbeats and worker-offline; a receiver reads them', async () => {
    const app = testApp();
    const add = app.task('tasks.add', (a: number, b: number) => a + b);
    const fail = app.task('tasks.fail', (m: string) => {
      throw new TypeError(m);
    });
    const transport = await app.transport();
    const got: CeleryEvent[] = [];
    const receiver = await EventReceiver.start(transport.fanout as Fanout, (e) => got.push(e));
    const sent = sendTaskSentEvents(app);
    const worker = app.worker({ events: true, name: 'ev@test' });
    await worker.start();
    const r = await add.delay(2, 3);
    const f = await fail.delay('nope');
    await r.get({ timeout: 5000 });
    await f.get({ timeout: 5000 }).catch(() => undefined);
    await until(
      () => got.filter((e) => e.type === 'task-failed' || e.type === 'task-succeeded').length === 2,
      5000,
      'events',
    );
    await sent.close();
    await worker.stop();
    await until(() => got.some((e) => e.type === 'worker-offline'), 5000, 'worker-offline');
    await receiver.close();
    await app.close();
    const types = got.map((e) => e.type);
    expect(types[0]).toBe('worker-online');
    expect(types).toContain('task-sent');
    expect(types.at(-1)).toBe('worker-offline');
    const succeeded = got.find((e) => e.type === 'task-succeeded');
    expect(succeeded).toMatchObject({ uuid: r.id, result: '5', hostname: 'ev@test' });
    const received = got.find((e) => e.type === 'task-received' && e.uuid === r.id);
    expect(received).toMatchObject({
      name: 'tasks.add',
      args: '(2, 3)',
      kwargs: '{}',
      root_id: r.id,
      retries: 0,
    });
    expect(got.find((e) => e.type === 'task-failed')).toMatchObject({
      uuid: f.id,
      exception: "TypeError('nope')",
    });
    expect(got.find((e) => e.type === 'task-sent' && e.uuid === r.id)).toMatchObject({
      name: 'tasks.add',
      queue: 'celery',
      routing_key: 'celery',
    });
    // One clock per sender, strictly increasing.
    const clocks = got.filter((e) => e.hostname === 'ev@test').map((e) => e.clock);
    expect(clocks).toEqual([...clocks].sort((a, b) => a - b));
    expect(new Set(clocks).size).toBe(clocks.length);
  });
});
