/**
 * Python client -> Celeriac worker, over real Redis (db 13) with the real Python Celery peer: Python's
 * `send_task` publishes, a Celeriac worker in this process runs the task, Python's AsyncResult reads
 * the result.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import type { TaskContext, Worker } from '../../../src/index.js';
import { Celeriac } from '../../../src/index.js';
import { sleep } from '../../helpers/app.js';
import {
  assertPeerAvailable,
  deleteRunKeys,
  type PeerUrls,
  peerCall,
  peerResult,
  runSuffix,
} from '../../helpers/peer.js';
import { inspector, redisUrl } from './helpers.js';

// A db of its own (Python Celery has no key prefix). Queue names are unique to this run, and nothing
// is flushed: two runs of this file (two engineers, CI) may share the db at the same time.
const DB = 13;
const URL = redisUrl({ db: DB });
const suffix = runSuffix();
/** Stands for Celery's default `celery` queue in this run. */
const QUEUE = `celery-${suffix}`;
const LATE = `late-py-${suffix}`;
const urls: PeerUrls = { broker: URL, backend: URL, defaultQueue: QUEUE };

interface Run {
  id: string;
  name: string;
  args: readonly unknown[];
  kwargs: Readonly<Record<string, unknown>>;
  retries: number;
  queue: string;
  at: number;
}

const runs: Run[] = [];
const admin: Redis = inspector(DB);
let app: Celeriac;
let worker: Worker;

function record(ctx: TaskContext): void {
  runs.push({
    id: ctx.id,
    name: ctx.name,
    args: ctx.args,
    kwargs: ctx.kwargs,
    retries: ctx.retries,
    queue: ctx.queue,
    at: Date.now(),
  });
}

/** An error Python rebuilds as its built-in ValueError (exc_type is the error's name). */
class ValueError extends Error {
  override name = 'ValueError';
}

