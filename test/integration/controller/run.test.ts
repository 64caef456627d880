import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celeriac } from '../../../src/index.js';
import {
  isolatedRedisUrl,
  REDIS_HOST,
  REDIS_PORT,
  ROOT,
  redisAnswers,
  startCli,
  until,
} from '../cli/helpers.js';

/**
 * `celeriac run --app FILE`: an app in a temporary folder whose task lives in its own file. The
 * test edits that file and sees the new code run, through a real broker so it can send tasks.
 */
const { url, prefix } = isolatedRedisUrl('run');
const dir = mkdtempSync(join(ROOT, 'test/integration/controller/.tmp-run-'));

beforeAll(async () => {
  if (!(await redisAnswers())) throw new Error(`Redis is not answering on ${REDIS_HOST}:${REDIS_PORT}`);
  writeFileSync(
    join(dir, 'app.ts'),
    [
      "import { Celeriac } from '../../../../src/index.js';",
      "import { version } from './tasks.js';",
      'export const app = new Celeriac({});',
      "app.task('dev.version', () => version(), { queue: 'dev' });",
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'tasks.ts'), "export const version = () => 'v1';\n");
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
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

describe('celeriac run', () => {
  it('restarts the worker when a task file changes, and the new code runs', async () => {
    const client = new Celeriac({ broker: url, results: url, logger: 'silent' });
    const dev = startCli([
      'run',
      '--app',
      join(dir, 'app.ts'),
      '--broker',
      url,
      '--results',
      url,
      '--loglevel',
      'warn',
    ]);
    const readies = () => (dev.output().stdout.match(/celeriac run: worker .* ready/g) ?? []).length;
    try {
      await until(() => readies() === 1, 'the first worker to be ready');
      expect(dev.output().stdout).toMatch(/watching .*\.tmp-run-.* for changes/);
      expect(
        await (await client.sendTask('dev.version', [], {}, { queue: 'dev' })).get({ timeout: 10_000 }),
      ).toBe('v1');

      writeFileSync(join(dir, 'tasks.ts'), "export const version = () => 'v2';\n");
      await until(() => readies() === 2, 'the restarted worker to be ready');
      expect(dev.output().stdout).toMatch(/tasks\.ts changed: restarting/);
      expect(
        await (await client.sendTask('dev.version', [], {}, { queue: 'dev' })).get({ timeout: 10_000 }),
      ).toBe('v2');

      // A file it does not watch changes nothing.
      writeFileSync(join(dir, 'notes.txt'), 'hello\n');
      await new Promise((r) => setTimeout(r, 600));
      expect(readies()).toBe(2);

      dev.kill('SIGTERM');
      const end = await dev.result;
      expect(end.code).toBe(0);
    } finally {
      if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGKILL');
      await client.close();
    }
  }, 60_000);

  it('runs on memory:// by default', async () => {
    const dev = startCli(['run', '--app', join(dir, 'app.ts'), '--no-watch', '--loglevel', 'warn']);
    try {
      await until(() => dev.output().stdout.includes('ready'), 'the worker to be ready');
      expect(dev.output().stdout).toMatch(/ready: broker memory:\/\/, queues celery,dev, /);
      dev.kill('SIGTERM');
      expect((await dev.result).code).toBe(0);
    } finally {
      if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGKILL');
    }
  });
});
