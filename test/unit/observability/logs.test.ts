import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Celeriac } from '../../../src/index.js';
import { testApp } from '../../helpers/app.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A pino logger whose JSON lines are kept in memory. */
function memoryLogger(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return {
    logger,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('structured logs', () => {
  it('every task log line carries the task id, name and retries', async () => {
    const { logger, lines } = memoryLogger();
    const app = testApp({ logger });
    let n = 0;
    const flaky = app.task(
      'tasks.flaky',
      (ctx) => {
        if (++n < 2) throw ctx.retry({ countdown: 1 });
        throw new Error('still broken');
      },
      { bind: true },
    );
    const worker = app.worker();
    await worker.start();
    const r = await flaky.delay();
    await r.get({ timeout: 5000 }).catch(() => undefined);
    await worker.stop();
    const taskLines = lines().filter((l) => l.msg === 'task retry scheduled' || l.msg === 'task failed');
    // (The retry's line may come after the second run's: it is written once the first delivery is acked.)
    expect(
      taskLines.map((l) => [l.msg, l.taskId, l.task, l.retries]).sort((a, b) => Number(a[3]) - Number(b[3])),
    ).toEqual([
      ['task retry scheduled', r.id, 'tasks.flaky', 0],
      ['task failed', r.id, 'tasks.flaky', 1],
    ]);
  });

  it('the default logger redacts passwords and tokens', async () => {
    const script =
      "import('./src/logging.ts').then((m) => { m.createLogger('info').info({ password: 'hunter2', token: 'tok-123', url: { password: 'pw-url' }, opts: { password: 'nested' } }, 'hello'); })";
    const stderr = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT }, (err, _out, errText) =>
        err ? reject(err) : resolve(errText),
      ),
    );
    const line = JSON.parse(stderr.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    expect(line.msg).toBe('hello');
    expect(stderr).not.toMatch(/hunter2|tok-123|pw-url|nested/);
    expect(line.password).toBe('***');
  });

  it('a broker URL with a password never reaches a log line or an error in clear', async () => {
    const { logger, lines } = memoryLogger();
    const app = new Celeriac({ broker: 'redis://user:s3cr3t-pw@127.0.0.1:1/0', logger });
    let message = '';
    try {
      await app.transport();
    } catch (err) {
      message = String(err);
    } finally {
      await app.close();
    }
    expect(message).not.toBe('');
    expect(message).not.toContain('s3cr3t-pw');
    expect(JSON.stringify(lines())).not.toContain('s3cr3t-pw');
  });
});
