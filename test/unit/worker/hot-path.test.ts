import { describe, expect, it } from 'vitest';
import { LazyAbortController } from '../../../src/worker/abort.js';
import { AutoPrefetch } from '../../../src/worker/prefetch.js';
import { RecentSet } from '../../../src/worker/recent.js';

describe('AutoPrefetch', () => {
  const clock = () => {
    let t = 0;
    return {
      now: () => t,
      advance: (ms: number) => {
        t += ms;
      },
    };
  };

  it('starts at 1 and grows to about windowMs of work at the completion rate', () => {
    const c = clock();
    const auto = new AutoPrefetch(10, () => 1000, c.now);
    expect(auto.value).toBe(1);
    // 20,000 tasks/s: 2,000 in 100 ms -> 10 ms of work is 200.
    for (let i = 0; i < 2000; i++) auto.completed();
    c.advance(100);
    expect(auto.tick()).toBe(200);
    expect(auto.value).toBe(200);
  });

  it('is capped by the ceiling and never below 1', () => {
    const c = clock();
    const auto = new AutoPrefetch(10, () => 16, c.now);
    for (let i = 0; i < 5000; i++) auto.completed();
    c.advance(100);
    expect(auto.tick()).toBe(16);
    // Nothing finishes (a long task): the rate halves every tick and the reserve falls back to 1.
    let last: number | null = 16;
    for (let i = 0; i < 20 && auto.value > 1; i++) {
      c.advance(100);
      last = auto.tick() ?? last;
    }
    expect(auto.value).toBe(1);
    expect(last).toBe(1);
  });

  it('reports a change only when it moved by a quarter or more', () => {
    const c = clock();
    const auto = new AutoPrefetch(10, () => 1000, c.now);
    for (let i = 0; i < 1000; i++) auto.completed();
    c.advance(100);
    expect(auto.tick()).toBe(100);
    // 1,100 in the next 100 ms: a rise is taken at once, 110, under 25%: no change reported.
    for (let i = 0; i < 1100; i++) auto.completed();
    c.advance(100);
    expect(auto.tick()).toBeNull();
    expect(auto.value).toBe(100);
  });

  it('rises at once to a faster rate and falls back smoothly', () => {
    const c = clock();
    const auto = new AutoPrefetch(10, () => 1000, c.now);
    for (let i = 0; i < 100; i++) auto.completed();
    c.advance(100);
    expect(auto.tick()).toBe(10);
    // A burst four times as fast: the reserve follows on this very tick.
    for (let i = 0; i < 4000; i++) auto.completed();
    c.advance(100);
    expect(auto.tick()).toBe(400);
    // Back to 1,000/s: the average falls halfway (20,500/s), 205, not to 10 at once.
    for (let i = 0; i < 100; i++) auto.completed();
    c.advance(100);
    expect(auto.tick()).toBe(205);
  });

  it('reset() measures from then: time before a start is not counted', () => {
    const c = clock();
    const auto = new AutoPrefetch(10, () => 1000, c.now);
    c.advance(5000); // made long before it is started
    auto.reset();
    for (let i = 0; i < 500; i++) auto.completed();
    c.advance(25);
    // 500 in 25 ms is 20,000/s: 200, not 500 over 5,025 ms (1).
    expect(auto.tick()).toBe(200);
  });
});

