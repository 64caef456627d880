/**
 * Remote control and revocation behaviour, run against every broker that has fan-out (memory in
 * test/unit/control, Redis in test/integration/control): a client app and worker apps that share
 * one broker, as separate processes would.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Consumer, Delivery } from '../../../src/brokers/transport.js';
import {
  PIDBOX_EXCHANGE,
  parseReply,
  REPLY_EXCHANGE,
  requestMessage,
} from '../../../src/control/protocol.js';
import type { CeleriacConfig, TaskContext, Worker } from '../../../src/index.js';
import { Celeriac } from '../../../src/index.js';

export interface ControlEnv {
  /** Broker and result URLs for one test: every app of the test shares them; tests do not share. */
  urls(): { broker: string; results: string; brokerOptions?: Record<string, unknown> };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition') {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Celery's `Request.info()` keys, in its order. */
export const INFO_KEYS = [
  'id',
  'name',
  'args',
  'kwargs',
  'type',
  'hostname',
  'time_start',
  'acknowledged',
  'delivery_info',
  'worker_pid',
];

export function controlSuite(label: string, env: ControlEnv): void {
  describe(`remote control and revoke (${label})`, () => {
    let urls: ReturnType<ControlEnv['urls']>;
    const apps: Celeriac[] = [];

    const newApp = (config: CeleriacConfig = {}): Celeriac => {
      const app = new Celeriac({ ...urls, logger: 'silent', ...config });
      apps.push(app);
      return app;
    };

    /** A worker app with the test tasks, and its started worker. */
    const startWorker = async (
      options: { name?: string; concurrency?: number; queues?: string[] } = {},
      setup: (app: Celeriac) => void = () => {},
    ): Promise<{ app: Celeriac; worker: Worker }> => {
      const app = newApp();
      setup(app);
      const worker = app.worker({
        name: options.name ?? `w-${randomUUID().slice(0, 6)}@test`,
        concurrency: options.concurrency ?? 2,
        queues: options.queues ?? ['celery'],
        shutdownTimeout: 2000,
      });
      await worker.start();
      return { app, worker };
    };

    beforeEach(() => {
      urls = env.urls();
    });

    afterEach(async () => {
      await Promise.all(apps.splice(0).map((a) => a.close()));
    });

    it('ping: every node answers {"ok": "pong"}; destination picks nodes; others ignore it', async () => {
      const a = await startWorker({ name: 'alpha@test' });
      const b = await startWorker({ name: 'beta@test' });
      const client = newApp();
      expect(await client.control.ping({ timeout: 500 })).toEqual({
        'alpha@test': { ok: 'pong' },
        'beta@test': { ok: 'pong' },
      });
      const started = Date.now();
      expect(await client.control.ping({ destination: 'beta@test', timeout: 3000 })).toEqual({
        'beta@test': { ok: 'pong' },
      });
      expect(Date.now() - started).toBeLessThan(2500); // the limit (1 destination) ends the wait
      expect(await client.control.ping({ destination: ['nobody@test'], timeout: 300 })).toEqual({});
      expect(await client.control.ping({ pattern: 'al*', matcher: 'glob', timeout: 300 })).toEqual({
        'alpha@test': { ok: 'pong' },
      });
      expect(a.worker.hostname).toBe('alpha@test');
      expect(b.worker.hostname).toBe('beta@test');
    });

    it('revoke before start: never run, on a running worker and on a worker started after the revoke', async () => {
      const runs: string[] = [];
      const define = (app: Celeriac) => app.task('tasks.note', (x: string) => void runs.push(x));
      const client = newApp();
      define(client);
      const early = randomUUID();
      // Nobody is running: the revoke lives only in the broker's store.
      await client.control.revoke(early);
      await client.sendTask('tasks.note', ['early'], {}, { taskId: early });
      const first = await startWorker({}, define);
      await until(async () => (await client.asyncResult(early).state()) === 'REVOKED', 5000, 'early REVOKED');
      // Revoked while a worker runs: the broadcast reaches it, the store keeps it.
      const late = randomUUID();
      const replies = await client.control.revoke(late, { reply: true, timeout: 500 });
      expect(replies).toEqual({ [first.worker.hostname]: { ok: `tasks ${late} flagged as revoked` } });
      await client.sendTask('tasks.note', ['late'], {}, { taskId: late });
      await until(async () => (await client.asyncResult(late).state()) === 'REVOKED', 5000, 'late REVOKED');
      // A worker started after both revokes knows them from the store.
      await first.worker.stop();
      const second = await startWorker({}, define);
      expect(second.worker.revokedIds()).toEqual(expect.arrayContaining([early, late]));
      const again = await client.sendTask('tasks.note', ['again'], {}, { taskId: late });
      const ok = await client.sendTask('tasks.note', ['ok']);
      await ok.get({ timeout: 5000 });
      await until(async () => second.worker.stats.revoked >= 1, 5000, 'second worker revoked');
      expect(await again.state()).toBe('REVOKED');
      expect(runs).toEqual(['ok']);
      const inspected = await client.control.inspect({ timeout: 500 }).revoked();
      expect(inspected[second.worker.hostname]).toEqual(expect.arrayContaining([early, late]));
    });

    it('revoke with terminate stops a running task: its signal fires, the result is REVOKED', async () => {
      let aborted = false;
      let started = false;
      const define = (app: Celeriac) =>
        app.task(
          'tasks.wait',
          async (ctx: TaskContext) => {
            started = true;
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 20_000);
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                clearTimeout(timer);
                resolve();
              });
            });
            return 'finished';
          },
          { bind: true },
        );
      const { worker } = await startWorker({}, define);
      const client = newApp();
      const result = await client.sendTask('tasks.wait');
      await until(() => started, 5000, 'task started');
      const replies = await client.control.revoke(result.id, { terminate: true, reply: true, timeout: 500 });
      expect(replies).toEqual({ [worker.hostname]: { ok: `terminate: ${result.id}` } });
      await until(() => aborted, 5000, 'abort signal');
      await until(async () => (await result.state()) === 'REVOKED', 5000, 'REVOKED');
      const unknown = await client.control.revoke(randomUUID(), {
        terminate: true,
        reply: true,
        timeout: 500,
      });
      expect(unknown).toEqual({ [worker.hostname]: { ok: 'terminate: tasks unknown' } });
    });

    it('inspect active / reserved / scheduled / query_task / registered / stats have Celery shapes', async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const define = (app: Celeriac) => {
        app.task('tasks.block', async (n: number) => {
          await gate;
          return n;
        });
        app.task('tasks.other', () => 1, { rateLimit: '10/s' });
      };
      const { worker } = await startWorker({ concurrency: 1 }, define);
      const client = newApp();
      const one = await client.sendTask('tasks.block', [1], { note: 'x' });
      const two = await client.sendTask('tasks.block', [2]);
      const node = worker.hostname;
      await until(() => worker.active === 1 && worker.reserved === 1, 5000, 'one active, one reserved');
      const inspect = client.control.inspect({ timeout: 500 });
      const active = await inspect.active();
      expect(Object.keys(active)).toEqual([node]);
      const [running] = active[node] ?? [];
      expect(Object.keys(running ?? {})).toEqual(INFO_KEYS);
      expect(running).toMatchObject({
        id: one.id,
        name: 'tasks.block',
        args: [1],
        kwargs: { note: 'x' },
        type: 'tasks.block',
        hostname: node,
        acknowledged: true,
        delivery_info: { exchange: '', routing_key: 'celery' },
        worker_pid: process.pid,
      });
      expect(typeof running?.time_start).toBe('number');
      const reserved = await inspect.reserved();
      expect(reserved[node]?.map((t) => t.id)).toEqual([two.id]);
      expect(Object.keys(reserved[node]?.[0] ?? {})).toEqual(INFO_KEYS);
      expect(reserved[node]?.[0]).toMatchObject({ time_start: null, acknowledged: false, worker_pid: null });
      expect(await inspect.scheduled()).toEqual({ [node]: [] });
      const query = await inspect.queryTask(one.id, two.id, 'unknown-id');
      expect(query[node]?.[one.id]?.[0]).toBe('active');
      expect(query[node]?.[two.id]?.[0]).toBe('reserved');
      expect(Object.keys(query[node] ?? {})).toHaveLength(2);
      expect((await inspect.registered())[node]).toEqual(['tasks.block', 'tasks.other [rate_limit=10/s]']);
      const stats = (await inspect.stats())[node];
      expect(stats).toMatchObject({ pid: process.pid, pool: { 'max-concurrency': 1 } });
      expect((await inspect.activeQueues())[node]?.map((q) => q.name)).toEqual(['celery']);
      release();
      expect(await two.get({ timeout: 5000 })).toBe(2);
    });

    it('rate_limit changes the worker rate at run time (Celery replies); unknown task and bad rate are errors', async () => {
      const done: number[] = [];
      const define = (app: Celeriac) => app.task('tasks.tick', () => void done.push(Date.now()));
      const { worker } = await startWorker({ concurrency: 4 }, define);
      const client = newApp();
      const node = worker.hostname;
      expect(await client.control.rateLimit('tasks.tick', '2/s', { reply: true, timeout: 500 })).toEqual({
        [node]: { ok: 'new rate limit set successfully' },
      });
      expect((await client.control.inspect({ timeout: 500 }).registered())[node]).toEqual([
        'tasks.tick [rate_limit=2/s]',
      ]);
      const sent = await Promise.all([0, 1, 2, 3].map(() => client.sendTask('tasks.tick')));
      await Promise.all(sent.map((r) => r.get({ timeout: 5000 })));
      done.sort((a, b) => a - b);
      // 2/s (a bucket of 2): the fourth waits about one second after the first.
      expect((done[3] as number) - (done[0] as number)).toBeGreaterThanOrEqual(800);
      expect(await client.control.rateLimit('tasks.nope', '1/s', { reply: true, timeout: 500 })).toEqual({
        [node]: { error: 'unknown task' },
      });
      const bad = await client.control.rateLimit('tasks.tick', 'fast', { reply: true, timeout: 500 });
      expect((bad[node] as { error: string }).error).toMatch(/^Invalid rate limit string/);
      expect(await client.control.rateLimit('tasks.tick', null, { reply: true, timeout: 500 })).toEqual({
        [node]: { ok: 'rate limit disabled successfully' },
      });
      expect(worker.registeredTasks()).toEqual(['tasks.tick']);
    });

    it('time_limit sets a task limit (seconds); the next run is held to it', async () => {
      const define = (app: Celeriac) =>
        app.task('tasks.slow', async () => {
          await sleep(1500);
          return 'late';
        });
      const { worker } = await startWorker({}, define);
      const client = newApp();
      expect(
        await client.control.timeLimit('tasks.slow', { soft: 0.2, hard: 0.3 }, { reply: true, timeout: 500 }),
      ).toEqual({ [worker.hostname]: { ok: 'time limits set successfully' } });
      const result = await client.sendTask('tasks.slow');
      await until(async () => (await result.state()) === 'FAILURE', 5000, 'FAILURE by time limit');
    });

    it('pool_grow / pool_shrink change the concurrency', async () => {
      const { worker } = await startWorker({ concurrency: 2 });
      const client = newApp();
      expect(await client.control.poolGrow(3, { reply: true, timeout: 500 })).toEqual({
        [worker.hostname]: { ok: 'pool will grow' },
      });
      expect(worker.concurrency).toBe(5);
      expect(await client.control.poolShrink(1, { reply: true, timeout: 500 })).toEqual({
        [worker.hostname]: { ok: 'pool will shrink' },
      });
      expect(worker.concurrency).toBe(4);
      await client.control.poolShrink(10, { destination: worker.hostname, reply: true });
      expect(worker.concurrency).toBe(1);
      const stats = await client.control.inspect({ timeout: 500 }).stats();
      expect(stats[worker.hostname]).toMatchObject({ pool: { 'max-concurrency': 1 } });
    });

    it('add_consumer / cancel_consumer change the queues consumed', async () => {
      const define = (app: Celeriac) => app.task('tasks.where', (x: number) => x);
      const { worker } = await startWorker({ queues: ['celery'] }, define);
      const client = newApp();
      expect(await client.control.addConsumer('extra', { reply: true, timeout: 500 })).toEqual({
        [worker.hostname]: { ok: 'add consumer extra' },
      });
      expect(worker.queues).toEqual(['celery', 'extra']);
      const r = await client.sendTask('tasks.where', [7], {}, { queue: 'extra' });
      expect(await r.get({ timeout: 5000 })).toBe(7);
      expect(await client.control.cancelConsumer('extra', { reply: true, timeout: 500 })).toEqual({
        [worker.hostname]: { ok: 'no longer consuming from extra' },
      });
      expect(worker.queues).toEqual(['celery']);
      const parked = await client.sendTask('tasks.where', [8], {}, { queue: 'extra' });
      await sleep(300);
      expect(await parked.state()).toBe('PENDING');
      expect(await (await client.transport()).depth('extra')).toBe(1);
    });

    it('shutdown stops the worker (no reply, as Celery)', async () => {
      const { worker } = await startWorker();
      const other = await startWorker();
      const client = newApp();
      const offline = new Promise<void>((resolve) => worker.once('worker-offline', () => resolve()));
      await client.control.shutdown({ destination: worker.hostname });
      await offline;
      expect(worker.health().status).toBe('unhealthy');
      expect(await client.control.ping({ timeout: 400 })).toEqual({
        [other.worker.hostname]: { ok: 'pong' },
      });
    });

    it('malformed and expired requests are ignored; unknown commands get an error reply; the worker keeps serving', async () => {
      const { worker } = await startWorker();
      const client = newApp();
      const transport = await client.transport();
      const fanout = transport.fanout;
      if (!fanout) throw new Error('no fanout');
      const priority = transport.defaultPriority ?? 0;
      const garbage = [
        { body: '{not json' },
        { body: '[1, 2]' },
        { body: '{"method": 5}' },
        { body: '{"method": "ping", "arguments": [], "destination": null}' },
        { body: '{"method": "ping", "destination": "x"}' },
        { body: '{"method": "ping", "reply_to": {"exchange": 1}}' },
        { body: '{}', contentType: 'application/x-python-serialize' },
      ];
      for (const g of garbage)
        await fanout.publish(PIDBOX_EXCHANGE, '', {
          headers: {},
          properties: {},
          priority,
          contentType: g.contentType ?? 'application/json',
          contentEncoding: 'utf-8',
          body: g.body,
        });
      const oid = `oid-${randomUUID()}`;
      const got: Array<{ ticket: string | null; body: Record<string, unknown> }> = [];
      const off = await fanout.subscribe(REPLY_EXCHANGE, oid, (m) => got.push(parseReply(m)));
      const ask = (ticket: string, method: string, nowMs: number) =>
        fanout.publish(
          PIDBOX_EXCHANGE,
          '',
          requestMessage(
            {
              method,
              arguments: {},
              destination: null,
              pattern: null,
              matcher: null,
              ticket,
              reply_to: { exchange: REPLY_EXCHANGE, routing_key: oid },
            },
            { clock: 1, timeoutMs: 1000, now: nowMs, priority },
          ),
        );
      await ask('stale', 'ping', Date.now() - 5000);
      await ask('unknown', 'no_such_command', Date.now());
      await ask('fresh', 'ping', Date.now());
      await until(() => got.length >= 2, 3000, 'two replies');
      await sleep(200);
      await off();
      expect(got.map((g) => g.ticket).sort()).toEqual(['fresh', 'unknown']);
      expect(got.find((g) => g.ticket === 'fresh')?.body).toEqual({ [worker.hostname]: { ok: 'pong' } });
      expect(got.find((g) => g.ticket === 'unknown')?.body).toEqual({
        [worker.hostname]: { error: 'No such control command: no_such_command' },
      });
      expect(worker.health().status).toBe('healthy');
      expect(await client.control.ping({ timeout: 400 })).toEqual({ [worker.hostname]: { ok: 'pong' } });
    });

    it('a redelivered duplicate of a task that already succeeded is acked without running (window and result store)', async () => {
      let runs = 0;
      const define = (app: Celeriac) => app.task('tasks.once', () => ++runs);
      const client = newApp();
      define(client);
      const id = randomUUID();
      const first = await startWorker({}, define);
      const result = await client.sendTask('tasks.once', [], {}, { taskId: id });
      expect(await result.get({ timeout: 5000 })).toBe(1);
      // The same message again (its ack was lost): the worker's window drops it.
      await client.sendTask('tasks.once', [], {}, { taskId: id });
      await until(() => first.worker.stats.duplicates === 1, 5000, 'duplicate dropped by the window');
      await first.worker.stop();
      // A fresh worker (empty window) gets a *redelivered* copy: the result store says SUCCESS.
      await client.sendTask('tasks.once', [], {}, { taskId: id });
      const transport = await client.transport();
      let consumer: Consumer | undefined;
      const delivery = await new Promise<Delivery>((resolve, reject) => {
        transport.consume(['celery'], resolve, { prefetch: 1 }).then((c) => {
          consumer = c;
        }, reject);
      });
      await until(() => consumer !== undefined, 2000, 'consumer');
      await consumer?.cancel();
      await transport.requeue(delivery);
      await sleep(50);
      const second = await startWorker({}, define);
      await until(() => second.worker.stats.duplicates === 1, 5000, 'redelivered duplicate acked');
      await sleep(100);
      expect(runs).toBe(1);
      expect(await transport.depth('celery')).toBe(0);
      expect(await result.state()).toBe('SUCCESS');
    });
  });
}
