import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PayloadError } from '../../../src/index.js';
import { subscriberTaskId } from '../../../src/messages/ids.js';
import { testApp, until } from '../../helpers/app.js';

describe('events', () => {
  it('publish() delivers the payload to every subscriber, each with its own derived id', async () => {
    const app = testApp();
    const got: Record<string, unknown[]> = {};
    const mk = (name: string) =>
      app.task(name, (user: { id: string; email: string }) => {
        got[name] = [...(got[name] ?? []), user];
        return name;
      });
    const welcome = mk('emails.welcome');
    const trial = mk('billing.trial');
    const registered = app.event('user.registered', z.object({ id: z.string(), email: z.email() }));
    registered.subscribe(welcome).subscribe(trial);
    await app.worker().start();
    const published = await registered.publish({ id: '42', email: 'ada@example.com' });
    expect([...published.results.keys()].sort()).toEqual(['billing.trial', 'emails.welcome']);
    for (const [name, r] of published.results) {
      expect(r.id).toBe(subscriberTaskId(published.id, name));
      expect(await r.get({ timeout: 2000 })).toBe(name);
    }
    expect(got['emails.welcome']).toEqual([{ id: '42', email: 'ada@example.com' }]);
    expect(got['billing.trial']).toEqual([{ id: '42', email: 'ada@example.com' }]);
  });

  it('refuses a payload that fails the schema at publish(), before any broker', async () => {
    const app = testApp();
    const e = app.event('user.registered', z.object({ id: z.string(), email: z.email() }));
    e.subscribe('somewhere.else');
    await expect(e.publish({ id: '1', email: 'nope' })).rejects.toBeInstanceOf(PayloadError);
    await expect(e.publish({ id: '1', email: 'nope' })).rejects.toThrow(/email/);
    expect(await (await app.transport()).depth('celery')).toBe(0);
  });

  it("one failing subscriber never blocks or loses another subscriber's copy", async () => {
    const app = testApp();
    let okRuns = 0;
    const ok = app.task('ok', () => ++okRuns);
    const bad = app.task(
      'bad',
      () => {
        throw new Error('subscriber down');
      },
      { retry: { max: 1, base: 5 }, autoretryFor: [Error] },
    );
    const e = app.event('thing.happened');
    e.subscribe(bad).subscribe(ok);
    await app.worker({ concurrency: 1 }).start();
    const p = await e.publish({ n: 1 });
    expect(await p.results.get('ok')?.get({ timeout: 2000 })).toBe(1);
    await expect(p.results.get('bad')?.get({ timeout: 2000 })).rejects.toThrow(/subscriber down/);
    expect(okRuns).toBe(1);
  });

  it('subscribers by name get the fields as kwargs on the wire, with the event header', async () => {
    const app = testApp();
    const e = app.event('order.paid');
    e.subscribe('py.tasks.record_payment', { queue: 'py' });
    await e.publish({ order: 7, amount: 12.5 });
    const transport = await app.transport();
    const seen: unknown[] = [];
    const consumer = await transport.consume(
      ['py'],
      (d) => {
        seen.push(d.message);
        void transport.ack(d);
      },
      { prefetch: 1 },
    );
    await until(() => seen.length === 1);
    await consumer.cancel();
    const msg = seen[0] as { headers: Record<string, unknown>; body: string };
    expect(msg.headers.task).toBe('py.tasks.record_payment');
    expect(msg.headers.celeriac_event).toBe('order.paid');
    expect(JSON.parse(msg.body)).toEqual([
      [],
      { order: 7, amount: 12.5 },
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);
  });

  it('subscriptions registered in the broker by another service are reached without naming them', async () => {
    const name = `shared${Math.random().toString(36).slice(2)}`;
    const consumerApp = testApp({ broker: `memory://${name}`, results: `memory://${name}` });
    const ran: unknown[] = [];
    const audit = consumerApp.task('audit.log', (p: unknown) => ran.push(p));
    consumerApp.event('user.deleted').subscribe(audit);
    await consumerApp.worker().start(); // registers the subscription in the broker
    const publisherApp = testApp({ broker: `memory://${name}`, results: `memory://${name}` });
    const p = await publisherApp.event('user.deleted').publish({ id: 'u1' });
    expect(await p.results.get('audit.log')?.get({ timeout: 2000 })).toBe(1);
    expect(ran).toEqual([{ id: 'u1' }]);
  });
});
