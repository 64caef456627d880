import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { DemoApp } from './demo/app.js';
import { createDemoApp } from './demo/app.js';
import type { DemoCounts } from './demo/workload.js';
import { DEMO_WORKLOAD, expectedCounts } from './demo/workload.js';
import type { CliIO } from './io.js';
import { CommandFailed } from './io.js';
import { integer, LOG_LEVELS } from './options.js';
import { ProgressLine } from './progress.js';
import { formatMs, formatNumber, percentile } from './stats.js';
import { table } from './table.js';

interface DemoFlags {
  json?: boolean;
  concurrency?: number;
  loglevel?: string;
  timeout?: number;
}

/** What the demo reports (printed as a table, and as one JSON line with --json). */
export interface DemoSummary extends DemoCounts {
  expected: DemoCounts;
  /** Runs finished per second over the burst (the countdown task, which waits on purpose, aside). */
  throughput: number;
  /** Send → start of each task's first run (retries and the countdown task aside), in ms. */
  latencyMs: { p50: number; p99: number; samples: number };
  elapsedMs: number;
}

/** `celeriac demo`: everything in one process on the memory broker. */
export function registerDemo(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('demo')
    .description('run a sample workload in one process on the embedded memory broker, then print a summary')
    .option('--json', 'also print the summary as one line of JSON')
    .option('-c, --concurrency <n>', 'worker concurrency (default: 20)', integer(1))
    .option(
      '--timeout <seconds>',
      'give up if the workload has not finished by then (default: 30)',
      integer(1),
    )
    .addOption(new Option('-l, --loglevel <level>', 'worker log level (default: silent)').choices(LOG_LEVELS))
    .action(async (flags: DemoFlags) => done(await runDemo(flags, io)));
}

export async function runDemo(flags: DemoFlags, io: CliIO): Promise<number> {
  const w = DEMO_WORKLOAD;
  const expected = expectedCounts(w);
  const terminal = expected.succeeded + expected.failed;
  const demo = createDemoApp(`demo-${process.pid}-${randomUUID().slice(0, 8)}`, flags.loglevel ?? 'silent');
  const worker = demo.app.worker({ concurrency: flags.concurrency ?? 20 });
  const counts = { sent: 0, succeeded: 0, failed: 0, retried: 0 };
  const firstStart = new Map<string, number>();
  const sentAt = new Map<string, number>();
  let countdownId = '';
  let burstEnd = 0;
  let finished: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const onEnd = (id: string, at: number) => {
    if (id !== countdownId) burstEnd = Math.max(burstEnd, at);
    if (counts.succeeded + counts.failed >= terminal) finished();
  };
  // 'task-started' is emitted synchronously as the run starts, so performance.now() here is the
  // start time with sub-millisecond precision (the event's own `at` is epoch ms).
  worker.on('task-started', (e) => {
    if (e.retries === 0 && !firstStart.has(e.id)) firstStart.set(e.id, performance.now());
  });
  worker.on('task-succeeded', (e) => {
    counts.succeeded++;
    onEnd(e.id, performance.now());
  });
  worker.on('task-failed', (e) => {
    counts.failed++;
    onEnd(e.id, performance.now());
  });
  worker.on('task-retried', () => {
    counts.retried++;
  });

  io.stdout.write(
    `Celeriac demo: one process, memory:// broker and results, a worker at concurrency ${worker.concurrency}.\n` +
      `Workload: ${w.add} × demo.add, ${w.flaky} × demo.flaky (fails ${w.flakyRetries}×, retried, then succeeds), ` +
      `${w.fail} × demo.fail (always fails), ${w.countdown} × demo.reminder (countdown ${w.countdownMs / 1000}s), ` +
      `${w.events} × event demo.order.placed → ${w.subscribers} subscribers.\n`,
  );
  const progress = new ProgressLine(io.stderr, { everyMs: 500 });
  const started = performance.now();
  const line = () =>
    `demo  sent ${counts.sent}/${expected.sent}  finished ${counts.succeeded + counts.failed}/${terminal} ` +
    `(ok ${counts.succeeded}, failed ${counts.failed})  retried ${counts.retried}  ${((performance.now() - started) / 1000).toFixed(1)}s`;
  const ticker = setInterval(() => progress.update(line()), 100);
  try {
    await worker.start();
    countdownId = await sendWorkload(demo, counts, sentAt);
    const timeoutMs = (flags.timeout ?? 30) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([allDone, timedOut]);
    clearTimeout(timer);
    clearInterval(ticker);
    progress.done(line());
    if (outcome === 'timeout')
      throw new CommandFailed(`the workload did not finish within ${timeoutMs / 1000}s: ${line()}`);
  } finally {
    clearInterval(ticker);
    await demo.app.close();
  }

  const latencies: number[] = [];
  for (const [id, at] of firstStart) {
    const sent = sentAt.get(id);
    if (sent !== undefined && id !== countdownId) latencies.push(at - sent);
  }
  const burstRuns = counts.succeeded + counts.failed - w.countdown;
  const summary: DemoSummary = {
    ...counts,
    expected,
    throughput: burstEnd > started ? (burstRuns / (burstEnd - started)) * 1000 : Number.NaN,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), samples: latencies.length },
    elapsedMs: performance.now() - started,
  };
  io.stdout.write(summaryTable(summary));
  if (flags.json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  const mismatch = (['sent', 'succeeded', 'failed', 'retried'] as const).filter(
    (k) => summary[k] !== expected[k],
  );
  if (mismatch.length)
    throw new CommandFailed(`the summary differs from the scripted workload in: ${mismatch.join(', ')}`);
  return 0;
}