describe('LazyAbortController', () => {
  it('makes no signal until asked, and aborts like an AbortController', () => {
    const a = new LazyAbortController();
    expect(a.aborted).toBe(false);
    const signal = a.signal;
    expect(signal.aborted).toBe(false);
    const reason = new Error('revoked');
    a.abort(reason);
    expect(a.aborted).toBe(true);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it('aborting before anyone looked still gives an aborted signal afterwards', () => {
    const a = new LazyAbortController();
    a.abort('late');
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBe('late');
  });
});

describe('RecentSet', () => {
  it('keeps the last max ids, oldest out first', () => {
    const r = new RecentSet(3);
    for (const id of ['a', 'b', 'c', 'd']) r.add(id);
    expect(r.has('a')).toBe(false);
    expect(['b', 'c', 'd'].every((id) => r.has(id))).toBe(true);
    expect(r.size).toBe(3);
    r.add('c'); // already there: no change
    r.add('e');
    r.add('f');
    expect(r.has('b')).toBe(false);
    expect(r.has('c')).toBe(false);
    expect(['d', 'e', 'f'].every((id) => r.has(id))).toBe(true);
    expect(r.size).toBe(3);
  });

  it('max 0 keeps nothing', () => {
    const r = new RecentSet(0);
    r.add('a');
    expect(r.has('a')).toBe(false);
  });
});

describe("worker prefetch 'auto' (the default)", () => {
  it('reserves more while short tasks stream through, and 1 again once they stop', async () => {
    const { testApp, until } = await import('../../helpers/app.js');
    const app = testApp();
    const noop = app.task('hot.noop', () => undefined, { ignoreResult: true });
    const worker = app.worker({ concurrency: 2 });
    expect(worker.prefetch).toBe(1);
    await worker.start();
    let peak = 0;
    const sending = (async () => {
      for (let round = 0; round < 40; round++) {
        await Promise.all(Array.from({ length: 500 }, () => noop.delay()));
        peak = Math.max(peak, worker.prefetch, Number(worker.statsInfo().prefetch_count) - 2);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await sending;
    expect(peak).toBeGreaterThan(1);
    await until(() => worker.prefetch === 1, 5000);
    await worker.stop();
    await app.close();
  });

  it("refuses a prefetch that is neither a count nor 'auto'", async () => {
    const { testApp } = await import('../../helpers/app.js');
    const app = testApp();
    expect(() => app.worker({ prefetch: -1 })).toThrow(/prefetch.*'auto'/);
    expect(() => app.worker({ prefetch: 'fast' as never })).toThrow(/prefetch/);
    await app.close();
  });
});

describe('the synchronous run path', () => {
  const input = (handler: (...args: never[]) => unknown, extra: Record<string, unknown> = {}) => ({
    task: { name: 't', handler, options: {} } as never,
    id: 'id-1',
    args: [2, 3],
    kwargs: {},
    headers: {},
    retries: 0,
    queue: 'celery',
    hostname: 'h',
    event: null,
    limits: { hardMs: null, softMs: null },
    controller: new LazyAbortController(),
    updateState: async () => {},
    ...extra,
  });

  it('runTask gives the outcome of a handler that returns at once without a promise, and a promise for one that awaits', async () => {
    const { runTask } = await import('../../../src/worker/execute.js');
    const sync = runTask(input(((a: number, b: number) => a + b) as never));
    expect(sync).toEqual({ kind: 'success', value: 5 });
    const thrown = runTask(
      input((() => {
        throw new RangeError('bad');
      }) as never),
    );
    expect(thrown).toMatchObject({ kind: 'failure', error: { name: 'RangeError', message: 'bad' } });
    const later = runTask(input((async (a: number) => a * 10) as never));
    expect(later).toBeInstanceOf(Promise);
    expect(await later).toEqual({ kind: 'success', value: 20 });
    const rejected = runTask(input((async () => Promise.reject(new TypeError('no'))) as never));
    expect(await rejected).toMatchObject({ kind: 'failure', error: { name: 'TypeError' } });
    // A time limit means a watched run: always a promise, whatever the handler does.
    const limited = runTask(input((() => 1) as never, { limits: { hardMs: 1000, softMs: null } }));
    expect(limited).toBeInstanceOf(Promise);
    expect(await limited).toEqual({ kind: 'success', value: 1 });
  });

  it('currentTask() and ctx work in a synchronous handler; ctx methods live on the context', async () => {
    const { runTask } = await import('../../../src/worker/execute.js');
    const { currentTask } = await import('../../../src/context.js');
    const seen: unknown[] = [];
    const task = {
      name: 't',
      options: { bind: true },
      handler: (ctx: { id: string; retry: (o: object) => Error; signal: AbortSignal }, n: number) => {
        seen.push(currentTask()?.id, ctx.id, n, ctx.signal.aborted);
        throw ctx.retry({ countdown: 5 });
      },
    };
    expect(runTask(input(task.handler as never, { task }))).toEqual({
      kind: 'retry',
      error: null,
      countdownMs: 5,
    });
    expect(seen).toEqual(['id-1', 'id-1', 2, false]);
    expect(currentTask()).toBeUndefined();
  });

  it('a burst of synchronous tasks all run, succeed, emit and ack once each; failures still store FAILURE', async () => {
    const { testApp, until } = await import('../../helpers/app.js');
    const app = testApp();
    const ran: number[] = [];
    const noop = app.task('hot.sync', (n: number) => void ran.push(n), { ignoreResult: true });
    const boom = app.task('hot.boom', (n: number) => {
      throw new Error(`boom ${n}`);
    });
    const worker = app.worker({ concurrency: 3 });
    const succeeded: string[] = [];
    worker.on('task-succeeded', (e) => succeeded.push(e.id));
    await worker.start();
    const sent = await Promise.all(Array.from({ length: 300 }, (_, i) => noop.delay(i)));
    const failed = await boom.delay(7);
    await until(() => succeeded.length === 300 && worker.stats.failed === 1, 5000, 'all tasks');
    expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(new Set(succeeded)).toEqual(new Set(sent.map((r) => r.id)));
    await expect(failed.get({ timeout: 2000 })).rejects.toThrow('boom 7');
    const transport = await app.transport();
    await until(async () => (await transport.depth('celery')) === 0, 2000, 'empty queue');
    expect(worker.active).toBe(0);
    await worker.stop();
    expect(worker.stats).toMatchObject({ received: 301, succeeded: 300, failed: 1, duplicates: 0 });
  });

  it('a reserve of thousands of synchronous tasks behind a busy slot runs without growing the stack', async () => {
    const { testApp, until } = await import('../../helpers/app.js');
    const app = testApp();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = app.task('hot.slow', () => gate, { ignoreResult: true });
    let ran = 0;
    const fast = app.task('hot.fast', () => void ran++, { ignoreResult: true });
    const worker = app.worker({ concurrency: 1, prefetch: 5000 });
    await worker.start();
    await slow.delay();
    await until(() => worker.active === 1, 2000, 'the slow task running');
    await fast.delayMany(Array.from({ length: 4000 }, () => [] as []));
    await until(() => worker.reserved === 4000, 5000, 'the reserve filled');
    release();
    await until(() => worker.stats.succeeded === 4001, 10_000, 'every task');
    expect(ran).toBe(4000);
    const transport = await app.transport();
    expect(await transport.depth('celery')).toBe(0);
    const t0 = Date.now();
    await worker.stop({ timeout: 5000 });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('listeners of task-started and task-succeeded that throw are logged; slots and acks are not lost', async () => {
    const { testApp, until } = await import('../../helpers/app.js');
    const app = testApp();
    const t = app.task('hot.listened', (n: number) => n, { ignoreResult: true });
    const worker = app.worker({ concurrency: 2 });
    worker.on('task-started', () => {
      throw new Error('listener bug (started)');
    });
    worker.on('task-succeeded', () => {
      throw new Error('listener bug (succeeded)');
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await worker.start();
      await t.delayMany(Array.from({ length: 20 }, (_, i) => [i] as [number]));
      await until(() => worker.stats.succeeded === 20, 5000, 'all tasks');
      expect(worker.active).toBe(0);
      const t0 = Date.now();
      await worker.stop({ timeout: 5000 });
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
