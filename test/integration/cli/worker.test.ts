import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isolatedRedisUrl,
  REDIS_HOST,
  REDIS_PORT,
  redisAnswers,
  runCli,
  startCli,
  until,
} from './helpers.js';

/**
 * `celeriac worker` and `celeriac call`, `dead`, `purge` in separate processes over a real Redis
 * (started by the machine on localhost:6379), with keys isolated under a prefix for this file.
 */
const { url, prefix } = isolatedRedisUrl('cli-worker');
const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULTS_URL: url };
const APP = 'examples/basic/app.ts';

beforeAll(async () => {
  if (!(await redisAnswers())) {
    throw new Error(
      `Redis is not answering on ${REDIS_HOST}:${REDIS_PORT}: the CLI integration tests need it (see scripts/test-setup.sh)`,
    );
  }
});

afterAll(async () => {
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

describe('celeriac worker + call over Redis', () => {
  it('runs tasks sent by `call`, reports failures, dead-letters unknown tasks, and stops on SIGTERM', async () => {
    const queue = 'cli-test';
    const worker = startCli(
      [
        'worker',
        '--app',
        APP,
        '--queues',
        queue,
        '--concurrency',
        '4',
        '--name',
        'cli-test@here',
        '--loglevel',
        'warn',
      ],
      env,
    );
    try {
      await until(() => worker.output().stdout.includes('ready'), 'the worker to be ready');
      expect(worker.output().stdout).toMatch(
        /celeriac worker cli-test@here ready: .*queues cli-test, concurrency 4, 5 tasks/,
      );

      const ok = await runCli(
        ['call', 'tasks.add', '--args', '[2,3]', '--queue', queue, '--wait', '--timeout', '10'],
        env,
      );
      expect(ok.code, ok.stderr).toBe(0);
      const [id, value] = ok.stdout.trim().split('\n');
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(value).toBe('5');

      const kw = await runCli(
        ['call', 'tasks.greet', '--kwargs', '{"name":"Ada","greeting":"Hi"}', '--queue', queue, '--wait'],
        env,
      );
      expect(kw.stdout.trim().split('\n')[1]).toBe('"Hi, Ada!"');

      const failed = await runCli(
        ['call', 'tasks.sqrt', '--args', '[-4]', '--queue', queue, '--wait', '--timeout', '10'],
        env,
      );
      expect(failed.code).toBe(1);
      expect(failed.stderr.trim()).toBe('FAILURE RangeError: cannot take the square root of -4');

      const unknown = await runCli(
        ['call', 'tasks.nope', '--queue', queue, '--wait', '--timeout', '10'],
        env,
      );
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/FAILURE NotRegistered/);
      const unknownId = unknown.stdout.trim();

      const list = await runCli(['dead', 'list', queue], env);
      expect(list.code, list.stderr).toBe(0);
      for (const column of ['id', 'reason', 'task', 'at']) expect(list.stdout).toContain(column);
      expect(list.stdout).toContain(`tasks.nope[${unknownId}]`);
      const json = await runCli(['dead', 'list', queue, '--json', '--limit', '1'], env);
      const letter = JSON.parse(json.stdout.trim()) as { id: string; reason: string };
      expect(letter.reason).toMatch(/tasks\.nope/);

      // Replaying puts it back: the worker dead-letters it again (it still does not know the task).
      const replay = await runCli(['dead', 'replay', queue, '--id', letter.id], env);
      expect(replay.stdout.trim()).toBe(`replayed 1 dead letter onto ${queue}`);
      await until(
        () => (worker.output().stderr.match(/message dead-lettered/g) ?? []).length >= 2,
        'the replayed letter to be dead-lettered again',
        10_000,
      ).catch(() => undefined);

      const purgeDead = await runCli(['dead', 'purge', queue, '--force'], env);
      expect(purgeDead.code).toBe(0);
      expect(purgeDead.stdout.trim()).toBe(`deleted 1 dead letter of ${queue}`);
      expect((await runCli(['dead', 'list', queue], env)).stdout.trim()).toBe(`no dead letters in ${queue}`);

      // Graceful stop: a running task finishes before the worker exits.
      const slow = startCli(
        ['call', 'tasks.sleep', '--args', '[1500]', '--queue', queue, '--wait', '--timeout', '20'],
        env,
      );
      await until(() => slow.output().stdout.trim() !== '', 'the slow task to be sent');
      await new Promise((r) => setTimeout(r, 300));
      worker.kill('SIGTERM');
      const slowResult = await slow.result;
      expect(slowResult.stdout.trim().split('\n')[1]).toBe('1500');
      const end = await worker.result;
      expect(end.code).toBe(0);
      expect(end.stdout).toMatch(/SIGTERM: stopping/);
      expect(end.stdout).toMatch(
        /celeriac worker stopped: 3 succeeded, 1 failed, 0 retried, 2 dead-lettered/,
      );
    } finally {
      if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    }
  });

  it('a second signal exits at once, leaving the running task to be redelivered', async () => {
    const queue = 'cli-test-hard';
    const worker = startCli(['worker', '--app', APP, '--queues', queue, '--loglevel', 'warn'], env);
    try {
      await until(() => worker.output().stdout.includes('ready'), 'the worker to be ready');
      const sent = await runCli(['call', 'tasks.sleep', '--args', '[20000]', '--queue', queue], env);
      expect(sent.code).toBe(0);
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      worker.kill('SIGTERM');
      await until(() => worker.output().stdout.includes('stopping'), 'the worker to start stopping');
      worker.kill('SIGTERM');
      const end = await worker.result;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(end.code).toBe(1);
      expect(end.stderr).toMatch(/second SIGTERM: exiting now/);
    } finally {
      if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    }
  });

  it('purge asks for --force off a terminal, then empties the queue', async () => {
    const queue = 'cli-test-purge';
    for (let i = 0; i < 3; i++)
      expect((await runCli(['call', 'tasks.add', '--args', `[${i},1]`, '--queue', queue], env)).code).toBe(0);
    const refused = await runCli(['purge', queue], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(
      `error: delete the 3 messages waiting in queue ${queue}: refused without --force (not on a terminal, nobody to confirm)`,
    );
    const purged = await runCli(['purge', queue, '--force'], env);
    expect(purged.stdout.trim()).toBe(`purged 3 messages from ${queue}`);
  });

  it('refuses a memory:// result store next to a shared broker', async () => {
    const r = await runCli(['worker', '--broker', url, '--results', 'memory://']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^error: result store memory:\/\/ is not shared between processes/);
  });

  it('runs from the broker URL alone, without an app file', async () => {
    const r = await runCli([
      'call',
      'tasks.add',
      '--args',
      '[1,1]',
      '--queue',
      'cli-test-nobody',
      '--broker',
      url,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    expect((await runCli(['purge', 'cli-test-nobody', '--force', '--broker', url])).stdout.trim()).toBe(
      'purged 1 message from cli-test-nobody',
    );
  });
});
