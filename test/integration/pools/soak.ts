/**
 * Soak script for the threads and process pools (not run in CI): runs N tasks through a worker on
 * the memory broker and prints the main process's RSS after warm-up and at the end, with the slots'
 * own memory as the tasks report it.
 *
 *   npx tsx test/integration/pools/soak.ts threads 100000
 *   npx tsx test/integration/pools/soak.ts process 100000
 *   npx tsx test/integration/pools/soak.ts async 100000      (the baseline: the same task on the loop)
 *
 * Run node with --expose-gc (NODE_OPTIONS=--expose-gc) so both readings follow a full GC.
 */
import { Celeriac } from '../../../src/index.js';
import { defineTasks } from './apps/pool-app.js';

const pool = (process.argv[2] ?? 'threads') as 'async' | 'threads' | 'process';
const total = Number(process.argv[3] ?? 20_000);
const size = Number(process.argv[4] ?? 4);
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

const app = new Celeriac({ broker: 'memory://soak', results: 'memory://soak', logger: 'silent' });
defineTasks(app);
const appModule = new URL('./apps/pool-app.ts', import.meta.url).href;
const worker = app.worker({ appModule, poolSizes: { [pool]: size }, idempotencyWindow: 0 });
await worker.start();
const sink = await app.resultSink();

async function batch(n: number): Promise<void> {
  const window = size * 4;
  let sent = 0;
  const inflight = new Set<Promise<void>>();
  while (sent < n) {
    while (inflight.size < window && sent < n) {
      sent++;
      const p = app
        .sendTask(pool === 'async' ? 'pools.where' : `${pool}.where`)
        .then(async (r) => {
          await r.get({ timeout: 30_000 });
          await sink?.forget(r.id);
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

const started = Date.now();
const warm = Math.min(5000, Math.floor(total / 10));
await batch(warm);
global.gc?.();
const afterWarm = process.memoryUsage().rss;
console.log(`${pool}: idle+warm-up (${warm} tasks) RSS ${mb(afterWarm)}`);
const step = Math.max(10_000, Math.floor(total / 10));
for (let done = warm; done < total; ) {
  const n = Math.min(step, total - done);
  await batch(n);
  done += n;
  global.gc?.();
  const rss = process.memoryUsage().rss;
  console.log(`  ${done} tasks: RSS ${mb(rss)} (${(((rss - afterWarm) / afterWarm) * 100).toFixed(1)}%)`);
}
const end = process.memoryUsage().rss;
const seconds = (Date.now() - started) / 1000;
console.log(
  `${pool}: ${total} tasks in ${seconds.toFixed(1)}s (${Math.round(total / seconds)}/s), RSS ${mb(end)} (${(((end - afterWarm) / afterWarm) * 100).toFixed(1)}% after warm-up)`,
);
await app.close();