/**
 * Sends the scripted workload, interleaved as real traffic would be. Task ids are chosen here, so
 * each send time is recorded before the message exists (a worker may start it before `delay` resolves).
 * Returns the id of the countdown task.
 */
async function sendWorkload(
  demo: DemoApp,
  counts: { sent: number },
  sentAt: Map<string, number>,
): Promise<string> {
  const w = DEMO_WORKLOAD;
  const send = async (fn: (taskId: string) => Promise<unknown>) => {
    const id = randomUUID();
    sentAt.set(id, performance.now());
    await fn(id);
    counts.sent++;
    return id;
  };
  const countdownId = await send((taskId) =>
    demo.reminder.applyAsync({ args: ['the demo is almost over'], countdown: w.countdownMs, taskId }),
  );
  const total = w.add + w.flaky + w.fail;
  let [adds, flakies, fails] = [0, 0, 0];
  for (let i = 0; i < total; i++) {
    // Spread the flaky and failing tasks through the burst.
    if (flakies < w.flaky && i % Math.floor(total / w.flaky) === 1) {
      const n = flakies++;
      await send((taskId) => demo.flaky.applyAsync({ args: [n], taskId }));
    } else if (fails < w.fail && i % Math.floor(total / w.fail) === 2) {
      const n = fails++;
      await send((taskId) => demo.fail.applyAsync({ args: [n], taskId }));
    } else if (adds < w.add) {
      const n = adds++;
      await send((taskId) => demo.add.applyAsync({ args: [n, n], taskId }));
    } else if (flakies < w.flaky) {
      const n = flakies++;
      await send((taskId) => demo.flaky.applyAsync({ args: [n], taskId }));
    } else {
      const n = fails++;
      await send((taskId) => demo.fail.applyAsync({ args: [n], taskId }));
    }
    if (i === Math.floor(total / 2)) {
      for (let e = 0; e < w.events; e++) {
        const at = performance.now();
        const published = await demo.orderPlaced.publish({ orderId: `A-${1000 + e}`, total: 42.5 });
        for (const result of published.results.values()) sentAt.set(result.id, at);
        counts.sent += published.results.size;
      }
    }
  }
  return countdownId;
}

function summaryTable(s: DemoSummary): string {
  return table(
    ['', 'measured', 'scripted'],
    [
      ['sent', s.sent, s.expected.sent],
      ['succeeded', s.succeeded, s.expected.succeeded],
      ['failed', s.failed, s.expected.failed],
      ['retried', s.retried, s.expected.retried],
      ['throughput', `${formatNumber(s.throughput)} tasks/s`, ''],
      ['latency p50 (send → start)', formatMs(s.latencyMs.p50), ''],
      ['latency p99 (send → start)', formatMs(s.latencyMs.p99), ''],
      ['elapsed', formatMs(s.elapsedMs), ''],
    ],
    ['left', 'right', 'right'],
  );
}
