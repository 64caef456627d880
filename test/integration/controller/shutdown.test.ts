import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celeriac } from '../../../src/index.js';
import { amqpUrl, freshVhost } from '../amqp/helpers.js';
import { isolatedRedisUrl, REDIS_HOST, REDIS_PORT, redisAnswers, startCli, until } from '../cli/helpers.js';

/**
 * Graceful shutdown of `celeriac worker` as a child process on Redis: SIGTERM mid-run, then a
 * second worker. Every task ends with a result, and no task that finished before the deadline runs
 * twice (the tasks log every start and finish to a file).
 */
const { url: redisUrl, prefix } = isolatedRedisUrl('shutdown');
let vhost: { vhost: string; drop: () => Promise<void> } | undefined;
const APP = 'test/integration/controller/fixtures/shutdown-app.ts';

beforeAll(async () => {
  if (!(await redisAnswers())) throw new Error(`Redis is not answering on ${REDIS_HOST}:${REDIS_PORT}`);
  vhost = await freshVhost('shutdown');
});

afterAll(async () => {
  await vhost?.drop();
  const redis = new Redis({ host: REDIS_HOST, port: REDIS_PORT, lazyConnect: true });
  await redis.connect();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
});

function runs(file: string): Array<{ kind: 'start' | 'done'; id: string; pid: number }> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, id, pid] = line.split(' ');
      return { kind: kind as 'start' | 'done', id: id as string, pid: Number(pid) };
    });
}

/** Results on Redis in both runs; the broker is Redis, then RabbitMQ (a vhost of this file). */
const brokers: Array<[string, () => string]> = [
  ['Redis', () => redisUrl],
  ['RabbitMQ', () => amqpUrl((vhost as { vhost: string }).vhost)],
];

describe.each(brokers)('celeriac worker: graceful shutdown on %s', (_name, brokerUrl) => {
  const url = {
    get broker() {
      return brokerUrl();
    },
  };
  const envOf = () => ({ CELERIAC_BROKER_URL: url.broker, CELERIAC_RESULTS_URL: redisUrl });
  it('SIGTERM mid-run: in-flight tasks finish or come back, reserved ones are requeued, nothing is lost or run twice', async () => {
    const queue = 'shutdown';
    const log = join(mkdtempSync(join(tmpdir(), 'celeriac-shutdown-')), 'runs.log');
    const client = new Celeriac({ broker: url.broker, results: redisUrl, logger: 'silent' });
    const args = ['worker', '--app', APP, '--queues', queue, '--concurrency', '4', '--loglevel', 'warn'];
    const first = startCli([...args, '--name', 'first@here', '--shutdown-timeout', '1.5'], {
      ...envOf(),
      SHUTDOWN_LOG: log,
    });
    let second: ReturnType<typeof startCli> | null = null;
    try {
      await until(() => first.output().stdout.includes('ready'), 'the first worker to be ready');
      // 24 short tasks (300 ms) and 4 long ones (8 s, beyond the 1.5 s deadline), interleaved.
      const ids: string[] = [];
      for (let i = 0; i < 28; i++) {
        const ms = i % 7 === 3 ? 8000 : 300;
        ids.push((await client.sendTask('shutdown.work', [ms], {}, { queue })).id);
      }
      await until(
        () => runs(log).filter((r) => r.kind === 'done').length >= 4,
        'some tasks to finish',
        15_000,
      );
      const t0 = Date.now();
      first.kill('SIGTERM');
      const end = await first.result;
      expect(end.code, end.stderr).toBe(0);
      expect(Date.now() - t0).toBeLessThan(6000);
      expect(end.stdout).toMatch(/SIGTERM: stopping \(running tasks may finish within 1\.5s/);
      expect(end.stdout).toMatch(/celeriac worker stopped: \d+ succeeded/);
      const firstPid = first.pid as number;
      const before = runs(log);
      const finishedByFirst = new Set(
        before.filter((r) => r.kind === 'done' && r.pid === firstPid).map((r) => r.id),
      );
      expect(finishedByFirst.size).toBeGreaterThanOrEqual(4);
      expect(finishedByFirst.size).toBeLessThan(ids.length);

      second = startCli([...args, '--name', 'second@here'], { ...envOf(), SHUTDOWN_LOG: log });
      await until(() => second?.output().stdout.includes('ready') ?? false, 'the second worker to be ready');
      // No task lost: every id gets its result.
      const values = await Promise.all(
        ids.map((id) => client.asyncResult<number>(id).get({ timeout: 30_000 })),
      );
      expect(values.filter((v) => v === 8000)).toHaveLength(4);
      const all = runs(log);
      const starts = new Map<string, number>();
      for (const r of all) if (r.kind === 'start') starts.set(r.id, (starts.get(r.id) ?? 0) + 1);
      // Each task ran at least once; those that finished before the deadline ran exactly once.
      for (const id of ids) expect(starts.get(id) ?? 0).toBeGreaterThanOrEqual(1);
      for (const id of finishedByFirst) expect(starts.get(id), id).toBe(1);
      // The long tasks cut by the deadline ran again on the second worker.
      const secondPid = second.pid as number;
      const rerun = all.filter(
        (r) => r.kind === 'start' && r.pid === secondPid && (starts.get(r.id) ?? 0) > 1,
      );
      expect(rerun.length).toBeGreaterThanOrEqual(1);
    } finally {
      for (const c of [first, second])
        if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await client.close();
    }
  }, 90_000);

  it('a second SIGTERM is a cold stop: the running task is given back at once and runs again elsewhere', async () => {
    const queue = 'shutdown-cold';
    const log = join(mkdtempSync(join(tmpdir(), 'celeriac-shutdown-')), 'runs.log');
    const client = new Celeriac({ broker: url.broker, results: redisUrl, logger: 'silent' });
    const args = ['worker', '--app', APP, '--queues', queue, '--concurrency', '1', '--loglevel', 'warn'];
    const first = startCli([...args, '--shutdown-timeout', '60'], { ...envOf(), SHUTDOWN_LOG: log });
    let second: ReturnType<typeof startCli> | null = null;
    try {
      await until(() => first.output().stdout.includes('ready'), 'the worker to be ready');
      const long = await client.sendTask('shutdown.work', [20_000], {}, { queue });
      const short = await client.sendTask('shutdown.work', [10], {}, { queue });
      await until(
        () => runs(log).some((r) => r.kind === 'start' && r.id === long.id),
        'the long task to start',
      );
      const t0 = Date.now();
      first.kill('SIGTERM');
      await until(() => first.output().stdout.includes('stopping'), 'the worker to start stopping');
      first.kill('SIGTERM');
      const end = await first.result;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(end.code).toBe(1);
      expect(end.stderr).toMatch(/second SIGTERM: exiting now/);
      // Both come back at once (not after a visibility timeout): a new worker runs them.
      // Concurrency 2: the long task comes back first (it is the older message) and must not hold the short one.
      second = startCli([...args, '--concurrency', '2', '--name', 'cold2@here'], {
        ...envOf(),
        SHUTDOWN_LOG: log,
      });
      expect(await short.get({ timeout: 15_000 })).toBe(10);
      await until(
        () => runs(log).filter((r) => r.kind === 'start' && r.id === long.id).length === 2,
        'the long task to start again',
        15_000,
      );
    } finally {
      for (const c of [first, second])
        if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await client.close();
    }
  }, 60_000);
});
