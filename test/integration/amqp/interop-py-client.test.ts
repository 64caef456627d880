/**
 * Python client -> Celeriac worker over RabbitMQ (a vhost of this file), with the real Python Celery
 * peer: Python's `send_task` publishes to RabbitMQ, a Celeriac worker in this process runs the task,
 * Python's AsyncResult reads the result over rpc:// (the reply queue) and over Redis.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import type { TaskContext, Worker } from '../../../src/index.js';
import { Celeriac } from '../../../src/index.js';
import { sleep } from '../../helpers/app.js';
import { assertPeerAvailable, type PeerUrls, peerCall, peerResult, peerScript } from '../../helpers/peer.js';
import { redisUrl } from '../redis/helpers.js';
import { amqpUrl, freshVhost } from './helpers.js';

interface Run {
  id: string;
  name: string;
  args: readonly unknown[];
  kwargs: Readonly<Record<string, unknown>>;
  retries: number;
  at: number;
}

class ValueError extends Error {
  override name = 'ValueError';
}

let vhost = '';
let drop: () => Promise<void> = async () => {};
const runs: Run[] = [];

beforeAll(async () => {
  await assertPeerAvailable();
  ({ vhost, drop } = await freshVhost('interop-py'));
});
afterAll(async () => {
  await drop();
});
beforeEach(() => {
  runs.length = 0;
  onTestFailed(() => console.error(`Celeriac runs in this test:\n${JSON.stringify(runs, null, 1)}`));
});

function record(ctx: TaskContext): void {
  runs.push({
    id: ctx.id,
    name: ctx.name,
    args: ctx.args,
    kwargs: ctx.kwargs,
    retries: ctx.retries,
    at: Date.now(),
  });
}

function makeApp(results: string): Celeriac {
  const a = new Celeriac({
    broker: amqpUrl(vhost),
    results,
    logger: 'silent',
    // `prio` is declared by both sides with x-max-priority 9 (the Python side through task_queues).
    brokerOptions: { queues: { prio: { maxPriority: 9 } } },
  });
  const bound = { bind: true } as const;
  /** A handler that records its run, then computes. */
  const recorded =
    <A extends unknown[], R>(fn: (ctx: TaskContext, ...args: A) => R) =>
    (ctx: TaskContext, ...args: A): R => {
      record(ctx);
      return fn(ctx, ...args);
    };
  a.task(
    'tasks.add',
    recorded((_c, x: number, y: number) => x + y),
    bound,
  );
  a.task(
    'tasks.mul',
    recorded((_c, x: number, y: number) => x * y),
    bound,
  );
  a.task(
    'tasks.xsum',
    recorded((_c, ns: number[]) => ns.reduce((s, n) => s + n, 0)),
    bound,
  );
  a.task(
    'tasks.echo',
    recorded((c, ...args: unknown[]) => ({ args, kwargs: c.kwargs })),
    bound,
  );
  a.task(
    'tasks.fail',
    (ctx: TaskContext, message = 'boom') => {
      record(ctx);
      throw new ValueError(String(message));
    },
    { bind: true, params: ['message'] },
  );
  a.task(
    'tasks.retry',
    (ctx: TaskContext) => {
      record(ctx);
      const succeedAfter = Number(ctx.kwargs.succeed_after ?? 2);
      const countdownS = Number(ctx.kwargs.countdown ?? 0.5);
      if (ctx.retries < succeedAfter) throw ctx.retry({ countdown: countdownS * 1000 });
      return { retries: ctx.retries };
    },
    { bind: true, retry: { max: 5 } },
  );
  return a;
}

