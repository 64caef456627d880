/**
 * Celeriac and Python Celery on one Redis: this app implements the Python peer's task names
 * (../shared/celery-wire/peer.py), so either side can call the other. It only defines and exports;
 * the CLI starts the work.
 *
 * A Celeriac worker serving Python callers (queue `ts`, so a Python worker can keep `celery`):
 *
 *   export CELERIAC_BROKER_URL=redis://localhost:6379/3 CELERIAC_RESULTS_URL=redis://localhost:6379/3
 *   npx tsx src/cli/main.ts worker --app examples/interop/app.ts --queues ts
 *   /usr/bin/python3 ../shared/celery-wire/peer.py call --broker $CELERIAC_BROKER_URL \
 *     --backend $CELERIAC_RESULTS_URL --queue ts tasks.echo '["héllo ✓"]' --kwargs '{"k": "ünï"}'
 *   /usr/bin/python3 ../shared/celery-wire/peer.py call --broker $CELERIAC_BROKER_URL \
 *     --backend $CELERIAC_RESULTS_URL --queue ts tasks.fail '["boom"]'      # FAILURE, exc_type ValueError
 *
 * A Python worker serving Celeriac callers:
 *
 *   /usr/bin/python3 ../shared/celery-wire/peer.py worker --broker $CELERIAC_BROKER_URL --backend $CELERIAC_RESULTS_URL
 *   npx tsx src/cli/main.ts call tasks.add --args '[2,3]' --wait
 *
 * A Python chain may route any step to the Celeriac worker; it publishes the next step as Celery does
 * (test/integration/redis/interop-canvas.test.ts has the Python side).
 *
 * In your own project, import from 'celeriac' instead of the source tree.
 */
import type { TaskContext } from '../../src/index.js';
import { Celeriac } from '../../src/index.js';

export const app = new Celeriac({});

export const add = app.task('tasks.add', (x: number, y: number) => x + y);
export const mul = app.task('tasks.mul', (x: number, y: number) => x * y);
export const xsum = app.task('tasks.xsum', (numbers: number[]) => numbers.reduce((s, n) => s + n, 0));

/** Returns what it was called with; `bind: true` gives the keyword args (as Python sent them) on the context. */
export const echo = app.task(
  'tasks.echo',
  (ctx: TaskContext, ...args: unknown[]) => ({ args, kwargs: ctx.kwargs }),
  {
    bind: true,
  },
);

/** An error named 'ValueError' is stored with exc_module 'builtins': Python rebuilds a real ValueError. */
class ValueError extends Error {
  override name = 'ValueError';
}
export const fail = app.task(
  'tasks.fail',
  (message: string = 'boom') => {
    throw new ValueError(message);
  },
  { params: ['message'] },
);

/** Retries itself (same id, retries + 1) until `succeed_after`, like the peer's tasks.retry. */
export const retrying = app.task(
  'tasks.retry',
  (ctx: TaskContext) => {
    const succeedAfter = Number(ctx.kwargs.succeed_after ?? 2);
    if (ctx.retries < succeedAfter)
      throw ctx.retry({ countdown: Number(ctx.kwargs.countdown ?? 0.5) * 1000 });
    return { retries: ctx.retries };
  },
  { bind: true, retry: { max: 5 } },
);
