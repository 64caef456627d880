/**
 * The app module that the pool tests load in threads and child processes. `defineTasks` registers
 * the same tasks on the test's own app (memory broker) in the main process; `app` is what a thread
 * or child finds when it imports this file. Tasks are defined once per pool kind ('threads.*',
 * 'process.*'), so one suite runs against both.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import type { TaskContext } from '../../../../src/index.js';
import { Celeriac, currentTask } from '../../../../src/index.js';

/** An error class that exists only where the app is loaded: autoretryFor must match it in the thread. */
export class FlakyError extends Error {
  override name = 'FlakyError';
}

/** Calls that reached the main process's `pools.note` task (on the event loop). */
export const notes: unknown[][] = [];

const leak: number[][] = [];

/** Busy-waits (blocks the loop of wherever it runs) for `ms`. */
function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // burn CPU
  }
}

export function defineTasks(app: Celeriac): void {
  const note = app.task(
    'pools.note',
    (...args: unknown[]) => {
      notes.push(args);
      return args.length;
    },
    { pool: 'async' },
  );
  app.task('pools.where', () => ({ threadId, pid: process.pid }));
  app.task('pools.io', async (ms: number) => {
    await sleep(ms);
    return Date.now();
  });

  for (const pool of ['threads', 'process'] as const) {
    const p = `${pool}.`;
    app.task(p + 'where', () => ({ threadId, pid: process.pid, id: currentTask()?.id }), { pool });
    app.task(
      p + 'cpu',
      (ms: number) => {
        spin(ms);
        return { threadId, pid: process.pid, at: Date.now() };
      },
      { pool },
    );
    app.task(
      p + 'forever',
      () => {
        while (true) {
          // a loop no signal can reach: only a kill ends it
        }
      },
      { pool },
    );
    app.task(
      p + 'forever-limited',
      () => {
        while (true) {
          // killed at the hard limit
        }
      },
      { pool, timeLimit: { hard: 300 } },
    );
    app.task(
      p + 'exit',
      () => {
        process.exit(3); // ends the thread (threads) or the child (process) under the task
      },
      { pool },
    );
    app.task(
      p + 'soft',
      async (ctx: TaskContext) => {
        try {
          await sleep(10_000, undefined, { signal: ctx.signal });
          return 'not stopped';
        } catch {
          // Cleaning up: this reaches the main worker's broker and sink before the task ends.
          await ctx.updateState('CLEANING', { reason: (ctx.signal.reason as Error).name });
          await note.delay('cleaned', ctx.id);
          throw ctx.signal.reason;
        }
      },
      { pool, bind: true, timeLimit: { soft: 200, hard: 5000 } },
    );
    app.task(
      p + 'nested',
      async (ctx: TaskContext, text: string) => {
        const sent = await note.delay(text, ctx.id, threadId, process.pid);
        return sent.id;
      },
      { pool, bind: true },
    );
    app.task(
      p + 'progress',
      async (ctx: TaskContext) => {
        await ctx.updateState('PROGRESS', { step: 1, threadId, pid: process.pid });
        await sleep(300);
        return 'done';
      },
      { pool, bind: true },
    );
    app.task(
      p + 'retry',
      (ctx: TaskContext) => {
        if (ctx.retries < 2) throw ctx.retry({ countdown: 10 });
        return ctx.retries;
      },
      { pool, bind: true },
    );
    app.task(
      p + 'autoretry',
      (ctx: TaskContext) => {
        if (ctx.retries < 1) throw new FlakyError('try again');
        return ctx.retries;
      },
      { pool, bind: true, autoretryFor: [FlakyError], retry: { max: 3, base: 10, jitter: false } },
    );
    app.task(
      p + 'fail',
      () => {
        throw new TypeError('bad input', { cause: new FlakyError('root cause') });
      },
      { pool },
    );
    app.task(
      p + 'leak',
      (mb: number) => {
        leak.push(new Array(mb * 131_072).fill(1));
        return { threadId, pid: process.pid };
      },
      { pool },
    );
    app.task(
      p + 'wait-for',
      async (id: string) => {
        // AsyncResult.get() inside a pool task waits through the main worker's sink.
        return app.asyncResult(id).get({ timeout: 5000 });
      },
      { pool },
    );
  }
}

export const app = new Celeriac({
  broker: 'memory://pool-app',
  results: 'memory://pool-app',
  logger: 'silent',
});
defineTasks(app);
