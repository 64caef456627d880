/**
 * A small Celeriac app: two tasks and an event with a subscriber. It only defines and exports; the
 * CLI starts the work:
 *
 *   CELERIAC_BROKER_URL=redis://localhost:6379/0 CELERIAC_RESULTS_URL=redis://localhost:6379/0 \
 *     npx tsx src/cli/main.ts worker --app examples/basic/app.ts
 *   npx tsx src/cli/main.ts call tasks.add --args '[2,3]' --wait --broker redis://localhost:6379/0 --results redis://localhost:6379/0
 *
 * In your own project, import from 'celeriac' instead of the source tree.
 */
import { z } from 'zod';
import { Celeriac } from '../../src/index.js';

// Broker and results come from CELERIAC_BROKER_URL / CELERIAC_RESULTS_URL when set (memory:// otherwise,
// which only works inside one process: see `celeriac demo`).
export const app = new Celeriac({});

/** The name is the wire name: Python Celery can call it as 'tasks.add'. */
export const add = app.task('tasks.add', (a: number, b: number) => a + b);

/** Fails on purpose for negative input: the failure is stored with exc_type 'RangeError'. */
export const sqrt = app.task('tasks.sqrt', (x: number) => {
  if (x < 0) throw new RangeError(`cannot take the square root of ${x}`);
  return Math.sqrt(x);
});

/** `params` maps keyword args (as Python callers send them) onto positions. */
export const greet = app.task('tasks.greet', (name: string, greeting = 'Hello') => `${greeting}, ${name}!`, {
  params: ['name', 'greeting'],
});

/** Takes a while: shows graceful shutdown (`celeriac worker` lets it finish on the first SIGTERM). */
export const sleep = app.task('tasks.sleep', async (ms: number) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
});

export const userRegistered = app.event('user.registered', z.object({ id: z.string(), email: z.email() }));

/** A subscriber gets the event's payload object as its one argument. */
export const sendWelcome = app.task(
  'emails.welcome',
  (user: { id: string; email: string }) => `welcome mail sent to ${user.email}`,
  {
    retry: { max: 3, backoff: 'exponential', base: '1s' },
  },
);
userRegistered.subscribe(sendWelcome);