function makeApp(): Celeriac {
  const a = new Celeriac({
    broker: URL,
    results: URL,
    logger: 'silent',
    // Python publishers send no wake-up: an idle consumer looks at its queues this often.
    brokerOptions: { pollInterval: 50 },
  });
  a.task(
    'tasks.add',
    (ctx: TaskContext, x: number, y: number) => {
      record(ctx);
      return x + y;
    },
    { bind: true },
  );
  a.task(
    'tasks.mul',
    (ctx: TaskContext, x: number, y: number) => {
      record(ctx);
      return x * y;
    },
    { bind: true },
  );
  a.task(
    'tasks.xsum',
    (ctx: TaskContext, numbers: number[]) => {
      record(ctx);
      return numbers.reduce((s, n) => s + n, 0);
    },
    { bind: true },
  );
  a.task(
    'tasks.echo',
    (ctx: TaskContext, ...args: unknown[]) => {
      record(ctx);
      return { args, kwargs: ctx.kwargs };
    },
    { bind: true },
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

beforeAll(async () => {
  await assertPeerAvailable();
  await admin.connect().catch((err: Error) => {
    throw new Error(`Redis at ${URL} is not reachable (these tests need it): ${err.message}`);
  });
  app = makeApp();
  worker = app.worker({ queues: [QUEUE], concurrency: 4 });
  await worker.start();
});

afterAll(async () => {
  await app?.close();
  if (admin.status === 'ready') await deleteRunKeys(admin, suffix);
  admin.disconnect();
});

beforeEach(() => {
  runs.length = 0;
  onTestFailed(() => {
    console.error(`Celeriac runs in this test:\n${JSON.stringify(runs, null, 1)}`);
  });
});

describe('interop: Python client -> Celeriac worker (Redis)', () => {
  it('tasks.add, tasks.mul and tasks.xsum: Python AsyncResult reads SUCCESS and the value', async () => {
    const [add, mul, xsum] = await Promise.all([
      peerCall(urls, 'tasks.add', [2, 3]),
      peerCall(urls, 'tasks.mul', [6, 7]),
      peerCall(urls, 'tasks.xsum', [[1, 2, 3, 4]]),
    ]);
    expect(add).toMatchObject({ state: 'SUCCESS', result: 5, exitCode: 0 });
    expect(mul).toMatchObject({ state: 'SUCCESS', result: 42, exitCode: 0 });
    expect(xsum).toMatchObject({ state: 'SUCCESS', result: 10, exitCode: 0 });
    // They ran here, with Python's task ids.
    expect(runs.map((r) => r.id).sort()).toEqual([add.id, mul.id, xsum.id].sort());
  });

  it('tasks.echo: args and kwargs, non-ASCII text (values and keys) both ways', async () => {
    const r = await peerCall(urls, 'tasks.echo', [1, 'héllo ✓', [2, { a: null }]], {
      kwargs: { k: 'ünï', n: 1.5, nested: { list: [true, false], s: '✓' }, né: [1, 2] },
    });
    expect(r).toMatchObject({ state: 'SUCCESS', exitCode: 0 });
    expect(r.result).toEqual({
      args: [1, 'héllo ✓', [2, { a: null }]],
      kwargs: { k: 'ünï', n: 1.5, nested: { list: [true, false], s: '✓' }, né: [1, 2] },
    });
    expect(runs).toHaveLength(1);
    expect(runs[0]?.kwargs).toEqual({
      k: 'ünï',
      n: 1.5,
      nested: { list: [true, false], s: '✓' },
      né: [1, 2],
    });
  });

  it('tasks.fail: Python sees FAILURE with exc_type ValueError, the message and a traceback', async () => {
    const r = await peerCall(urls, 'tasks.fail', ['bad input ✗']);
    expect(r).toMatchObject({
      state: 'FAILURE',
      exc_type: 'ValueError',
      exc_message: ['bad input ✗'],
      exitCode: 1,
    });
    expect(r.traceback).toContain('Traceback (most recent call last)');
    expect(r.traceback).toContain('ValueError: bad input ✗');
    // Keyword form, mapped onto the parameter by `params`.
    const kw = await peerCall(urls, 'tasks.fail', [], { kwargs: { message: 'by keyword' } });
    expect(kw).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError', exc_message: ['by keyword'] });
  });

  it('tasks.retry: retries itself with the same id until succeed_after, Python reads {retries}', async () => {
    const r = await peerCall(urls, 'tasks.retry', [], { kwargs: { succeed_after: 2, countdown: 0.2 } });
    expect(r).toMatchObject({ state: 'SUCCESS', result: { retries: 2 }, exitCode: 0 });
    expect(runs.map((x) => [x.id, x.retries])).toEqual([
      [r.id, 0],
      [r.id, 1],
      [r.id, 2],
    ]);
    // Each retry waited for its countdown.
    expect((runs[1]?.at ?? 0) - (runs[0]?.at ?? 0)).toBeGreaterThanOrEqual(190);
    expect((runs[2]?.at ?? 0) - (runs[1]?.at ?? 0)).toBeGreaterThanOrEqual(190);
  });

  it('countdown: runs no earlier than the countdown (beyond the eta horizon: parked in Redis)', async () => {
    const before = Date.now();
    const r = await peerCall(urls, 'tasks.add', [20, 22], { countdown: 1.5 });
    expect(r).toMatchObject({ state: 'SUCCESS', result: 42 });
    expect(runs).toHaveLength(1);
    expect(runs[0]?.at ?? 0).toBeGreaterThanOrEqual(before + 1500);
    // and not much later: a parked message is put back when due
    expect(runs[0]?.at ?? 0).toBeLessThan(before + 1500 + 3000);
  });

  it('short countdown (within the horizon): held and run on time', async () => {
    const before = Date.now();
    const r = await peerCall(urls, 'tasks.mul', [3, 3], { countdown: 0.4 });
    expect(r).toMatchObject({ state: 'SUCCESS', result: 9 });
    expect(runs[0]?.at ?? 0).toBeGreaterThanOrEqual(before + 400);
  });
});

describe('interop: Python client -> Celeriac worker started later (Redis)', () => {
  it('expires and priority: an expired task ends REVOKED unrun; a more urgent message sent last runs first', async () => {
    const late = app.worker({ queues: [LATE], concurrency: 1, prefetch: 0 });
    try {
      // Sent while no worker consumes LATE. kombu's Redis priority: lower is served first.
      const expired = await peerCall(urls, 'tasks.echo', ['expired'], {
        queue: LATE,
        expires: 0.05,
        noWait: true,
      });
      const sent: Array<[string, number]> = [];
      for (const p of [9, 6, 3, 0]) {
        const r = await peerCall(urls, 'tasks.echo', [`p${p}`], {
          queue: LATE,
          priority: p,
          noWait: true,
        });
        expect(r).toMatchObject({ state: 'SENT', exitCode: 0 });
        sent.push([r.id, p]);
      }
      await sleep(100); // well past the 50 ms expiry
      await late.start();

      const revoked = await peerResult(urls, expired.id, 10);
      expect(revoked).toMatchObject({
        state: 'REVOKED',
        exc_type: 'TaskRevokedError',
        exc_message: ['expired'],
      });
      for (const [id] of sent) expect(await peerResult(urls, id, 10)).toMatchObject({ state: 'SUCCESS' });
      expect(runs.map((r) => r.args[0])).toEqual(['p0', 'p3', 'p6', 'p9']);
      expect(runs.map((r) => r.id)).not.toContain(expired.id);
    } finally {
      await late.stop();
    }
  });
});
