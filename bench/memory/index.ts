import { randomUUID } from 'node:crypto';

import type { BenchContext, Measurement, Suite } from '../harness.js';
import { atSteadyRate, latencySummary } from '../harness.js';
import { Celeriac } from '../package.js';

/** Tasks per throughput step (the 20,000). */
const TASKS = 20_000;
/** Publishes in flight at once in the publish step (as from many concurrent requests). */
const PUBLISH_WINDOW = 100;
const LATENCY_RATE = 500;
const LATENCY_TASKS = 3_000;

/**
 * The embedded memory broker: publish throughput, drain throughput at concurrency 1 and 50, and
 * send-to-start latency at a steady rate with an idle worker. A fresh broker for each step.
 */
export const suite: Suite = {
  name: 'memory',
  description: `memory:// broker, ${TASKS.toLocaleString('en-US')} no-op tasks per throughput step`,
  async run(ctx) {
    const results: Measurement[] = [];
    results.push(await publish(ctx));
    for (const concurrency of [1, 50]) results.push(await drain(ctx, concurrency));
    results.push(...(await latency(ctx)));
    return results;
  },
};

function noopApp() {
  const app = new Celeriac({ broker: `memory://bench-${randomUUID()}`, logger: 'silent' });
  const noop = app.task('bench.noop', (_i: number) => undefined, { ignoreResult: true });
  return { app, noop };
}

/** Sends `count` tasks with at most `window` in flight; returns elapsed ms. */
async function send(
  ctx: BenchContext,
  step: string,
  count: number,
  window: number,
  fn: (i: number) => Promise<unknown>,
): Promise<number> {
  const start = performance.now();
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < count) {
      await fn(next++);
      if (++done % 1000 === 0 && done < count) ctx.progress(step, done, count);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  ctx.progress(step, count, count);
  return performance.now() - start;
}

async function publish(ctx: BenchContext): Promise<Measurement> {
  const { app, noop } = noopApp();
  try {
    await app.transport();
    const ms = await send(ctx, 'publish', TASKS, PUBLISH_WINDOW, (i) => noop.delay(i));
    return {
      name: 'publish',
      unit: 'tasks/s',
      better: 'higher',
      value: (TASKS / ms) * 1000,
      details: { tasks: TASKS, inFlight: PUBLISH_WINDOW, ms },
    };
  } finally {
    await app.close();
  }
}

/** Fills the queue first (untimed), then times a worker emptying it. */
async function drain(ctx: BenchContext, concurrency: number): Promise<Measurement> {
  const { app, noop } = noopApp();
  try {
    await send(ctx, `fill queue (concurrency ${concurrency})`, TASKS, PUBLISH_WINDOW, (i) => noop.delay(i));
    const worker = app.worker({ concurrency });
    let done = 0;
    let finished: () => void = () => undefined;
    const all = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const step = `drain, concurrency ${concurrency}`;
    worker.on('task-succeeded', () => {
      if (++done % 1000 === 0) ctx.progress(step, done, TASKS);
      if (done === TASKS) finished();
    });
    const start = performance.now();
    await worker.start();
    await all;
    const ms = performance.now() - start;
    await worker.stop();
    return {
      name: step,
      unit: 'tasks/s',
      better: 'higher',
      value: (TASKS / ms) * 1000,
      details: { tasks: TASKS, concurrency, ms },
    };
  } finally {
    await app.close();
  }
}

/**
 * Send → start at a steady rate with an idle worker. Times are taken with performance.now() on both
 * sides (the send just before publishing, the start in the worker's synchronous 'task-started').
 */
async function latency(ctx: BenchContext): Promise<Measurement[]> {
  const { app, noop } = noopApp();
  try {
    const worker = app.worker({ concurrency: 50 });
    const sentAt = new Map<string, number>();
    const samples: number[] = [];
    worker.on('task-started', (e) => {
      const sent = sentAt.get(e.id);
      if (sent !== undefined) samples.push(performance.now() - sent);
    });
    await worker.start();
    const step = `latency at ${LATENCY_RATE}/s`;
    ctx.log(`${step}: ${LATENCY_TASKS} tasks over ${LATENCY_TASKS / LATENCY_RATE}s, worker concurrency 50`);
    await atSteadyRate(
      LATENCY_TASKS,
      LATENCY_RATE,
      (i) => {
        const taskId = randomUUID();
        sentAt.set(taskId, performance.now());
        return noop.applyAsync({ args: [i], taskId });
      },
      (done) => ctx.progress(step, done, LATENCY_TASKS),
    );
    const deadline = Date.now() + 10_000;
    while (samples.length < LATENCY_TASKS && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await worker.stop();
    const s = latencySummary(samples);
    const details = { rate: LATENCY_RATE, tasks: LATENCY_TASKS, samples: s.samples };
    return [
      { name: 'send → start p50', unit: 'ms', better: 'lower', value: s.p50, details },
      { name: 'send → start p99', unit: 'ms', better: 'lower', value: s.p99, details },
    ];
  } finally {
    await app.close();
  }
}
