import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { BenchContext, Measurement, Suite } from '../harness.js';
import { atSteadyRate, latencySummary, monotonicMs } from '../harness.js';
import { Celeriac } from '../package.js';

/**
 * `npm run bench -- redis`: Celeriac, BullMQ and Python Celery 5.2 against the same Redis, on the
 * same machine, in one run (issue 4). Every worker runs in a process of its own (its RSS is that
 * process's); the queues are filled beforehand, untimed. Redis db 15, keys under `bench:` / queue
 * names unique to the run, deleted afterwards.
 */
const run = promisify(execFile);
const HOST = process.env.CELERIAC_BENCH_REDIS_HOST ?? '127.0.0.1';
const PORT = Number(process.env.CELERIAC_BENCH_REDIS_PORT ?? 6379);
const DB = 15;
/** Every key of a run lives under this prefix (kombu's global_keyprefix for Celeriac and Celery, BullMQ's prefix). */
const PREFIX = `bench:${randomUUID().slice(0, 8)}:`;
const URL_ = `redis://${HOST}:${PORT}/${DB}?global_keyprefix=${encodeURIComponent(PREFIX)}`;
const PY_URL = `redis://${HOST}:${PORT}/${DB}`;
const TASKS = Number(process.env.CELERIAC_BENCH_TASKS ?? 20_000);
const ONE_BY_ONE = 5_000;
const RATE = 500;
const LATENCY_TASKS = 3_000;
/** The steps to run (all by default): `CELERIAC_BENCH_STEPS=drain,latency` for some of them. */
const STEPS = new Set(
  (process.env.CELERIAC_BENCH_STEPS ?? 'ceiling,enqueue,drain,latency').split(',').map((x) => x.trim()),
);
/** Latency is a tail figure, so it is measured in rounds and the median of the rounds reported. */
const LATENCY_ROUNDS = Number(process.env.CELERIAC_BENCH_LATENCY_ROUNDS ?? 3);
const HERE = new URL('./', import.meta.url).pathname;
const PY = '/usr/bin/python3';