for (const backend of ['rpc', 'redis'] as const) {
  describe(`interop over AMQP: Python client -> Celeriac worker, results over ${backend}`, () => {
    let app: Celeriac;
    let worker: Worker;
    let urls: PeerUrls;

    beforeAll(async () => {
      const results = backend === 'rpc' ? 'rpc://' : redisUrl({ db: 9 });
      urls = { broker: amqpUrl(vhost), backend: results };
      app = makeApp(results);
      worker = app.worker({ queues: ['celery'], concurrency: 4 });
      await worker.start();
    });
    afterAll(async () => {
      await worker?.stop();
      await app?.close();
    });

    it('tasks.add, tasks.mul, tasks.xsum: Python reads SUCCESS and the value', async () => {
      const [add, mul, xsum] = await Promise.all([
        peerCall(urls, 'tasks.add', [2, 3]),
        peerCall(urls, 'tasks.mul', [6, 7]),
        peerCall(urls, 'tasks.xsum', [[1, 2, 3, 4]]),
      ]);
      expect(add).toMatchObject({ state: 'SUCCESS', result: 5, exitCode: 0 });
      expect(mul).toMatchObject({ state: 'SUCCESS', result: 42, exitCode: 0 });
      expect(xsum).toMatchObject({ state: 'SUCCESS', result: 10, exitCode: 0 });
      expect(runs.map((r) => r.id).sort()).toEqual([add.id, mul.id, xsum.id].sort());
    });

    it('tasks.echo: args and kwargs, non-ASCII both ways', async () => {
      const kwargs = { k: 'ünï', n: 1.5, nested: { list: [true, false], s: '✓' } };
      const r = await peerCall(urls, 'tasks.echo', [1, 'héllo ✓', [2, { a: null }]], { kwargs });
      expect(r).toMatchObject({ state: 'SUCCESS', exitCode: 0 });
      expect(r.result).toEqual({ args: [1, 'héllo ✓', [2, { a: null }]], kwargs });
      expect(runs[0]?.kwargs).toEqual(kwargs);
    });

    it('tasks.fail: FAILURE with exc_type ValueError, the message and a traceback', async () => {
      const r = await peerCall(urls, 'tasks.fail', ['bad input ✗']);
      expect(r).toMatchObject({
        state: 'FAILURE',
        exc_type: 'ValueError',
        exc_message: ['bad input ✗'],
        exitCode: 1,
      });
      expect(r.traceback).toContain('ValueError: bad input ✗');
    });

    it('tasks.retry: same id, retries until succeed_after, each after its countdown (kept in RabbitMQ)', async () => {
      const r = await peerCall(urls, 'tasks.retry', [], { kwargs: { succeed_after: 2, countdown: 0.3 } });
      expect(r).toMatchObject({ state: 'SUCCESS', result: { retries: 2 }, exitCode: 0 });
      expect(runs.map((x) => [x.id, x.retries])).toEqual([
        [r.id, 0],
        [r.id, 1],
        [r.id, 2],
      ]);
      expect((runs[1]?.at ?? 0) - (runs[0]?.at ?? 0)).toBeGreaterThanOrEqual(280);
      expect((runs[2]?.at ?? 0) - (runs[1]?.at ?? 0)).toBeGreaterThanOrEqual(280);
    });

    it('countdown: runs no earlier than the countdown, and not much later', async () => {
      const before = Date.now();
      const r = await peerCall(urls, 'tasks.add', [20, 22], { countdown: 1.5 });
      expect(r).toMatchObject({ state: 'SUCCESS', result: 42 });
      expect(runs[0]?.at ?? 0).toBeGreaterThanOrEqual(before + 1500);
      expect(runs[0]?.at ?? 0).toBeLessThan(before + 1500 + 3000);
    });

    it('expires: one that expires before its eta ends REVOKED unrun', async () => {
      // Sent and awaited in one Python process: an rpc result goes to the sender's reply queue only.
      const revoked = await peerScript(
        urls,
        "r = app.send_task('tasks.add', args=[1, 1], countdown=1, expires=0.5)\nprint(json.dumps(result_out(r, 10)))",
      );
      expect(revoked).toMatchObject({
        state: 'REVOKED',
        exc_type: 'TaskRevokedError',
        exc_message: ['expired'],
      });
      expect(runs.map((x) => x.id)).not.toContain(revoked.id);
    });
  });
}

describe('interop over AMQP: Python client -> Celeriac worker started later', () => {
  it('expires in the queue: RabbitMQ drops it (expiration property), it never runs', async () => {
    const urls = { broker: amqpUrl(vhost), backend: 'rpc://' };
    const r = await peerCall(urls, 'tasks.echo', ['expired'], {
      queue: 'late-expires',
      expires: 0.05,
      noWait: true,
    });
    await sleep(200);
    const app = makeApp('rpc://');
    const late = app.worker({ queues: ['late-expires'], concurrency: 1 });
    await late.start();
    try {
      await sleep(500);
      expect(runs.map((x) => x.id)).not.toContain(r.id);
      expect(await (await app.transport()).depth('late-expires')).toBe(0);
    } finally {
      await late.stop();
      await app.close();
    }
  });

  it('priority: on a queue both sides declare with x-max-priority 9, 9 runs first', async () => {
    const results = redisUrl({ db: 9 });
    const urls = { broker: amqpUrl(vhost), backend: results };
    // Python declares `prio` as Celery does with task_queues (max_priority=9) and sends 0, 3, 6, 9.
    const sent = (await peerScript(
      urls,
      `
from kombu import Exchange, Queue
app.conf.task_queues = [Queue('prio', Exchange('prio'), routing_key='prio', max_priority=9)]
ids = []
for p in ARGS['priorities']:
    ids.append([app.send_task('tasks.echo', args=['p%d' % p], queue='prio', priority=p).id, p])
print(json.dumps({'sent': ids}))
`,
      { priorities: [0, 3, 6, 9] },
    )) as { sent: Array<[string, number]> };
    const app = makeApp(results);
    const late = app.worker({ queues: ['prio'], concurrency: 1, prefetch: 0 });
    await late.start();
    try {
      for (const [id] of sent.sent)
        expect(await peerResult(urls, id, 10)).toMatchObject({ state: 'SUCCESS' });
      expect(runs.map((r) => r.args[0])).toEqual(['p9', 'p6', 'p3', 'p0']);
    } finally {
      await late.stop();
      await app.close();
    }
  });
});
