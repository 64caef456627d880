/**
 * The README's quick start. An app module only defines and exports: it starts no work when imported,
 * because workers (and their thread/process pools) import it again.
 *
 *   export CELERIAC_BROKER_URL=redis://localhost:6379/0 CELERIAC_RESULTS_URL=redis://localhost:6379/0
 *   npx tsx src/cli/main.ts worker --app examples/quickstart/app.ts     # terminal 1
 *   npx tsx examples/quickstart/send.ts                                 # terminal 2
 *
 * In your own project, import from 'celeriac' instead of the source tree.
 */
import { z } from 'zod';
import { Celeriac } from '../../src/index.js';

export const app = new Celeriac({
  broker: process.env.CELERIAC_BROKER_URL ?? 'redis://localhost:6379/0',
  results: process.env.CELERIAC_RESULTS_URL ?? 'redis://localhost:6379/0',
});

// The name is the wire name: Python Celery can call it as 'tasks.add'.
export const add = app.task('tasks.add', async (a: number, b: number) => a + b, {
  retry: { max: 5, backoff: 'exponential', jitter: true },
  timeLimit: { soft: '10s' },
});

// An event: published once, delivered to every subscribed task, each as its own message.
export const userRegistered = app.event('user.registered', z.object({ id: z.string(), email: z.email() }));
export const sendWelcomeEmail = app.task('emails.welcome', async (user: { id: string; email: string }) => {
  return `welcome mail sent to ${user.email}`;
});
userRegistered.subscribe(sendWelcomeEmail);
