import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { AsyncResult, TaskContext } from '../../../src/index.js';
import {
  ConfigError,
  currentTask,
  NoResultSinkError,
  PayloadError,
  TaskError,
  TimeoutError,
} from '../../../src/index.js';
import { testApp, until } from '../../helpers/app.js';

describe('tasks end to end on the memory broker', () => {
  it('delay() runs the handler on a worker and get() returns its value, typed from the handler', async () => {
    const app = testApp();
    const add = app.task('tasks.add', async (a: number, b: number) => a + b);
    await app.worker({ concurrency: 2 }).start();
    const result = await add.delay(2, 3);
    expectTypeOf(result).toEqualTypeOf<AsyncResult<number>>();
    expect(await result.get({ timeout: '2s' })).toBe(5);
    expect(await result.state()).toBe('SUCCESS');
    expect(await result.ready()).toBe(true);
  });

  it('refuses a second task with the same name and a bad option, naming the field', () => {
    const app = testApp();
    app.task('x', () => 1);
    expect(() => app.task('x', () => 2)).toThrow(/task x.*already registered/);
    expect(() => app.task('y', () => 1, { priority: 12 })).toThrow(ConfigError);
    expect(() => app.task('y', () => 1, { priority: 12 })).toThrow(/priority.*0 to 9/);
  });

  it('a failed task throws a TaskError carrying Celery fields', async () => {
    const app = testApp();
    const fail = app.task('tasks.fail', (message: string) => {
      throw new TypeError(message);
    });
    await app.worker().start();
    const r = await fail.delay('boom');
    const err = await r.get({ timeout: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('TypeError');
    expect((err as TaskError).excMessage).toEqual(['boom']);
    expect((err as TaskError).traceback).toContain('boom');
    expect(await r.state()).toBe('FAILURE');
  });

  it('get() times out with a TimeoutError, and fails at once without a result sink', async () => {
    const app = testApp();
    const slow = app.task('slow', () => 1);
    const r = await slow.delay(); // no worker
    await expect(r.get({ timeout: 50 })).rejects.toBeInstanceOf(TimeoutError);
    const bare = testApp({ results: undefined });
    const t = bare.task('t', () => 1);
    const r2 = await t.delay();
    await expect(r2.get()).rejects.toBeInstanceOf(NoResultSinkError);
  });

  it('sendTask() reaches a task by name with args and kwargs; params map kwargs onto positions', async () => {
    const app = testApp();
    app.task('tasks.sub', (a: number, b: number) => a - b, { params: ['a', 'b'] });
    await app.worker().start();
    expect(await (await app.sendTask('tasks.sub', [10], { b: 4 })).get({ timeout: 2000 })).toBe(6);
    expect(await (await app.sendTask('tasks.sub', [], { b: 1, a: 3 })).get({ timeout: 2000 })).toBe(2);
  });

  it('ignoreResult (per task and per call) stores nothing', async () => {
    const app = testApp();
    let runs = 0;
    const quiet = app.task('quiet', () => ++runs, { ignoreResult: true });
    const loud = app.task('loud', () => ++runs);
    await app.worker().start();
    const a = await quiet.delay();
    const b = await loud.applyAsync({ ignoreResult: true });
    const c = await loud.delay();
    await c.get({ timeout: 2000 });
    await until(() => runs === 3);
    expect(await a.info()).toBeNull();
    expect(await b.info()).toBeNull();
    expect(await c.state()).toBe('SUCCESS');
  });

  it('an args schema refuses a bad call at delay()', async () => {
    const app = testApp();
    const add = app.task('add', (a: number, b: number) => a + b, {
      argsSchema: z.tuple([z.number(), z.number()]),
    });
    await expect(add.delay('x' as unknown as number, 1)).rejects.toBeInstanceOf(PayloadError);
    await expect(add.delay('x' as unknown as number, 1)).rejects.toThrow(/task add args: 0: /);
  });

  it('applyMany / delayMany send a batch: one result per call, in order, each run once', async () => {
    const app = testApp();
    const seen: string[] = [];
    const add = app.task('add', (a: number, b: number) => {
      seen.push(`${a}+${b}`);
      return a + b;
    });
    await app.worker({ concurrency: 4 }).start();
    const results = await add.delayMany(Array.from({ length: 250 }, (_, i) => [i, 1] as [number, number]));
    expect(results).toHaveLength(250);
    expect(new Set(results.map((r) => r.id)).size).toBe(250);
    const values = await Promise.all(results.map((r) => r.get({ timeout: 3000 })));
    expect(values).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(seen).toHaveLength(250);
    const [withId, urgent] = await add.applyMany([
      { args: [1, 1], taskId: 'given-id' },
      { args: [2, 2], priority: 9 },
    ]);
    expect(withId?.id).toBe('given-id');
    expect(await urgent?.get({ timeout: 2000 })).toBe(4);
    expect(await add.applyMany([])).toEqual([]);
  });

  it('applyMany refuses the whole batch when one call is bad, and sends nothing', async () => {
    const app = testApp();
    const add = app.task('add', (a: number, b: number) => a + b, {
      argsSchema: z.tuple([z.number(), z.number()]),
    });
    const loose = app.task('loose', (_x: unknown) => 1);
    await expect(
      add.delayMany([
        [1, 2],
        ['x' as unknown as number, 1],
      ]),
    ).rejects.toThrow(/task add args: 0: /);
    await expect(loose.delayMany([[1], [10n]])).rejects.toBeInstanceOf(PayloadError);
    const transport = await app.transport();
    expect(await transport.depth('celery')).toBe(0);
  });

  it('refuses what JSON cannot carry at delay(), naming the path', async () => {
    const app = testApp();
    const t = app.task('t', (_x: unknown) => 1);
    await expect(t.delay(10n)).rejects.toBeInstanceOf(PayloadError);
    await expect(t.delay({ f: () => 1 })).rejects.toThrow(/f/);
  });

  it('asyncResult(id) reads a result sent from elsewhere', async () => {
    const app = testApp();
    const t = app.task('t', () => 'ok');
    await app.worker().start();
    const r = await t.applyAsync({ taskId: 'my-id-1' });
    expect(r.id).toBe('my-id-1');
    expect(await app.asyncResult<string>('my-id-1').get({ timeout: 2000 })).toBe('ok');
    await r.forget();
    expect(await app.asyncResult('my-id-1').state()).toBe('PENDING');
  });

  it('apply() runs eagerly in-process, retries included', async () => {
    const app = testApp();
    let calls = 0;
    const flaky = app.task(
      'flaky',
      (ctx: TaskContext, x: number) => {
        calls++;
        if (ctx.retries < 2) throw ctx.retry();
        return x * 2;
      },
      { bind: true, retry: { max: 3 } },
    );
    const r = await flaky.apply(21);
    expect(r.get()).toBe(42);
    expect(r.retries).toBe(2);
    expect(calls).toBe(3);
    const bad = app.task('bad', () => {
      throw new Error('nope');
    });
    const failed = await bad.apply();
    expect(failed.state).toBe('FAILURE');
    expect(() => failed.get()).toThrow(TaskError);
  });

  it('bind passes the context; currentTask() finds it anywhere in the call tree; updateState stores progress', async () => {
    const app = testApp();
    const seen: Array<string | undefined> = [];
    const deep = async () => {
      await new Promise((r) => setTimeout(r, 1));
      return currentTask()?.id;
    };
    const job = app.task(
      'job',
      async (ctx: TaskContext, n: number) => {
        seen.push(ctx.name, await deep());
        await ctx.updateState('PROGRESS', { done: n });
        await new Promise((r) => setTimeout(r, 30));
        return ctx.id;
      },
      { bind: true },
    );
    await app.worker().start();
    const r = await job.delay(7);
    const states: string[] = [];
    await r.watch((m) => states.push(m.status));
    expect(await r.get({ timeout: 2000 })).toBe(r.id);
    expect(seen).toEqual(['job', r.id]);
    expect(states).toContain('PROGRESS');
    expect(currentTask()).toBeUndefined();
  });

  it('trackStarted stores STARTED while the task runs', async () => {
    const app = testApp({ trackStarted: true });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const t = app.task('t', () => gate);
    await app.worker().start();
    const r = await t.delay();
    await until(async () => (await r.state()) === 'STARTED');
    release();
    await r.get({ timeout: 2000 });
    expect(await r.state()).toBe('SUCCESS');
  });
});
