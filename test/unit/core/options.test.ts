import { describe, expect, it } from 'vitest';
import { testApp, until } from '../../helpers/app.js';

describe('call options on the memory broker', () => {
  it('countdown parks the message in the broker and runs it when due, not before', async () => {
    const app = testApp();
    const ran: number[] = [];
    const t = app.task('t', () => ran.push(Date.now()));
    const worker = app.worker({ etaHorizon: 100 });
    await worker.start();
    const sent = Date.now();
    const r = await t.applyAsync({ countdown: 400 });
    await until(() => worker.stats.received >= 1);
    expect(worker.reserved).toBe(0); // parked in the broker, not held by the worker
    await r.get({ timeout: 3000 });
    expect((ran[0] as number) - sent).toBeGreaterThanOrEqual(390);
  });

  it('a short eta waits in the worker and runs on time', async () => {
    const app = testApp();
    const t = app.task('t', () => Date.now());
    await app.worker().start();
    const eta = new Date(Date.now() + 200);
    const r = await t.applyAsync({ eta });
    expect(await r.get({ timeout: 3000 })).toBeGreaterThanOrEqual(eta.getTime());
  });

  it('an expired task is REVOKED, not run', async () => {
    const app = testApp();
    let runs = 0;
    const t = app.task('t', () => ++runs);
    const r = await t.applyAsync({ expires: new Date(Date.now() - 1000) });
    await app.worker().start();
    await expect(r.get({ timeout: 2000 })).rejects.toThrow(/expired/);
    expect(await r.state()).toBe('REVOKED');
    expect(runs).toBe(0);
  });

  it('priority 9 runs before 0 when both wait', async () => {
    const app = testApp();
    const order: string[] = [];
    const t = app.task('t', (x: string) => order.push(x));
    await t.applyAsync({ args: ['low'], priority: 0 });
    await t.applyAsync({ args: ['mid'], priority: 5 });
    await t.applyAsync({ args: ['high'], priority: 9 });
    await app.worker({ concurrency: 1, prefetch: 0 }).start();
    await until(() => order.length === 3);
    expect(order).toEqual(['high', 'mid', 'low']);
  });

  it('queue, routes and custom headers reach the worker', async () => {
    const app = testApp({ routes: { 'mail.*': { queue: 'mail' } } });
    const seen: Array<[string, unknown]> = [];
    const send = app.task('mail.send', (ctx) => seen.push([ctx.queue, ctx.headers['x-trace']]), {
      bind: true,
    });
    const other = app.task('other', (ctx) => seen.push([ctx.queue, null]), { bind: true });
    await app.worker({ queues: ['mail', 'celery', 'special'] }).start();
    await (await send.applyAsync({ headers: { 'x-trace': 'abc' } })).get({ timeout: 2000 });
    await (await other.applyAsync({ queue: 'special' })).get({ timeout: 2000 });
    expect(seen).toEqual([
      ['mail', 'abc'],
      ['special', null],
    ]);
  });

  it('rejects bad call options with errors naming them', async () => {
    const app = testApp();
    const t = app.task('t', () => 1);
    await expect(t.applyAsync({ priority: 10 })).rejects.toThrow(/priority/);
    await expect(t.applyAsync({ countdown: 'soon' as never })).rejects.toThrow(/countdown/);
    await expect(t.applyAsync({ countdown: 1, eta: new Date() })).rejects.toThrow(/countdown or eta/);
  });
});
