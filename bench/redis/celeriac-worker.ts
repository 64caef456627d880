/**
 * Celeriac worker process for the Redis benchmark:
 * `node --import tsx celeriac-worker.ts <url> <queue> <concurrency> <count> <mode>`, mode `drain` or `latency`.
 * Prints one JSON line when `count` tasks have started (latency) or finished (drain):
 * `{ ms, rssMiB, latencies? }`. Task `bench.noop(sentAtEpochMs)`.
 */
import { Celeriac } from '../package.js';

const [url, queue, concurrency, count, mode] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const total = Number(count);
const now = (): number => performance.timeOrigin + performance.now();
const app = new Celeriac({ broker: url, logger: 'silent' });
const latencies: number[] = [];
app.task(
  'bench.noop',
  (sentAt: number) => {
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
let start = 0;
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
    `${JSON.stringify({ ms, rssMiB, latencies: mode === 'latency' ? latencies : undefined })}\n`,
  );
  await worker.stop();
  await app.close();
  process.exit(0);
});
