/**
 * Celeriac worker process for the Redis benchmark:
 * `node --import tsx celeriac-worker.ts <url> <queue> <concurrency> <count> <mode>`, mode `drain` or `latency`.
 * Prints one JSON line when `count` tasks have started (latency) or finished (drain):
 * `{ ms, firstMs, rssMiB, latencies? }` (`firstMs`: from the start signal to the first handler call:
 * connecting and starting). Task `bench.noop(sentAtMs)`. Celeriac and its Redis adapter (which an
 * app loads when it first uses the broker) are loaded before `ready`, as the BullMQ child loads
 * BullMQ, so the clock covers the same steps for both.
 */
import { Celeriac } from '../package.js';

await import(new URL('../../dist/brokers/redis/index.js', import.meta.url).href);

const [url, queue, concurrency, count, mode] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const total = Number(count);
/** CLOCK_MONOTONIC in ms, as the sender's stamp (bench/harness.ts monotonicMs). */
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const app = new Celeriac({ broker: url, logger: 'silent' });
const latencies: number[] = [];
let start = 0;
let firstMs = 0;
app.task(
  'bench.noop',
  (sentAt: number) => {
    if (firstMs === 0) firstMs = performance.now() - start;
    if (mode === 'latency') latencies.push(now() - sentAt);
    return undefined;
  },
  { ignoreResult: true },
);
const worker = app.worker({
  queues: [queue],
  concurrency: Number(concurrency),
  ...(process.env.CELERIAC_BENCH_PREFETCH ? { prefetch: Number(process.env.CELERIAC_BENCH_PREFETCH) } : {}),
});
let done = 0;
const finished = new Promise<void>((resolve) => {
  worker.on('task-succeeded', () => {
    if (++done === total) resolve();
  });
});
process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  start = performance.now();
  await worker.start();
  await finished;
  const ms = performance.now() - start;
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  process.stdout.write(
    `${JSON.stringify({ ms, firstMs, rssMiB, latencies: mode === 'latency' ? latencies : undefined })}\n`,
  );
  await worker.stop();
  await app.close();
  process.exit(0);
});
