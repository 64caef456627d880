/**
 * Monitoring events over real Redis (db 9, FLUSHDB here): the cross-language scenarios shared with
 * AMQP (test/helpers/events-scenarios.ts: Python's EventReceiver and `celery events --dump` read a
 * Celeriac worker, `celeriac events --dump` reads a Python -E worker, `celeriac status`), and
 * `celeriac worker -E --metrics-port`.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celeriac, receiveEvents } from '../../../src/index.js';
import { describeEventsScenarios } from '../../helpers/events-scenarios.js';
import { startCli, until } from '../../integration/cli/helpers.js';
import { inspector, redisUrl } from '../redis/helpers.js';

const DB = 9;
const URL = redisUrl({ db: DB });
const admin: Redis = inspector(DB);

beforeAll(async () => {
  await admin.connect();
  await admin.flushdb();
});

afterAll(async () => {
  admin.disconnect();
});

describeEventsScenarios({
  label: 'Redis',
  urls: () => ({ broker: URL, results: URL }),
  // Its PSUBSCRIBE follows the banner.
  dumpConsuming: () => new Promise((r) => setTimeout(r, 500)),
});

describe('celeriac worker -E --metrics-port (CLI)', () => {
  it('sends monitoring events and serves /metrics with the counts of what it ran', async () => {
    const env = { CELERIAC_BROKER_URL: URL, CELERIAC_RESULTS_URL: URL };
    const app = new Celeriac({ broker: URL, results: URL, logger: 'silent' });
    const got: Array<Record<string, unknown>> = [];
    const receiver = await receiveEvents(app, (e) => got.push(e));
    const node = `ts-cli-${process.pid}@test`;
    const cli = startCli(
      [
        'worker',
        '--app',
        'examples/basic/app.ts',
        '-Q',
        'ts-cli',
        '-n',
        node,
        '-E',
        '--metrics-port',
        '0',
        '--loglevel',
        'warn',
      ],
      env,
    );
    try {
      await until(() => /metrics on :\d+\/metrics/.test(cli.output().stdout), 'the worker to be ready');
      const port = Number(/metrics on :(\d+)\/metrics/.exec(cli.output().stdout)?.[1]);
      const results = await Promise.all(
        [1, 2, 3].map((i) => app.sendTask('tasks.add', [i, i], {}, { queue: 'ts-cli' })),
      );
      for (const r of results) await r.get({ timeout: 10_000 });
      await until(
        () => got.filter((e) => e.type === 'task-succeeded' && e.hostname === node).length === 3,
        'three task-succeeded events',
      );
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('celeriac_tasks_total{task="tasks.add",state="succeeded"} 3');
      expect(text).toContain('celeriac_queue_depth{queue="ts-cli"} 0');
      cli.kill('SIGTERM');
      expect((await cli.result).code).toBe(0);
      await until(
        () => got.some((e) => e.type === 'worker-offline' && e.hostname === node),
        'worker-offline',
      );
      expect(got.find((e) => e.hostname === node)?.type).toBe('worker-online');
    } finally {
      if (cli.exitCode === null) cli.kill('SIGKILL');
      await receiver.close();
      await app.close();
    }
  }, 60_000);
});
