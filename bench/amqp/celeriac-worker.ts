/**
 * Celeriac worker process for the AMQP benchmark:
 * `node --import tsx celeriac-worker.ts <url> <queue> <concurrency> <count>`. Prints `ready`, then
 * one JSON line `{ ms, rssMiB, latencies }` once `count` tasks ran: `ms` from the first task's start
 * to the last one's end (as the Python side measures), `latencies` send → start in ms for tasks that
 * carry their send time. Task `bench.noop(sentAtEpochMs)`.
 */
import { Celeriac } from '../package.js';

const [url, queue, concurrency, count] = process.argv.slice(2) as [string, string, string, string];
const total = Number(count);
const app = new Celeriac({ broker: url, logger: 'silent', brokerOptions: { replyQueue: false } });
const latencies: number[] = [];
let first = 0;
let done = 0;
let resolveAll: () => void = () => {};
const finished = new Promise<void>((r) => {
  resolveAll = r;
});
app.task(
  'bench.noop',
  (sentAt: number) => {
    if (first === 0) first = performance.now();
    if (sentAt > 0) latencies.push(Number(process.hrtime.bigint()) / 1e6 - sentAt);
    return undefined;
  },
  { ignoreResult: true },
);
const worker = app.worker({ queues: [queue], concurrency: Number(concurrency) });
worker.on('task-succeeded', () => {
  if (++done === total) resolveAll();
});
await worker.start();
process.stdout.write('ready\n');
await finished;
const ms = performance.now() - first;
const rssMiB = process.memoryUsage().rss / 2 ** 20;
process.stdout.write(`${JSON.stringify({ ms, rssMiB, latencies })}\n`);
await worker.stop();
await app.close();
process.exit(0);
