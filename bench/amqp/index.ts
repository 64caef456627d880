import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Connection } from 'rabbitmq-client';

import type { BenchContext, Measurement, Suite } from '../harness.js';
import { atSteadyRate, latencySummary, monotonicMs } from '../harness.js';
import { Celeriac } from '../package.js';

/**
 * `npm run bench -- amqp`: Celeriac vs Python Celery 5.2 on the same RabbitMQ, same machine, one run
 * (issue 5). A fresh vhost per run (deleted afterwards); every worker in a process of its own (its
 * RSS is that process's); queues filled beforehand, untimed; a drain is timed inside the worker from
 * its first task's start to its last task's end, on both sides. Celery runs with its defaults (acks
 * early, prefetch multiplier 4, its default `prefork` pool for drains, timed from outside); Celeriac
 * acks late and publishes with confirms.
 */
const run = promisify(execFile);
const HOST = process.env.CELERIAC_BENCH_AMQP_HOST ?? '127.0.0.1';
const PORT = Number(process.env.CELERIAC_BENCH_AMQP_PORT ?? 5672);
const TASKS = Number(process.env.CELERIAC_BENCH_TASKS ?? 20_000);
const ONE_BY_ONE = 2_000;
const RATE = 500;
const LATENCY_TASKS = 3_000;
const HERE = new URL('./', import.meta.url).pathname;
const PY = '/usr/bin/python3';

export const suite: Suite = {
  name: 'amqp',
  description: `RabbitMQ: Celeriac vs Python Celery 5.2, ${TASKS.toLocaleString('en-US')} no-op tasks per drain`,
  peers: ['celery'],
  async available() {
    try {
      await run('rabbitmqctl', ['-q', 'status'], { timeout: 20_000 });
      return true;
    } catch (err) {
      return `no RabbitMQ reachable with rabbitmqctl: ${String(err).split('\n')[0]}`;
    }
  },
  async run(ctx) {
    const vhost = `celeriac-bench-${randomUUID().slice(0, 8)}`;
    await run('rabbitmqctl', ['-q', 'add_vhost', vhost]);
    await run('rabbitmqctl', ['-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
    const url = `amqp://guest:guest@${HOST}:${PORT}/${vhost}`;
    const out: Measurement[] = [];
    try {
      out.push(await ceiling(ctx, url));
      out.push(await enqueueOneByOne(ctx, url));
      out.push(await enqueueBulk(ctx, url));
      let rss: Measurement | undefined;
      for (const c of [1, 50]) {
        const { drain, rss: r } = await drainAt(ctx, url, c);
        out.push(drain);
        rss = r;
      }
      out.push(...(await latency(ctx, url)));
      if (rss) out.push(rss);
    } finally {
      await run('rabbitmqctl', ['-q', 'delete_vhost', vhost]).catch(() => {});
    }
    return out;
  },
};

/**
 * The ceiling: a bare consumer on a raw rabbitmq-client channel (prefetch 1000, one
 * `basic.ack(multiple)` per 100 messages, no task logic, no decoding) draining the same pre-filled
 * messages on the same RabbitMQ. No at-least-once worker, Celeriac's or Celery's, drains faster on
 * this machine; the ratio of the ceiling to Celery says how far a goal like "10x Celery" can go here.
 */
async function ceiling(ctx: BenchContext, url: string): Promise<Measurement> {
  const queue = 'bench-ceiling';
  const { app, send } = client(url);
  await Promise.all(Array.from({ length: TASKS }, () => send(queue, 0)));
  await app.close();
  ctx.log(`ceiling: bare channel consumer, prefetch 1000, multiple acks per 100, ${TASKS} messages`);
  const conn = new Connection({ url, connectionName: 'celeriac-bench-ceiling' });
  const ch = await conn.acquire();
  await ch.basicQos({ prefetchCount: 1000 });
  let n = 0;
  let t0 = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => {
    finish = r;
  });
  await ch.basicConsume({ queue }, (msg) => {
    if (n++ === 0) t0 = performance.now();
    if (n % 100 === 0 || n === TASKS) ch.basicAck({ deliveryTag: msg.deliveryTag, multiple: true });
    if (n === TASKS) finish();
  });
  await done;
  const ms = performance.now() - t0;
  await ch.close();
  await conn.close();
  return {
    name: `ceiling: bare consume + ack of ${TASKS} (no task logic)`,
    unit: 'msgs/s',
    better: 'higher',
    value: (TASKS / ms) * 1000,
    details: { ceiling: true, prefetch: 1000, ackEvery: 100 },
  };
}

function client(url: string): { app: Celeriac; send: (queue: string, sentAt: number) => Promise<unknown> } {
  const app = new Celeriac({ broker: url, logger: 'silent', brokerOptions: { replyQueue: false } });
  const noop = app.task('bench.noop', (_sentAt: number) => undefined, { ignoreResult: true });
  return { app, send: (queue, sentAt) => noop.applyAsync({ args: [sentAt], queue }) };
}

async function pyJson(args: string[]): Promise<{ ms: number; rssMiB?: number; latencies?: number[] }> {
  const { stdout } = await run(PY, [`${HERE}celery_bench.py`, ...args], {
    timeout: 900_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string);
}

async function enqueueOneByOne(ctx: BenchContext, url: string): Promise<Measurement> {
  const step = `enqueue ${ONE_BY_ONE} one by one (awaited)`;
  const { app, send } = client(url);
  await send('bench-warmup', 0);
  const t0 = performance.now();
  for (let i = 0; i < ONE_BY_ONE; i++) {
    await send('bench-e1', 0);
    if (i % 500 === 499) ctx.progress(`celeriac ${step}`, i + 1, ONE_BY_ONE);
  }
  const celeriac = (ONE_BY_ONE / (performance.now() - t0)) * 1000;
  await app.close();
  const py = await pyJson(['enqueue', url, 'bench-e1py', String(ONE_BY_ONE)]);
  return {
    name: step,
    unit: 'tasks/s',
    better: 'higher',
    value: celeriac,
    peers: { celery: (ONE_BY_ONE / py.ms) * 1000 },
    details: { note: 'Celeriac waits for each publisher confirm; Celery publishes without confirms' },
  };
}

async function enqueueBulk(ctx: BenchContext, url: string): Promise<Measurement> {
  const step = `enqueue ${TASKS}`;
  ctx.log(
    `${step}: Celeriac ${TASKS} concurrent delay() calls (confirmed batches); Celery send_task in a loop`,
  );
  const { app, send } = client(url);
  await send('bench-eb', 0);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: TASKS }, () => send('bench-eb', 0)));
  const celeriac = (TASKS / (performance.now() - t0)) * 1000;
  await app.close();
  const py = await pyJson(['enqueue', url, 'bench-ebpy', String(TASKS)]);
  return {
    name: step,
    unit: 'tasks/s',
    better: 'higher',
    value: celeriac,
    peers: { celery: (TASKS / py.ms) * 1000 },
  };
}

