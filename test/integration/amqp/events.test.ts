/**
 * Monitoring events over RabbitMQ (own vhost): the events are on the wire as Celery's (topic
 * exchange `celeryev`, raw JSON, delivery_mode 1, `hostname` header), the cross-language scenarios
 * shared with Redis (test/helpers/events-scenarios.ts: Python's EventReceiver and `celery events
 * --dump` read a Celeriac worker, `celeriac events --dump` reads a Python -E worker, `celeriac
 * status`), and the dashboard. Results go to Redis db 6 (never flushed; task ids are unique). Fails,
 * never skips, when RabbitMQ, Redis or the Python peer is missing.
 */
import { randomUUID } from 'node:crypto';
import { type AsyncMessage, Connection } from 'rabbitmq-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard } from '../../../src/dashboard/server.js';
import { Celeriac, receiveEvents } from '../../../src/index.js';
import { describeEventsScenarios } from '../../helpers/events-scenarios.js';
import { until } from '../cli/helpers.js';
import { redisUrl } from '../redis/helpers.js';
import { AMQP_HOST, AMQP_PORT, amqpUrl, freshVhost, rabbitmqctl } from './helpers.js';

const RESULTS = redisUrl({ db: 6 });
let vhost = '';
let URL_ = '';
let drop: () => Promise<void> = async () => {};

beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('events'));
  URL_ = amqpUrl(vhost);
}, 60_000);

afterAll(async () => {
  await drop();
});

const text = (body: unknown): string =>
  Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body);

describe('a Celeriac worker’s events on the wire (AMQP)', () => {
  it('topic exchange celeryev, routing keys worker.online / task.multi, raw JSON, delivery_mode 1, hostname header; receiveEvents reads them', async () => {
    const name = `ts-wire-${randomUUID().slice(0, 6)}@test`;
    const queue = `wire-${randomUUID().slice(0, 6)}`;
    const conn = new Connection({
      hostname: AMQP_HOST,
      port: AMQP_PORT,
      vhost,
      username: 'guest',
      password: 'guest',
    });
    const raw: AsyncMessage[] = [];
    const capture = conn.createConsumer(
      {
        queue: `capture-${randomUUID()}`,
        noAck: true,
        queueOptions: { exclusive: true, autoDelete: true },
        exchanges: [{ exchange: 'celeryev', type: 'topic', durable: true }],
        queueBindings: [{ exchange: 'celeryev', routingKey: '#' }],
      },
      (m) => void raw.push(m),
    );
    await new Promise((r) => capture.once('ready', r));
    const app = new Celeriac({ broker: URL_, results: RESULTS, logger: 'silent' });
    const got: Array<Record<string, unknown>> = [];
    const receiver = await receiveEvents(app, (e) => got.push(e));
    try {
      const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue });
      const worker = app.worker({ events: true, name, queues: [queue] });
      await worker.start();
      const r = await add.delay(2, 3);
      expect(await r.get({ timeout: 10_000 })).toBe(5);
      await worker.stop();
      await until(
        () => got.some((e) => e.type === 'worker-offline' && e.hostname === name),
        'worker-offline',
      );
      const types = got.filter((e) => e.hostname === name).map((e) => e.type);
      expect(types[0]).toBe('worker-online');
      for (const t of ['task-received', 'task-started', 'task-succeeded']) expect(types).toContain(t);
      expect(got.find((e) => e.type === 'task-succeeded' && e.uuid === r.id)).toMatchObject({ result: '5' });
      await until(() => raw.some((m) => m.routingKey === 'worker.offline'), 'the raw worker-offline');
      const mine = raw.filter((m) => m.headers?.hostname === name);
      const online = mine.find((m) => m.routingKey === 'worker.online');
      expect(online).toMatchObject({
        exchange: 'celeryev',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 1,
        priority: 0,
        headers: { hostname: name },
      });
      expect(JSON.parse(text(online?.body))).toMatchObject({
        type: 'worker-online',
        hostname: name,
        freq: 2,
      });
      const multi = mine.find((m) => m.routingKey === 'task.multi');
      expect(Array.isArray(JSON.parse(text(multi?.body)))).toBe(true);
      expect(mine.every((m) => (m as AsyncMessage & { deliveryMode?: number }).deliveryMode === 1)).toBe(
        true,
      );
      // The receiver's queue is Celery's: celeryev.<uuid>, x-message-ttl 5000, x-expires 60000.
      const queues = await rabbitmqctl('list_queues', '-p', vhost, 'name', 'auto_delete', 'arguments');
      expect(queues).toMatch(/celeryev\.[0-9a-f-]{36}\ttrue\t.*x-message-ttl.*5000/);
    } finally {
      await receiver.close();
      await app.close();
      await capture.close();
      await conn.close();
    }
  }, 60_000);
});

describeEventsScenarios({
  label: 'AMQP',
  urls: () => ({ broker: URL_, results: RESULTS }),
  // Its queue celeryev.<uuid> is declared after the banner.
  dumpConsuming: async () => {
    const end = Date.now() + 10_000;
    while (!/celeryev\.[0-9a-f-]{36}/.test(await rabbitmqctl('list_queues', '-p', vhost, 'name'))) {
      if (Date.now() > end) throw new Error('celery events declared no celeryev.<uuid> queue');
      await new Promise((r) => setTimeout(r, 200));
    }
  },
});

describe('the dashboard over AMQP', () => {
  it('shows a Celeriac worker and its task from the events', async () => {
    const app = new Celeriac({ broker: URL_, results: RESULTS, logger: 'silent' });
    const queue = `dash-${randomUUID().slice(0, 6)}`;
    const name = `dash-${randomUUID().slice(0, 6)}@test`;
    const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue });
    const dashboard = await startDashboard({ app, port: 0, auth: null });
    try {
      const worker = app.worker({ events: true, name, queues: [queue] });
      await worker.start();
      const r = await add.delay(1, 2);
      expect(await r.get({ timeout: 10_000 })).toBe(3);
      type State = {
        workers: Array<{ hostname: string; online: boolean }>;
        tasks: Array<{ uuid: string; state: string; worker: string }>;
      };
      let state: State = { workers: [], tasks: [] };
      const end = Date.now() + 10_000;
      while (!state.tasks.some((t) => t.uuid === r.id && t.state === 'SUCCESS') && Date.now() < end) {
        state = (await (await fetch(`${dashboard.url}api/state`)).json()) as State;
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(state.workers.find((w) => w.hostname === name)).toMatchObject({ online: true });
      expect(state.tasks.find((t) => t.uuid === r.id)).toMatchObject({ state: 'SUCCESS', worker: name });
      await worker.stop();
    } finally {
      await dashboard.close();
      await app.close();
    }
  }, 60_000);
});
