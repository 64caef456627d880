import { describe, expect, it } from 'vitest';
import type { Delivery, WireMessage } from '../../../src/index.js';
import { parseCeleryDate } from '../../../src/messages/codec.js';
import { loadFixture } from '../../fixtures.js';
import { testApp, until } from '../../helpers/app.js';

type Env = { headers: Record<string, unknown>; properties: Record<string, unknown> };
interface Captured {
  envelope: Env;
  body_utf8: string;
}

/** The messages of a redis-* fixture, in publish order (LRANGE returns newest first). */
function fixtureMessages(name: string): Captured[] {
  const f = loadFixture(name) as unknown as { messages: Captured[] };
  return [...f.messages].reverse();
}

/** Publishes with `send`, then takes the wire message off the memory broker. */
async function capture(send: (app: ReturnType<typeof testApp>) => Promise<unknown>): Promise<WireMessage> {
  const app = testApp();
  await send(app);
  const transport = await app.transport();
  const got: Delivery[] = [];
  const consumer = await transport.consume(['celery'], (d) => got.push(d), { prefetch: 1 });
  await until(() => got.length === 1);
  await consumer.cancel();
  return got[0]?.message as WireMessage;
}

/** Same header names in the same order, same values except ids, times and the sender's identity. */
function expectSameHeaders(ours: Record<string, unknown>, theirs: Record<string, unknown>) {
  expect(Object.keys(ours)).toEqual(Object.keys(theirs));
  const varying = new Set(['id', 'root_id', 'eta', 'expires', 'origin', 'lang']);
  for (const key of Object.keys(theirs))
    if (!varying.has(key)) expect([key, ours[key]]).toEqual([key, theirs[key]]);
  expect(ours.root_id).toBe(ours.id);
  expect(ours.lang).toBe('js');
  expect(ours.origin).toMatch(/^gen\d+@/);
}

describe('messages built through the public API match what Python Celery sends', () => {
  it('delay(2, 3) matches add.apply_async((2, 3))', async () => {
    const [py] = fixtureMessages('redis-apply_async-basic');
    const ours = await capture(async (app) =>
      app.task('tasks.add', (a: number, b: number) => a + b).delay(2, 3),
    );
    expectSameHeaders(ours.headers, py!.envelope.headers);
    expect(ours.body).toBe(py!.body_utf8);
    expect(ours.properties.correlation_id).toBe(ours.headers.id);
    expect(ours.properties.delivery_mode).toBe(2);
    expect(ours.priority).toBe(0);
  });

  it('countdown sets eta = now + countdown in UTC with +00:00, like countdown=60', async () => {
    const [py] = fixtureMessages('redis-countdown-eta');
    const before = Date.now();
    const ours = await capture(async (app) =>
      app.task('tasks.add', (a: number, b: number) => a + b).applyAsync({ args: [1, 1], countdown: '60s' }),
    );
    expectSameHeaders(ours.headers, py!.envelope.headers);
    expect(ours.headers.eta).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
    const eta = parseCeleryDate(ours.headers.eta as string);
    expect(eta).toBeGreaterThanOrEqual(before + 60_000);
    expect(eta).toBeLessThan(Date.now() + 60_001);
    expect(ours.body).toBe(py!.body_utf8);
  });

  it('expires sets the header and the expiration property (ms string), like expires=300', async () => {
    const [py] = fixtureMessages('redis-expires');
    const ours = await capture(async (app) =>
      app.task('tasks.add', (a: number, b: number) => a + b).applyAsync({ args: [1, 1], expires: '300s' }),
    );
    expectSameHeaders(ours.headers, py!.envelope.headers);
    expect(py!.envelope.properties.expiration).toBe('300000');
    const expiration = Number(ours.properties.expiration);
    expect(expiration).toBeGreaterThan(299_000);
    expect(expiration).toBeLessThanOrEqual(300_000);
    expect(Object.keys(ours.properties)).toEqual([
      'correlation_id',
      'reply_to',
      'delivery_mode',
      'expiration',
    ]);
  });

  it('sendTask with mixed args, kwargs and non-ASCII gives the same body bytes as send_task', async () => {
    const [py] = fixtureMessages('redis-send_task-kwargs');
    const ours = await capture(async (app) =>
      app.sendTask('tasks.echo', [1, 'héllo ✓', null, 1.5, true, [1, { a: 2 }]], {
        k: [1, 2],
        u: 'ünï',
        nested: { x: null },
      }),
    );
    expect(ours.body).toBe(py!.body_utf8);
    expect(ours.headers.kwargsrepr).toBe(py!.envelope.headers.kwargsrepr);
    // Python's send_task passes a list, so its argsrepr is a list repr; Celeriac always sends a tuple repr.
    expect(ours.headers.argsrepr).toBe(`(${(py!.envelope.headers.argsrepr as string).slice(1, -1)})`);
  });

  it('priority keeps the API meaning in the model (9 = most urgent); transports translate it', async () => {
    const ours = await capture(async (app) =>
      app.task('tasks.add', (a: number, b: number) => a + b).applyAsync({ args: [1, 0], priority: 9 }),
    );
    expect(ours.priority).toBe(9);
    expect(ours.properties.priority).toBeUndefined();
  });
});
