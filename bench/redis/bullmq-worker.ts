/**
 * BullMQ worker process for the Redis benchmark (same protocol as celeriac-worker.ts):
 * `node --import tsx bullmq-worker.ts <host> <port> <queue> <concurrency> <count> <mode> <prefix> <db>`.
 * BullMQ is loaded before `ready`, as the Celeriac child loads Celeriac and its Redis adapter before
 * it, so the clock covers the same steps for both: connecting, starting, running.
 */
import { Worker } from 'bullmq';

const [host, port, queue, concurrency, count, mode, prefix, db] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const total = Number(count);
/** CLOCK_MONOTONIC in ms, as the sender's stamp (bench/harness.ts monotonicMs). */
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const latencies: number[] = [];
let done = 0;
let resolveDone: () => void = () => {};
const finished = new Promise<void>((r) => {
  resolveDone = r;
});
process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  const start = performance.now();
  let firstMs = 0;
  const worker = new Worker(
    queue,
    async (job) => {
      if (firstMs === 0) firstMs = performance.now() - start;
      if (mode === 'latency') latencies.push(now() - (job.data as { sentAt: number }).sentAt);
      return undefined;
    },
    {
      connection: { host, port: Number(port), db: Number(db) },
      concurrency: Number(concurrency),
      prefix,
      autorun: true,
    },
  );
  worker.on('completed', () => {
    if (++done === total) resolveDone();
  });
  await finished;
  const ms = performance.now() - start;
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  process.stdout.write(
    `${JSON.stringify({ ms, firstMs, rssMiB, latencies: mode === 'latency' ? latencies : undefined })}\n`,
  );
  await worker.close();
  process.exit(0);
});