/** Spawns the Celeriac worker child; resolves once it printed `ready`, with a promise of its result. */
async function celeriacWorker(
  url: string,
  queue: string,
  concurrency: number,
  count: number,
): Promise<{ proc: ChildProcess; result: Promise<{ ms: number; rssMiB: number; latencies: number[] }> }> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', `${HERE}celeriac-worker.ts`, url, queue, String(concurrency), String(count)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  const result = new Promise<{ ms: number; rssMiB: number; latencies: number[] }>((resolve, reject) => {
    lines.on('line', (l) => {
      if (l === 'ready') ready();
      else resolve(JSON.parse(l));
    });
    proc.once('exit', (c) => reject(new Error(`celeriac worker exited ${c}`)));
  });
  await isReady;
  return { proc, result };
}

async function drainAt(
  ctx: BenchContext,
  url: string,
  concurrency: number,
): Promise<{ drain: Measurement; rss?: Measurement }> {
  const step = `drain ${TASKS}, concurrency ${concurrency}`;
  const cq = `bench-d${concurrency}`;
  const { app, send } = client(url);
  await Promise.all(Array.from({ length: TASKS }, () => send(cq, 0)));
  await app.close();
  ctx.log(`${step}: queues filled`);
  const cw = await celeriacWorker(url, cq, concurrency, TASKS);
  const c = await cw.result;
  // Celery with its default pool, prefork: on this machine Celery 5.2.6 (kombu 5.2.4, py-amqp
  // 5.1.1, Python 3.11) stalls with the solo and threads pools over AMQP (the worker sits in
  // epoll_wait with prefetched messages unprocessed, a few tasks/s), prefork does not. Timed from
  // outside: from the first message taken to an empty queue with nothing unacked.
  const pq = `bench-d${concurrency}py`;
  const pool = 'prefork';
  await pyJson(['enqueue', url, pq, String(TASKS)]);
  const py = await celeryDrain(url, pq, pool, concurrency);
  ctx.log(
    `${step}: celeriac ${Math.round(c.ms)} ms (${Math.round(c.rssMiB)} MiB), celery/${pool} ${Math.round(py.ms)} ms (${Math.round(py.rssMiB ?? 0)} MiB)`,
  );
  const drain: Measurement = {
    name: step,
    unit: 'tasks/s',
    better: 'higher',
    value: (TASKS / c.ms) * 1000,
    peers: { celery: (TASKS / py.ms) * 1000 },
    details: { celeryPool: pool },
  };
  const rss: Measurement | undefined =
    concurrency === 50
      ? {
          name: 'worker RSS after the drain (concurrency 50)',
          unit: 'MiB',
          better: 'lower',
          value: c.rssMiB,
          peers: { celery: py.rssMiB ?? null },
        }
      : undefined;
  return { drain, ...(rss ? { rss } : {}) };
}

