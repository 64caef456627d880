/**
 * A Celeriac worker process for fault tests: `node --import tsx worker.ts <brokerUrl> <queue> <concurrency> <leaseMs>`.
 * Task `faults.work(ms)` logs every run (RPUSH <log>.runs id when it starts, <log>.done id when it
 * ends) in Redis itself, so a SIGKILL loses no log line that matters. The log prefix is the broker
 * URL's global_keyprefix.
 */
import { Redis } from 'ioredis';
import { Celeriac, type TaskContext } from '../../../../src/index.js';

const [url, queue, concurrency, lease] = process.argv.slice(2) as [string, string, string, string];
const parsed = new URL(url);
const prefix = parsed.searchParams.get('global_keyprefix') ?? '';
const log = new Redis({
  host: parsed.hostname,
  port: Number(parsed.port || 6379),
  db: Number(parsed.pathname.slice(1) || 0),
});
const app = new Celeriac({
  broker: url,
  logger: 'silent',
  brokerOptions: { lease: Number(lease), pollInterval: 100 },
});
app.task(
  'faults.work',
  async (ctx: TaskContext, ms: number) => {
    await log.rpush(`${prefix}log.runs`, ctx.id);
    await new Promise((r) => setTimeout(r, ms));
    await log.rpush(`${prefix}log.done`, ctx.id);
    return null;
  },
  { bind: true },
);
await app.worker({ queues: [queue], concurrency: Number(concurrency) }).start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
