import { describe, expect, it } from 'vitest';
import { Ignore, Reject, Retry, TaskError } from '../../../src/index.js';
import { resolveRetry, retryDelay } from '../../../src/worker/backoff.js';
import { testApp, until } from '../../helpers/app.js';

class Flaky extends Error {}

describe('retries', () => {
  it('computes fixed and exponential backoff with a cap, and jitter within [d/2, d]', () => {
    const exp = resolveRetry({ backoff: 'exponential', base: '1s', cap: '5s', jitter: false });
    expect([0, 1, 2, 3, 4].map((n) => retryDelay(exp, n))).toEqual([1000, 2000, 4000, 5000, 5000]);
    const fixed = resolveRetry({ backoff: 'fixed', base: 300, jitter: false });
    expect(retryDelay(fixed, 7)).toBe(300);
    const jit = resolveRetry({ base: '1s', jitter: true });
    expect(retryDelay(jit, 1, () => 0)).toBe(1000);
    expect(retryDelay(jit, 1, () => 0.999)).toBeLessThanOrEqual(2000);
  });

  it('ctx.retry() re-runs with the same id and retries+1, storing RETRY in between', async () => {
    const app = testApp();
    const seen: Array<[string, number]> = [];
    const t = app.task(
      'retrying',
      (ctx) => {
        seen.push([ctx.id, ctx.retries]);
        if (ctx.retries < 2) throw ctx.retry({ countdown: 10 });
        return 'done';
      },
      { bind: true },
    );
    const r = await t.delay();
    const states: string[] = [];
    await r.watch((m) => states.push(m.status));
    await app.worker().start();
    expect(await r.get({ timeout: 3000 })).toBe('done');
    expect(seen).toEqual([
      [r.id, 0],
      [r.id, 1],
      [r.id, 2],
    ]);
    expect(states.filter((s) => s === 'RETRY')).toHaveLength(2);
  });

  it('autoretryFor retries matching errors up to retry.max, then fails with the last error', async () => {
    const app = testApp();
    let runs = 0;
    const t = app.task(
      'auto',
      () => {
        runs++;
        throw new Flaky('still flaky');
      },
      { autoretryFor: [Flaky], retry: { max: 2, base: 5, jitter: false } },
    );
    await app.worker().start();
    const r = await t.delay();
    const err = (await r.get({ timeout: 3000 }).catch((e: unknown) => e)) as TaskError;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.excType).toBe('Flaky');
    expect(runs).toBe(3);
  });

  it('an error not listed in autoretryFor fails at once', async () => {
    const app = testApp();
    let runs = 0;
    const t = app.task(
      'auto2',
      () => {
        runs++;
        throw new RangeError('bad');
      },
      { autoretryFor: [Flaky] },
    );
    await app.worker().start();
    await expect((await t.delay()).get({ timeout: 2000 })).rejects.toBeInstanceOf(TaskError);
    expect(runs).toBe(1);
  });

  it('ctx.retry() past max returns the cause (or MaxRetriesExceededError) so the task fails', async () => {
    const app = testApp();
    const t = app.task(
      'capped',
      (ctx) => {
        throw ctx.retry({ countdown: 1, maxRetries: 1 });
      },
      { bind: true },
    );
    await app.worker().start();
    const err = (await (await t.delay()).get({ timeout: 3000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('MaxRetriesExceededError');
  });

  it('Retry thrown directly retries; Reject dead-letters with its reason; Ignore stores nothing', async () => {
    const app = testApp();
    let n = 0;
    const retry = app.task('r', () => {
      if (n++ === 0) throw new Retry({ countdownMs: 5 });
      return 'second';
    });
    const reject = app.task('rej', () => {
      throw new Reject('not for us');
    });
    const ignore = app.task('ign', () => {
      throw new Ignore();
    });
    const worker = app.worker();
    await worker.start();
    expect(await (await retry.delay()).get({ timeout: 2000 })).toBe('second');
    const rejected = await reject.delay();
    const ignored = await ignore.delay();
    const transport = await app.transport();
    await until(async () => (await transport.deadLetters.list('celery')).length === 1);
    const [dead] = await transport.deadLetters.list('celery');
    expect(dead?.reason).toContain('not for us');
    expect(dead?.message?.headers.id).toBe(rejected.id);
    await until(() => worker.stats.received === 4);
    await new Promise((r) => setTimeout(r, 20));
    expect(await ignored.info()).toBeNull();
  });
});