/** Times a Python worker from its first take to an empty queue with nothing unacked; RSS of all its processes. */
async function celeryDrain(
  url: string,
  queue: string,
  pool: string,
  concurrency: number,
): Promise<{ ms: number; rssMiB: number }> {
  const conn = new Connection(url);
  const ch = await conn.acquire();
  const proc = spawn(PY, [`${HERE}celery_bench.py`, 'worker', url, queue, pool, String(concurrency)], {
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
  });
  const counts = async () => {
    const ok = await ch.queueDeclare({ queue, passive: true });
    return { ready: ok.messageCount, consumers: ok.consumerCount };
  };
  try {
    while ((await counts()).ready >= TASKS) await sleep(2);
    const t0 = performance.now();
    // Ready 0 and the worker's reservations (acks early: acked on receipt) run: 4 × concurrency no-ops.
    while ((await counts()).ready > 0) await sleep(5);
    const ms = performance.now() - t0;
    const { stdout } = await run('ps', ['-o', 'rss=', '--pid', String(proc.pid), '--ppid', String(proc.pid)]);
    const rssMiB = stdout
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0)
      .reduce((a, b) => a + b, 0);
    return { ms, rssMiB: rssMiB / 1024 };
  } finally {
    if (proc.pid) process.kill(-proc.pid, 'SIGKILL');
    await ch.close();
    await conn.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function latency(ctx: BenchContext, url: string): Promise<Measurement[]> {
  const step = `send → start at ${RATE}/s, idle worker`;
  ctx.log(`${step}: ${LATENCY_TASKS} tasks each; worker concurrency 50`);
  const cq = 'bench-lat';
  const cw = await celeriacWorker(url, cq, 50, LATENCY_TASKS);
  const { app, send } = client(url);
  await atSteadyRate(
    LATENCY_TASKS,
    RATE,
    () => send(cq, monotonicMs()),
    (d) => ctx.progress(`celeriac ${step}`, d, LATENCY_TASKS),
  );
  const c = latencySummary((await cw.result).latencies);
  await app.close();
  const pq = 'bench-latpy';
  // threads here: prefork children would each count apart; at 500/s the queue never holds more
  // than a few messages, where the threads pool does not stall.
  const worker = pyJson(['drain', url, pq, 'threads', '50', String(LATENCY_TASKS)]);
  await new Promise((r) => setTimeout(r, 3000)); // let the Python worker come up
  await pyJson(['send', url, pq, String(LATENCY_TASKS), String(RATE)]);
  const p = latencySummary(
    await Promise.race([
      worker.then((w) => w.latencies ?? []),
      sleep(60_000).then(() => [] as number[]), // a stalled Celery worker: no samples
    ]),
  );
  const details = { rate: RATE, tasks: LATENCY_TASKS, samples: { celeriac: c.samples, celery: p.samples } };
  return [
    {
      name: 'send → start p50',
      unit: 'ms',
      better: 'lower',
      value: c.p50,
      peers: { celery: p.p50 },
      details,
    },
    {
      name: 'send → start p99',
      unit: 'ms',
      better: 'lower',
      value: c.p99,
      peers: { celery: p.p99 },
      details,
    },
  ];
}
