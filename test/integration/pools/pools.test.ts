/**
 * The threads and process pools through the public API, on the memory broker. The broker lives in
 * the main process only, so every publish, result and state a task makes in a thread or child
 * reaches it through the main worker (the proxies), or not at all.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Celeriac, ResultMeta, TaskError, WorkerOptions } from '../../../src/index.js';
import { ConfigError } from '../../../src/index.js';
import { testApp, until } from '../../helpers/app.js';
import { defineTasks, notes } from './apps/pool-app.js';

const appModule = new URL('./apps/pool-app.ts', import.meta.url).href;

interface Where {
  threadId: number;
  pid: number;
}

function setup(pool: 'threads' | 'process', options: WorkerOptions = {}) {
  const app = testApp();
  defineTasks(app);
  const worker = app.worker({ appModule, poolSizes: { [pool]: 1 }, ...options });
  return { app, worker };
}

/** A slot's identity: the thread id for threads, the pid for children. */
const slotOf = (pool: 'threads' | 'process', w: Where) => (pool === 'threads' ? w.threadId : w.pid);

async function call<T>(app: Celeriac, name: string, args: unknown[] = [], timeout = 15_000): Promise<T> {
  return (await app.sendTask<T>(name, args)).get({ timeout });
}

/** Sends a task with a known id after subscribing to its states, so none is missed. */
async function watched(app: Celeriac, name: string, args: unknown[] = []) {
  const sink = await app.resultSink();
  if (!sink) throw new Error('no sink');
  const id = randomUUID();
  const states: ResultMeta[] = [];
  const stop = await sink.watch(id, (m) => states.push(m));
  const result = await app.sendTask(name, args, {}, { taskId: id });
  return { id, result, states, stop };
}