export const suite: Suite = {
  name: 'redis',
  description: `Redis (db ${DB}): Celeriac vs BullMQ vs Python Celery 5.2, ${TASKS.toLocaleString('en-US')} no-op tasks per drain`,
  peers: ['bullmq', 'celery'],
  async available() {
    const r = new Redis({
      host: HOST,
      port: PORT,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    try {
      await r.connect();
      await r.ping();
      return true;
    } catch {
      return `no Redis on ${HOST}:${PORT}`;
    } finally {
      r.disconnect();
    }
  },
  async run(ctx) {
    const out: Measurement[] = [];
    const tag = randomUUID().slice(0, 8);
    const admin = new Redis({ host: HOST, port: PORT, db: DB });
    try {
      if (STEPS.has('ceiling')) out.push(...(await ceiling(ctx)));
      if (STEPS.has('enqueue')) {
        out.push(await enqueueOneByOne(ctx, tag));
        out.push(await enqueueBulk(ctx, tag));
      }
      if (STEPS.has('drain')) for (const c of [1, 50]) out.push(await drain(ctx, admin, tag, c));
      if (STEPS.has('latency')) out.push(...(await latency(ctx, admin, tag)));
    } finally {
      await cleanup(admin, tag);
      admin.disconnect();
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------

async function ceiling(ctx: BenchContext): Promise<Measurement[]> {
  ctx.log('redis-benchmark -P 32 -t set,lpush (the ceiling)');
  const { stdout } = await run(
    'redis-benchmark',
    ['-h', HOST, '-p', String(PORT), '-q', '-n', '400000', '-P', '32', '-t', 'set,lpush', '--csv'],
    {
      timeout: 120_000,
    },
  );
  const rate = (name: string): number => {
    const line = stdout.split('\n').find((l) => l.startsWith(`"${name}"`));
    return Number(line?.split(',')[1]?.replace(/"/g, '') ?? Number.NaN);
  };
  return [
    {
      name: 'redis-benchmark SET, pipelined 32',
      unit: 'ops/s',
      better: 'higher',
      value: rate('SET'),
      details: { ceiling: true },
    },
    {
      name: 'redis-benchmark LPUSH, pipelined 32',
      unit: 'ops/s',
      better: 'higher',
      value: rate('LPUSH'),
      details: { ceiling: true },
    },
  ];
}

function celeriacClient(): {
  app: Celeriac;
  send: (q: string, sentAt: number) => Promise<unknown>;
  /** `count` tasks to `q` with applyMany, in batches of 1,000 (as BullMQ's addBulk below). */
  sendBulk: (q: string, count: number) => Promise<void>;
} {
  const app = new Celeriac({ broker: URL_, logger: 'silent' });
  const noop = app.task('bench.noop', (_sentAt: number) => undefined, { ignoreResult: true });
  return {
    app,
    send: (queue, sentAt) => noop.applyAsync({ args: [sentAt], queue }),
    sendBulk: async (queue, count) => {
      for (let i = 0; i < count; i += 1000)
        await noop.applyMany(Array.from({ length: Math.min(1000, count - i) }, () => ({ args: [0], queue })));
    },
  };
}

function bullQueue(name: string): Queue {
  return new Queue(name, {
    connection: { host: HOST, port: PORT, db: DB },
    prefix: `${PREFIX}bull`,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
}

async function enqueueOneByOne(ctx: BenchContext, tag: string): Promise<Measurement> {
  const step = `enqueue ${ONE_BY_ONE} one by one (awaited)`;
  const { app, send } = celeriacClient();
  let t0 = performance.now();
  for (let i = 0; i < ONE_BY_ONE; i++) {
    await send(`bench-e1-${tag}`, 0);
    if (i % 1000 === 999) ctx.progress(`celeriac ${step}`, i + 1, ONE_BY_ONE);
  }
  const celeriac = (ONE_BY_ONE / (performance.now() - t0)) * 1000;
  await app.close();
  const q = bullQueue(`e1-${tag}`);
  t0 = performance.now();
  for (let i = 0; i < ONE_BY_ONE; i++) await q.add('noop', { sentAt: 0 });
  const bullmq = (ONE_BY_ONE / (performance.now() - t0)) * 1000;
  await q.obliterate({ force: true });
  await q.close();
  const py = await pyJson(['enqueue', PY_URL, `bench-e1py-${tag}`, String(ONE_BY_ONE)]);
  const celery = (ONE_BY_ONE / py.ms) * 1000;
  return { name: step, unit: 'tasks/s', better: 'higher', value: celeriac, peers: { bullmq, celery } };
}

async function enqueueBulk(ctx: BenchContext, tag: string): Promise<Measurement> {
  const step = `enqueue ${TASKS} in bulk`;
  ctx.log(`${step}: Celeriac applyMany and BullMQ addBulk, in chunks of 1000 awaited in turn`);
  const { app, sendBulk } = celeriacClient();
  let t0 = performance.now();
  await sendBulk(`bench-eb-${tag}`, TASKS);
  const celeriac = (TASKS / (performance.now() - t0)) * 1000;
  await app.close();
  const q = bullQueue(`eb-${tag}`);
  t0 = performance.now();
  for (let i = 0; i < TASKS; i += 1000)
    await q.addBulk(Array.from({ length: 1000 }, () => ({ name: 'noop', data: { sentAt: 0 } })));
  const bullmq = (TASKS / (performance.now() - t0)) * 1000;
  await q.obliterate({ force: true });
  await q.close();
  return {
    name: step,
    unit: 'tasks/s',
    better: 'higher',
    value: celeriac,
    peers: { bullmq, celery: null },
    details: { celery: 'no bulk API' },
  };
}

/** What a worker child prints at the end: ms from the start signal to the last task, ms to the first, RSS. */
interface ChildResult {
  ms: number;
  firstMs: number;
  rssMiB: number;
  latencies?: number[];
}

/** Starts a worker child that prints `ready`, then waits for a line on stdin to begin. */
async function child(
  cmd: string,
  args: string[],
): Promise<{ go: () => Promise<ChildResult>; proc: ChildProcess }> {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  lines.on('line', (l) => {
    queue.push(l);
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (queue.length === 0) {
      await new Promise<void>((r) => {
        wake = r;
        proc.once('exit', () => r());
      });
      if (queue.length === 0 && proc.exitCode !== null)
        throw new Error(`${cmd} exited with ${proc.exitCode}`);
    }
    return queue.shift() as string;
  };
  if ((await next()) !== 'ready') throw new Error(`${cmd}: unexpected first line`);
  return {
    proc,
    go: async () => {
      proc.stdin?.write('go\n');
      return JSON.parse(await next()) as ChildResult;
    },
  };
}

function tsChild(script: string, args: string[]) {
  return child(process.execPath, ['--import', 'tsx', `${HERE}${script}`, ...args]);
}

async function drain(
  ctx: BenchContext,
  admin: Redis,
  tag: string,
  concurrency: number,
): Promise<Measurement> {
  const step = `drain ${TASKS}, concurrency ${concurrency}`;
  // Celeriac
  const cq = `bench-d${concurrency}-${tag}`;
  const { app, sendBulk } = celeriacClient();
  await sendBulk(cq, TASKS);
  await app.close();
  ctx.log(`${step}: queues filled (${await admin.llen(`${PREFIX}${cq}`)} waiting for celeriac)`);
  const cw = await tsChild('celeriac-worker.ts', [URL_, cq, String(concurrency), String(TASKS), 'drain']);
  const c = await cw.go();
  // BullMQ
  const bq = bullQueue(`d${concurrency}-${tag}`);
  for (let i = 0; i < TASKS; i += 1000)
    await bq.addBulk(Array.from({ length: 1000 }, () => ({ name: 'noop', data: { sentAt: 0 } })));
  const bw = await tsChild('bullmq-worker.ts', [
    HOST,
    String(PORT),
    `d${concurrency}-${tag}`,
    String(concurrency),
    String(TASKS),
    'drain',
    `${PREFIX}bull`,
    String(DB),
  ]);
  const b = await bw.go();
  await bq.obliterate({ force: true });
  await bq.close();
  // Celery: solo at 1, threads at 50
  const pq = `bench-d${concurrency}py-${tag}`;
  await pyJson(['fill', PY_URL, pq, String(TASKS)]);
  const py = await celeryDrain(admin, pq, concurrency === 1 ? 'solo' : 'threads', concurrency);
  ctx.log(
    `${step}: celeriac ${Math.round(c.ms)} ms (${Math.round(c.rssMiB)} MiB), bullmq ${Math.round(b.ms)} ms (${Math.round(b.rssMiB)} MiB), celery ${Math.round(py.ms)} ms (${Math.round(py.rssMiB)} MiB)`,
  );
  const m: Measurement = {
    name: step,
    unit: 'tasks/s',
    better: 'higher',
    value: (TASKS / c.ms) * 1000,
    peers: { bullmq: (TASKS / b.ms) * 1000, celery: (TASKS / py.ms) * 1000 },
    details: { celeryPool: concurrency === 1 ? 'solo' : 'threads' },
  };
  if (concurrency === 50) {
    startup = {
      name: 'worker start → first task (concurrency 50)',
      unit: 'ms',
      better: 'lower',
      value: c.firstMs,
      peers: { bullmq: b.firstMs, celery: null },
      details: {
        includes:
          'connecting and starting (each library is loaded before the clock starts); the drain rows include it too',
      },
    };
    rss = {
      name: 'worker RSS after the drain (concurrency 50)',
      unit: 'MiB',
      better: 'lower',
      value: c.rssMiB,
      peers: { bullmq: b.rssMiB, celery: py.rssMiB },
    };
  }
  return m;
}

let rss: Measurement | undefined;
let startup: Measurement | undefined;

/** Times a Python worker from its first take to an empty queue with nothing unacked. */
async function celeryDrain(
  admin: Redis,
  queue: string,
  pool: string,
  concurrency: number,
): Promise<{ ms: number; rssMiB: number }> {
  const proc = spawn(PY, [`${HERE}celery_bench.py`, 'worker', PY_URL, queue, pool, String(concurrency)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, BENCH_PREFIX: PREFIX },
  });
  try {
    while ((await admin.llen(`${PREFIX}${queue}`)) >= TASKS) await sleep(2);
    const t0 = performance.now();
    while ((await admin.llen(`${PREFIX}${queue}`)) > 0 || (await admin.hlen(`${PREFIX}unacked`)) > 0)
      await sleep(5);
    const ms = performance.now() - t0;
    const { stdout } = await run('ps', ['-o', 'rss=', '-p', String(proc.pid)]);
    return { ms, rssMiB: Number(stdout.trim()) / 1024 };
  } finally {
    if (proc.pid) process.kill(proc.pid, 'SIGKILL');
  }
}

type Summary = { p50: number; p99: number; samples: number };

/**
 * Send → start latency at a steady rate with an idle worker, in LATENCY_ROUNDS rounds (Celeriac,
 * BullMQ, Celery in turn in each round, so a noisy moment hits one round of each rather than one
 * system); each figure is the median of its rounds, and every round's is in the JSON.
 */
async function latency(ctx: BenchContext, admin: Redis, tag: string): Promise<Measurement[]> {
  const step = `send → start at ${RATE}/s, idle worker`;
  ctx.log(
    `${step}: ${LATENCY_TASKS} tasks each, worker concurrency 50, ${LATENCY_ROUNDS} rounds (median of the rounds)`,
  );
  const rounds: Array<Record<'celeriac' | 'bullmq' | 'celery', Summary>> = [];
  for (let r = 0; r < LATENCY_ROUNDS; r++) {
    const label = `${step}, round ${r + 1}/${LATENCY_ROUNDS}`;
    const celeriac = await latencyCeleriac(ctx, `${tag}-${r}`, label);
    const bullmq = await latencyBullmq(ctx, `${tag}-${r}`, label);
    const celery = await latencyCelery(admin, `${tag}-${r}`);
    ctx.log(
      `${label}: p99 celeriac ${celeriac.p99.toFixed(2)}, bullmq ${bullmq.p99.toFixed(2)}, celery ${celery.p99.toFixed(2)} ms`,
    );
    rounds.push({ celeriac, bullmq, celery });
  }
  const median = (who: 'celeriac' | 'bullmq' | 'celery', what: 'p50' | 'p99'): number => {
    const v = rounds.map((x) => x[who][what]).sort((x, y) => x - y);
    const mid = Math.floor(v.length / 2);
    return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  };
  const details = { rate: RATE, tasks: LATENCY_TASKS, rounds };
  const out: Measurement[] = (['p50', 'p99'] as const).map((what) => ({
    name: `send → start ${what} (median of ${LATENCY_ROUNDS} rounds)`,
    unit: 'ms',
    better: 'lower' as const,
    value: median('celeriac', what),
    peers: { bullmq: median('bullmq', what), celery: median('celery', what) },
    details,
  }));
  if (startup) out.push(startup);
  if (rss) out.push(rss);
  return out;
}

async function latencyCeleriac(ctx: BenchContext, tag: string, label: string): Promise<Summary> {
  const cq = `bench-lat-${tag}`;
  const cw = await tsChild('celeriac-worker.ts', [URL_, cq, '50', String(LATENCY_TASKS), 'latency']);
  const result = cw.go();
  await sleep(500);
  const { app, send } = celeriacClient();
  await atSteadyRate(
    LATENCY_TASKS,
    RATE,
    () => send(cq, monotonicMs()),
    (d) => ctx.progress(`celeriac ${label}`, d, LATENCY_TASKS),
  );
  const summary = latencySummary((await result).latencies ?? []);
  await app.close();
  return summary;
}

async function latencyBullmq(ctx: BenchContext, tag: string, label: string): Promise<Summary> {
  const bname = `lat-${tag}`;
  const bw = await tsChild('bullmq-worker.ts', [
    HOST,
    String(PORT),
    bname,
    '50',
    String(LATENCY_TASKS),
    'latency',
    `${PREFIX}bull`,
    String(DB),
  ]);
  const result = bw.go();
  await sleep(500);
  const bq = bullQueue(bname);
  await atSteadyRate(
    LATENCY_TASKS,
    RATE,
    () => bq.add('noop', { sentAt: monotonicMs() }),
    (d) => ctx.progress(`bullmq ${label}`, d, LATENCY_TASKS),
  );
  const summary = latencySummary((await result).latencies ?? []);
  await bq.obliterate({ force: true });
  await bq.close();
  return summary;
}

/** Celery (threads, 50), sent by Python at the same rate. */
async function latencyCelery(admin: Redis, tag: string): Promise<Summary> {
  const pq = `bench-latpy-${tag}`;
  const proc = spawn(PY, [`${HERE}celery_bench.py`, 'worker', PY_URL, pq, 'threads', '50'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, BENCH_PREFIX: PREFIX },
  });
  try {
    await sleep(3000);
    await pyJson(['latency', PY_URL, pq, String(LATENCY_TASKS), String(RATE)]);
    const end = Date.now() + 20_000;
    while ((await admin.llen(`${PREFIX}latency:${pq}`)) < LATENCY_TASKS && Date.now() < end) await sleep(20);
    return latencySummary((await admin.lrange(`${PREFIX}latency:${pq}`, 0, -1)).map(Number));
  } finally {
    if (proc.pid) process.kill(proc.pid, 'SIGKILL');
  }
}

async function pyJson(args: string[]): Promise<{ ms: number }> {
  const { stdout } = await run(PY, [`${HERE}celery_bench.py`, ...args], {
    timeout: 600_000,
    env: { ...process.env, BENCH_PREFIX: PREFIX },
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as { ms: number };
}

async function cleanup(admin: Redis, _tag: string): Promise<void> {
  await admin.del('mylist', 'key:__rand_int__'); // redis-benchmark's, in this db
  for (const pattern of [`${PREFIX}*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await admin.del(...keys);
    } while (cursor !== '0');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
