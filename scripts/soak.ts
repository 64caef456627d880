/**
 * Soak test (not in CI): one async-pool worker runs 500,000 no-op tasks on the memory broker
 * (publisher in the same process, in windows so the queue stays short) and prints RSS and heap at
 * checkpoints. After warm-up (the first 10%), RSS must stay within 10% of its post-warm-up value;
 * the script exits 1 when it does not.
 *
 *   node --expose-gc --import tsx scripts/soak.ts [tasks]        # from the sources
 *   CELERIAC_SOAK_BROKER=redis://127.0.0.1:6379/15 node --expose-gc --import tsx scripts/soak.ts
 */
import { Celeriac } from '../src/index.js';

const TASKS = Number(process.argv[2] ?? 500_000);
const CHECKPOINTS = 20;
const WINDOW = 1000;
const broker = process.env.CELERIAC_SOAK_BROKER ?? 'memory://soak';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mb = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;

const app = new Celeriac({ broker, logger: 'silent' });
const noop = app.task('soak.noop', (_i: number) => null, { ignoreResult: true, queue: 'soak' });
const worker = app.worker({ queues: ['soak'], concurrency: 50 });
let done = 0;
worker.on('task-succeeded', () => {
  done++;
});
await worker.start();

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) process.stderr.write('soak: run with --expose-gc for steadier numbers\n');
const sample = async () => {
  gc?.();
  await sleep(50);
  const m = process.memoryUsage();
  return { rss: mb(m.rss), heap: mb(m.heapUsed) };
};
const idle = await sample();
process.stdout.write(
  `soak: ${TASKS.toLocaleString('en-US')} tasks on ${broker}; idle RSS ${idle.rss} MB, heap ${idle.heap} MB\n`,
);
const start = Date.now();
const series: Array<{ done: number; rss: number; heap: number }> = [];
const every = Math.floor(TASKS / CHECKPOINTS);
let next = every;
for (let sent = 0; sent < TASKS; sent += WINDOW) {
  const n = Math.min(WINDOW, TASKS - sent);
  await Promise.all(Array.from({ length: n }, (_, i) => noop.delay(sent + i)));
  while (done < sent + n - WINDOW / 2) await sleep(1);
  if (sent + n >= next) {
    while (done < sent + n) await sleep(1);
    const s = await sample();
    series.push({ done, ...s });
    process.stdout.write(
      `  ${String(done).padStart(7)} tasks  ${String(Math.round((Date.now() - start) / 1000)).padStart(4)} s  RSS ${String(s.rss).padStart(6)} MB  heap ${String(s.heap).padStart(5)} MB\n`,
    );
    next += every;
  }
}
while (done < TASKS) await sleep(5);
await worker.stop();
await app.close();

// Flat after warm-up: every checkpoint after the first 10% within 10% of the first such one.
const warm = series.filter((s) => s.done > TASKS * 0.1);
const base = warm[0]?.rss ?? idle.rss;
const max = Math.max(...warm.map((s) => s.rss));
const min = Math.min(...warm.map((s) => s.rss));
const drift = Math.max(max - base, base - min) / base;
const flat = drift <= 0.1;
process.stdout.write(
  `soak: after warm-up RSS ${min}–${max} MB around ${base} MB (${(drift * 100).toFixed(1)}% off): ${flat ? 'flat' : 'NOT flat'}\n`,
);
process.exit(flat ? 0 : 1);
