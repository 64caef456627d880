// One measured worker process: prints one JSON line with its RSS idle and after TASKS no-op tasks.
// Run by index.ts; `node --expose-gc` so a measurement follows a full collection.
import { fileURLToPath } from 'node:url';

const tasks = Number(process.env.CELERIAC_BENCH_TASKS ?? 100_000);
const pool = process.env.CELERIAC_BENCH_POOL ?? 'async';
const appFile = fileURLToPath(new URL('./app.mjs', import.meta.url));
const { app, noop } = await import('./app.mjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mb = () => process.memoryUsage().rss / 2 ** 20;
async function settle() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await sleep(200);
  }
  return mb();
}

const worker = app.worker({ concurrency: pool === 'async' ? 50 : 4, pool, appModule: appFile });
let done = 0;
worker.on('task-succeeded', () => done++);
await worker.start();
await sleep(1000);
const idle = await settle();
const idleHeap = process.memoryUsage().heapUsed / 2 ** 20;
const start = performance.now();
// Publish in windows so the in-process queue stays short: what is measured is the worker.
const WINDOW = 1000;
for (let sent = 0; sent < tasks; sent += WINDOW) {
  const n = Math.min(WINDOW, tasks - sent);
  await Promise.all(Array.from({ length: n }, (_, i) => noop.delay(sent + i)));
  while (done < sent + n - WINDOW / 2) await sleep(1);
}
while (done < tasks) await sleep(5);
const ms = performance.now() - start;
const after = await settle();
const afterHeap = process.memoryUsage().heapUsed / 2 ** 20;
await worker.stop();
await app.close();
process.stdout.write(
  `${JSON.stringify({ pool, idle, after, idleHeap, afterHeap, tasks, ms, peak: process.resourceUsage().maxRSS / 1024 })}\n`,
);
process.exit(0);
