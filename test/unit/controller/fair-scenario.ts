import { randomUUID } from 'node:crypto';
import { Celeriac } from '../../../src/index.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface FairOutcome {
  /** Short tasks run by worker A (which holds the long task) and by worker B. */
  shortsOnA: number;
  shortsOnB: number;
  /** Most tasks `inspect reserved` showed on A at once while the shorts were served. */
  maxReservedOnA: number;
  /** Most messages A held at once (running + reserved). */
  maxHeldOnA: number;
}

/**
 * The fair-prefetch scenario: worker A (concurrency 1, prefetch `prefetchA`) starts a long
 * task; then worker B (concurrency 1, prefetch 0) starts and `shorts` short tasks are published one
 * after another. Two apps, so the workers have their own connections, as two processes would.
 */
export async function fairScenario(
  broker: string,
  options: { prefetchA: number; shorts?: number; longMs?: number; longAcksLate?: boolean },
): Promise<FairOutcome> {
  const queue = `fair-${randomUUID().slice(0, 8)}`;
  const shorts = options.shorts ?? 10;
  const define = (app: Celeriac) => ({
    long: app.task('fair.long', (ms: number) => sleep(ms), {
      queue,
      ignoreResult: true,
      acksLate: options.longAcksLate ?? true,
    }),
    short: app.task('fair.short', (_i: number) => sleep(20), { queue, ignoreResult: true }),
  });
  const appA = new Celeriac({ broker, logger: 'silent' });
  const appB = new Celeriac({ broker, logger: 'silent' });
  const { long, short } = define(appA);
  define(appB);
  const a = appA.worker({ queues: [queue], concurrency: 1, prefetch: options.prefetchA, name: 'A' });
  const b = appB.worker({ queues: [queue], concurrency: 1, prefetch: 0, name: 'B' });
  const shortIds = new Set<string>();
  const ranOn: Record<'A' | 'B', string[]> = { A: [], B: [] };
  a.on('task-started', (e) => ranOn.A.push(e.id));
  b.on('task-started', (e) => ranOn.B.push(e.id));
  let maxReservedOnA = 0;
  let maxHeldOnA = 0;
  const sampler = setInterval(() => {
    maxReservedOnA = Math.max(maxReservedOnA, a.reservedTasks().length);
    maxHeldOnA = Math.max(maxHeldOnA, a.active + a.reserved);
  }, 2);
  try {
    await a.start();
    await long.delay(options.longMs ?? 3000);
    const deadline = Date.now() + 5000;
    while (a.active === 0) {
      if (Date.now() > deadline) throw new Error('worker A did not start the long task');
      await sleep(5);
    }
    await b.start();
    for (let i = 0; i < shorts; i++) {
      shortIds.add((await short.delay(i)).id);
      await sleep(5);
    }
    const done = () => [...ranOn.A, ...ranOn.B].filter((id) => shortIds.has(id)).length;
    const end = Date.now() + 15_000;
    while (done() < shorts && Date.now() < end) await sleep(10);
    return {
      shortsOnA: ranOn.A.filter((id) => shortIds.has(id)).length,
      shortsOnB: ranOn.B.filter((id) => shortIds.has(id)).length,
      maxReservedOnA,
      maxHeldOnA,
    };
  } finally {
    clearInterval(sampler);
    await Promise.all([a.stop({ timeout: 0 }), b.stop({ timeout: 0 })]);
    await Promise.all([appA.close(), appB.close()]);
  }
}
