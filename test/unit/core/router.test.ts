import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/index.js';
import { testApp, until } from '../../helpers/app.js';

const name = () => `r${Math.random().toString(36).slice(2)}`;

describe('several brokers in one app (the Router)', () => {
  it('routes by task name pattern and by task option to named brokers; one worker consumes both', async () => {
    const [a, b, results] = [name(), name(), name()];
    const app = testApp({
      broker: `memory://${a}`,
      brokers: { other: `memory://${b}` },
      results: `memory://${results}`,
      routes: { 'billing.*': { queue: 'billing', broker: 'other' } },
    });
    const charge = app.task('billing.charge', (n: number) => n * 2);
    const mail = app.task('mail.send', (to: string) => `sent ${to}`);
    const audit = app.task('audit.log', (x: string) => x, { queue: 'audit', broker: 'other' });
    const r1 = await charge.delay(21);
    const r2 = await mail.delay('ada');
    const r3 = await audit.delay('x');
    // Each message sits on its own broker before any worker runs.
    expect(await (await app.transport('other')).depth('billing')).toBe(1);
    expect(await (await app.transport('other')).depth('audit')).toBe(1);
    expect(await (await app.transport()).depth('celery')).toBe(1);
    expect(await (await app.transport()).depth('billing')).toBe(0);
    const worker = app.worker({ queues: ['celery', 'billing', 'audit'] });
    await worker.start();
    expect(await r1.get({ timeout: 2000 })).toBe(42);
    expect(await r2.get({ timeout: 2000 })).toBe('sent ada');
    expect(await r3.get({ timeout: 2000 })).toBe('x');
    const h = await app.health();
    expect(Object.keys(h.components ?? {})).toEqual(expect.arrayContaining(['broker', 'broker:other']));
  });

  it('acks, retries and dead letters go to the broker the message came from', async () => {
    const [a, b] = [name(), name()];
    const app = testApp({
      broker: `memory://${a}`,
      brokers: { other: `memory://${b}` },
      routes: { 'x.*': { queue: 'xq', broker: 'other' } },
    });
    let n = 0;
    const flaky = app.task(
      'x.flaky',
      (ctx) => {
        if (n++ === 0) throw ctx.retry({ countdown: 5 });
        return 'ok';
      },
      { bind: true },
    );
    await app.worker({ queues: ['xq'] }).start();
    expect(await (await flaky.delay()).get({ timeout: 2000 })).toBe('ok');
    await app.sendTask('x.unknown');
    const other = await app.transport('other');
    await until(async () => (await other.deadLetters.list('xq')).length === 1);
    expect((await (await app.transport()).deadLetters.list('xq')).length).toBe(0);
  });

  it('refuses a route or task that names an unknown broker, and one queue on two brokers', () => {
    expect(() => testApp({ routes: { 'a.*': { queue: 'a', broker: 'nope' } } })).toThrow(
      /names broker 'nope'/,
    );
    const app = testApp({ brokers: { other: `memory://${name()}` } });
    expect(() => app.task('t', () => 1, { broker: 'nope' })).toThrow(ConfigError);
    app.task('t1', () => 1, { queue: 'shared', broker: 'other' });
    expect(() => app.task('t2', () => 1, { queue: 'shared', broker: 'default' })).toThrow(
      /already on 'other'/,
    );
    expect(() => testApp({ brokers: { default: 'memory://' } })).toThrow(/'default' is the name of `broker`/);
  });
});
