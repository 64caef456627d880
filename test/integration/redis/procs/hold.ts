/**
 * A consumer that takes messages and never settles them, for tests that SIGKILL it:
 * `tsx hold.ts <url> <queue> <prefetch> [leaseMs]`. Prints one JSON line per delivery.
 */
import { createTransport } from '../../../../src/brokers/redis/index.js';

const [url, queue, prefetch, lease] = process.argv.slice(2);
const t = createTransport(new URL(url as string), {
  options: { lease: Number(lease ?? 1000), pollInterval: 100 },
});
await t.consume(
  [queue as string],
  (d) => {
    process.stdout.write(
      `${JSON.stringify({ tag: d.tag, id: d.message?.headers.id ?? null, count: d.deliveryCount })}\n`,
    );
  },
  { prefetch: Number(prefetch ?? 1) },
);
process.stdout.write('ready\n');
setInterval(() => {}, 1 << 30);
