/**
 * Celeriac client -> Python worker, over real Redis (db 12) with the real Python Celery peer: this
 * process publishes with `app.sendTask` and typed stubs, a Python Celery worker runs the task, and
 * Celeriac's AsyncResult reads the result. Last, a mixed fleet: a Python and a Celeriac worker on one
 * queue.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { Celeriac, type TaskContext, TaskError, TaskRevokedError } from '../../../src/index.js';
import { sleep } from '../../helpers/app.js';
import { deleteRunKeys, type PeerUrls, PeerWorker, runSuffix } from '../../helpers/peer.js';
import { inspector, redisUrl } from './helpers.js';

// A db of its own (Python Celery has no key prefix). Queue names are unique to this run, and nothing
// is flushed: two runs of this file (two engineers, CI) may share the db at the same time.
const DB = 12;
const URL = redisUrl({ db: DB });
const suffix = runSuffix();
/** Stands for Celery's default `celery` queue in this run: the Python worker's queue and the app's default. */
const QUEUE = `celery-${suffix}`;
const urls: PeerUrls = { broker: URL, backend: URL, defaultQueue: QUEUE };
const GET = { timeout: '15s' } as const;

const admin: Redis = inspector(DB);
let app: Celeriac;
let python: PeerWorker;

/** Parses Celery's naive-UTC `date_done` into epoch ms. */
function doneAt(dateDone: string | null | undefined): number {
  if (!dateDone) throw new Error('no date_done');
  return Date.parse(/[Zz]|[+-]\d\d:\d\d$/.test(dateDone) ? dateDone : `${dateDone}Z`);
}

beforeAll(async () => {
  await admin.connect().catch((err: Error) => {
    throw new Error(`Redis at ${URL} is not reachable (these tests need it): ${err.message}`);
  });
  python = await PeerWorker.start(urls, { concurrency: 2 });
  app = new Celeriac({ broker: URL, results: URL, logger: 'silent', defaultQueue: QUEUE });
});

afterAll(async () => {
  await app?.close();
  await python?.stop();
  if (admin.status === 'ready') await deleteRunKeys(admin, suffix);
  admin.disconnect();
});

beforeEach(() => {
  onTestFailed(() => {
    console.error(`Python worker output (tail):\n${python?.tail(60)}`);
  });
});

describe('interop: Celeriac client -> Python worker (Redis)', () => {
  it('tasks.add, tasks.mul, tasks.xsum through app.sendTask: AsyncResult.get() returns the values', async () => {
    const [add, mul, xsum] = await Promise.all([
      app.sendTask<number>('tasks.add', [2, 3]),
      app.sendTask<number>('tasks.mul', [6, 7]),
      app.sendTask<number>('tasks.xsum', [[1, 2, 3, 4]]),
    ]);
    expect(await add.get(GET)).toBe(5);
    expect(await mul.get(GET)).toBe(42);
    expect(await xsum.get(GET)).toBe(10);
    expect(await add.state()).toBe('SUCCESS');
    expect((await add.info())?.task_id).toBe(add.id);
  });

  it('typed stubs: a client-only task and a signature by name send to the Python worker', async () => {
    // The handler never runs here (this app has no worker): it only gives delay() its types.
    const add = app.task('tasks.add', (_x: number, _y: number): number => {
      throw new Error('runs on the Python worker');
    });
    const result = await add.delay(40, 2);
    const value: number = await result.get(GET);
    expect(value).toBe(42);
    const mul = await app.signature<number>('tasks.mul', [7]).delay(6);
    expect(await mul.get(GET)).toBe(42);
  });

  it('tasks.echo: args and kwargs with non-ASCII text survive the round trip', async () => {
    const r = await app.sendTask('tasks.echo', [1, 'héllo ✓', { deep: ['ünï', null, 2.5] }], {
      k: 'ünï',
      emoji: '🌱',
      list: [true, false],
    });
    expect(await r.get(GET)).toEqual({
      args: [1, 'héllo ✓', { deep: ['ünï', null, 2.5] }],
      kwargs: { k: 'ünï', emoji: '🌱', list: [true, false] },
    });
  });

  it('tasks.fail: get() throws a TaskError with excType ValueError and the Python traceback', async () => {
    const r = await app.sendTask('tasks.fail', ['bad input ✗']);
    const err = await r.get(GET).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect(err).not.toBeInstanceOf(TaskRevokedError);
    const e = err as TaskError;
    expect(e).toMatchObject({
      taskId: r.id,
      excType: 'ValueError',
      excMessage: ['bad input ✗'],
      excModule: 'builtins',
    });
    expect(e.traceback).toMatch(/^Traceback \(most recent call last\):/);
    expect(e.traceback).toContain('peer.py');
    expect(e.traceback).toContain('raise ValueError(message)');
    expect(e.traceback).toContain('ValueError: bad input ✗');
    expect(await r.state()).toBe('FAILURE');
  });

  it('tasks.retry: the Python task retries itself, AsyncResult waits through RETRY to SUCCESS', async () => {
    const r = await app.sendTask('tasks.retry', [], { succeed_after: 2, countdown: 0.2 });
    const states: string[] = [];
    const stop = await r.watch((meta) => states.push(meta.status));
    try {
      expect(await r.get(GET)).toEqual({ retries: 2 });
    } finally {
      await stop();
    }
    expect(states.filter((s) => s === 'RETRY').length).toBeGreaterThanOrEqual(1);
    expect(states.at(-1)).toBe('SUCCESS');
  });

  it('countdown: the Python worker runs it no earlier than the countdown', async () => {
    const sent = Date.now();
    const r = await app.sendTask<number>('tasks.add', [20, 22], {}, { countdown: '1500ms' });
    expect(await r.get(GET)).toBe(42);
    const done = doneAt((await r.info())?.date_done);
    // date_done is stamped after the run; 20 ms for Celery's timer, which may fire a hair early.
    expect(done).toBeGreaterThanOrEqual(sent + 1500 - 20);
    expect(done).toBeLessThan(sent + 1500 + 3000);
  });
});