describe.each(['threads', 'process'] as const)('%s pool', (pool) => {
  it('runs a task in another thread or process, with its context', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const r = await app.sendTask<Where & { id: string }>(`${pool}.where`);
    const where = await r.get({ timeout: 15_000 });
    expect(where.id).toBe(r.id);
    if (pool === 'threads') {
      expect(where.pid).toBe(process.pid);
      expect(where.threadId).toBeGreaterThan(0);
    } else expect(where.pid).not.toBe(process.pid);
  });

  it('stores the same FAILURE meta as the async pool: type, module, messages, cause chain', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const r = await app.sendTask(`${pool}.fail`);
    const err = (await r.get({ timeout: 15_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('TypeError');
    const meta = await (await app.resultSink())?.get(r.id);
    expect(meta?.status).toBe('FAILURE');
    expect(meta?.result).toEqual({
      exc_type: 'TypeError',
      exc_message: ['bad input'],
      exc_module: 'builtins',
    });
    expect(meta?.traceback).toMatch(/celeriac\.errors\.FlakyError: root cause/);
    expect(meta?.traceback).toMatch(/direct cause[\s\S]*TypeError: bad input/);
    expect(meta?.traceback).toMatch(/pool-app\.ts", line \d+/);
  });

  it('retries through ctx.retry() and autoretryFor (the error class is matched inside the slot)', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    expect(await call(app, `${pool}.retry`)).toBe(2);
    expect(await call(app, `${pool}.autoretry`)).toBe(1);
    expect(worker.stats.retried).toBe(3);
  });

  it('soft limit: raised where the task awaits; it cleans up (state, publish) and fails SoftTimeLimitExceeded', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const { id, result, states } = await watched(app, `${pool}.soft`);
    const err = (await result.get({ timeout: 15_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('SoftTimeLimitExceeded');
    expect(states.map((s) => s.status)).toEqual(['CLEANING', 'FAILURE']);
    expect(states[0]?.result).toEqual({ reason: 'SoftTimeLimitExceeded' });
    await until(() => notes.some((n) => n[0] === 'cleaned' && n[1] === id), 5000, 'the cleanup publish');
  });

  it('hard limit kills a busy loop: FAILURE TimeLimitExceeded, the slot is replaced, the next task runs', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const before = await call<Where>(app, `${pool}.where`);
    const started = Date.now();
    const r = await app.sendTask(`${pool}.forever-limited`);
    const err = (await r.get({ timeout: 15_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('TimeLimitExceeded');
    expect(Date.now() - started).toBeLessThan(5000);
    const after = await call<Where>(app, `${pool}.where`);
    expect(slotOf(pool, after)).not.toBe(slotOf(pool, before));
    expect(worker.health().status).toBe('healthy');
  });

  it('a task that ends its thread or child fails with WorkerLostError; the slot is replaced', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const before = await call<Where>(app, `${pool}.where`);
    const r = await app.sendTask(`${pool}.exit`);
    const err = (await r.get({ timeout: 15_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('WorkerLostError');
    expect(err.message).toMatch(/exited prematurely.*code 3/);
    const after = await call<Where>(app, `${pool}.where`);
    expect(slotOf(pool, after)).not.toBe(slotOf(pool, before));
  });

  it('revoke with terminate stops a running task: REVOKED, and the worker keeps serving', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const r = await app.sendTask(`${pool}.forever`);
    await until(() => worker.activeTasks().some((t) => t.id === r.id), 15_000, 'the task to start');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(worker.revoke([r.id], { terminate: true })).toEqual([r.id]);
    const err = (await r.get({ timeout: 5000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('TaskRevokedError');
    expect(await r.state()).toBe('REVOKED');
    expect((await call<Where>(app, `${pool}.where`)).pid).toBeGreaterThan(0);
  });

  it('maxTasksPerChild: a slot is replaced after that many tasks', async () => {
    const { app, worker } = setup(pool, { maxTasksPerChild: 2 });
    await worker.start();
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) seen.push(slotOf(pool, await call<Where>(app, `${pool}.where`)));
    expect(seen[0]).toBe(seen[1]);
    expect(seen[2]).toBe(seen[3]);
    expect(new Set([seen[0], seen[2], seen[4]]).size).toBe(3);
  });

  it('maxMemoryPerChild: a slot above the mark after a task is replaced, one below it is kept', async () => {
    const low = setup(pool, { maxMemoryPerChild: 1 });
    await low.worker.start();
    const a = [];
    for (let i = 0; i < 3; i++) a.push(slotOf(pool, await call<Where>(low.app, `${pool}.leak`, [1])));
    expect(new Set(a).size).toBe(3);
    const high = setup(pool, { maxMemoryPerChild: 64 * 1024 ** 3 });
    await high.worker.start();
    const b = [];
    for (let i = 0; i < 3; i++) b.push(slotOf(pool, await call<Where>(high.app, `${pool}.leak`, [1])));
    expect(new Set(b).size).toBe(1);
  });

  it('a task publishes through the main worker: nested delay() reaches the memory broker of the main process', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const r = await app.sendTask<string>(`${pool}.nested`, ['hello']);
    const childId = await r.get({ timeout: 15_000 });
    expect(await app.asyncResult(childId).get({ timeout: 5000 })).toBe(4);
    const note = notes.find((n) => n[0] === 'hello' && n[1] === r.id) as unknown[];
    expect(note).toBeDefined();
    if (pool === 'threads') expect(note[2]).not.toBe(0);
    else expect(note[3]).not.toBe(process.pid);
  });

  it('ctx.updateState and AsyncResult.get() inside a task go through the main worker', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const { result, states } = await watched(app, `${pool}.progress`);
    expect(await result.get({ timeout: 15_000 })).toBe('done');
    expect(states.map((s) => s.status)).toEqual(['PROGRESS', 'SUCCESS']);
    expect(states[0]?.result).toMatchObject({ step: 1 });
    const io = await app.sendTask('pools.io', [100]);
    const waited = await call<number>(app, `${pool}.wait-for`, [io.id]);
    expect(waited).toBe(await io.get({ timeout: 1000 }));
  });

  it('stop() at the deadline kills the running task and requeues it', async () => {
    const { app, worker } = setup(pool);
    await worker.start();
    const r = await app.sendTask(`${pool}.forever`);
    await until(() => worker.activeTasks().some((t) => t.id === r.id), 15_000, 'the task to start');
    const t0 = Date.now();
    await worker.stop({ timeout: 300 });
    expect(Date.now() - t0).toBeLessThan(5000);
    const transport = await app.transport();
    expect(await transport.depth('celery')).toBe(1);
    expect(await r.state()).toBe('PENDING');
  });
});

describe('process pool', () => {
  it('children ignore SIGINT/SIGTERM meant for the worker (Ctrl-C, systemd): the worker decides when they stop', async () => {
    const { app, worker } = setup('process');
    await worker.start();
    const { pid } = await call<Where>(app, 'process.where');
    process.kill(pid, 'SIGINT');
    process.kill(pid, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await call<Where>(app, 'process.where')).pid).toBe(pid);
    await worker.stop();
    await until(
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      5000,
      'the child to exit with the worker',
    );
  });
});

describe('pools in one worker', () => {
  it('a CPU task in a thread does not hold back I/O tasks on the event loop (per-pool budgets)', async () => {
    const { app, worker } = setup('threads');
    await worker.start();
    const cpu = [await app.sendTask('threads.cpu', [800]), await app.sendTask('threads.cpu', [800])];
    const io = await Promise.all(Array.from({ length: 5 }, () => app.sendTask('pools.io', [20])));
    const ioDone = await Promise.all(io.map((r) => r.get({ timeout: 15_000 }) as Promise<number>));
    const cpuDone = await Promise.all(cpu.map((r) => r.get({ timeout: 15_000 }) as Promise<{ at: number }>));
    // Every I/O task ended before the first CPU task did, though they were sent after both.
    expect(Math.max(...ioDone)).toBeLessThan(Math.min(...cpuDone.map((c) => c.at)));
  });

  it("a worker whose default pool is 'threads' runs tasks without a pool option in threads", async () => {
    const app = testApp();
    defineTasks(app);
    const worker = app.worker({ pool: 'threads', concurrency: 2, appModule });
    await worker.start();
    const where = await call<Where>(app, 'pools.where');
    expect(where.threadId).toBeGreaterThan(0);
    // 'pools.note' asks for the async pool: it still runs on the loop.
    await call(app, 'pools.note', ['default-pool-check']);
    expect(notes.some((n) => n[0] === 'default-pool-check')).toBe(true);
  });

  it('start() fails clearly when the app module is missing or exports no app', async () => {
    const app = testApp();
    defineTasks(app);
    const none = app.worker({ pool: 'threads' });
    await expect(none.start()).rejects.toThrow(/appModule/);
    const bad = app.worker({ pool: 'process', appModule: new URL('./apps/no-app.ts', import.meta.url).href });
    const err = (await bad.start().catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/exports no Celeriac app/);
  });
});