describe('interop: Celeriac client -> Python worker started later (Redis)', () => {
  it('expires: expired before the worker takes it -> REVOKED, get() throws TaskRevokedError', async () => {
    const queue = `late-expires-${suffix}`;
    const expired = await app.sendTask('tasks.add', [1, 2], {}, { queue, expires: 50 });
    const fresh = await app.sendTask<number>('tasks.add', [1, 2], {}, { queue, expires: '1m' });
    await sleep(100);
    const late = await PeerWorker.start(urls, { queues: queue, concurrency: 1, pool: 'solo' });
    try {
      expect(await fresh.get(GET)).toBe(3);
      const err = await expired.get(GET).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskRevokedError);
      expect(err).toBeInstanceOf(TaskError);
      expect(err).toMatchObject({ excType: 'TaskRevokedError', excMessage: ['expired'] });
      expect(await expired.state()).toBe('REVOKED');
    } finally {
      await late.stop();
    }
  });

  it('priority: API 9 (most urgent), sent after lower ones, runs first on the Python worker', async () => {
    const queue = `late-priority-${suffix}`;
    const sent: Array<{ priority: number; id: string }> = [];
    for (const priority of [0, 3, 6, 9]) {
      const r = await app.sendTask('tasks.echo', [`p${priority}`], {}, { queue, priority });
      sent.push({ priority, id: r.id });
    }
    const late = await PeerWorker.start(urls, { queues: queue, concurrency: 1, pool: 'solo' });
    try {
      for (const s of sent) {
        expect(await app.asyncResult(s.id).get(GET)).toEqual({ args: [`p${s.priority}`], kwargs: {} });
      }
      // The order in which the Python worker took them off Redis (its "received" log lines).
      const received = [...late.output().matchAll(/Task tasks\.echo\[([0-9a-f-]{36})\] received/g)].map(
        (m) => sent.find((s) => s.id === m[1])?.priority,
      );
      expect(received).toEqual([9, 6, 3, 0]);
    } finally {
      await late.stop();
    }
  });
});

describe('interop: a mixed fleet on one queue (Redis)', () => {
  it('Python and Celeriac workers consume the same queue side by side; every task runs once', async () => {
    const queue = `mixed-${suffix}`;
    const ran: string[] = [];
    const tsApp = new Celeriac({
      broker: URL,
      results: URL,
      logger: 'silent',
      brokerOptions: { pollInterval: 50 },
    });
    tsApp.task(
      'tasks.add',
      (ctx: TaskContext, a: number, b: number) => {
        ran.push(ctx.id);
        return a + b;
      },
      { bind: true },
    );
    const py = await PeerWorker.start(urls, { queues: queue, concurrency: 2, pool: 'threads' });
    try {
      await tsApp.worker({ queues: [queue], concurrency: 2 }).start();
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => app.sendTask<number>('tasks.add', [i, 1], {}, { queue })),
      );
      const values = await Promise.all(results.map((r) => r.get({ timeout: '60s' })));
      expect(values).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(new Set(ran).size).toBe(ran.length);
      // Both took a share.
      expect(ran.length).toBeGreaterThan(0);
      expect(ran.length).toBeLessThan(60);
    } finally {
      await py.stop();
      await tsApp.close();
    }
  }, 90_000);
});
