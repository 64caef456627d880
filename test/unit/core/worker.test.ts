import { describe, expect, it } from 'vitest';
import type { Delivery, WireMessage } from '../../../src/index.js';
import { TaskError } from '../../../src/index.js';
import { testApp, until } from '../../helpers/app.js';

function wire(headers: Record<string, unknown>, body: string, contentType = 'application/json'): WireMessage {
  return {
    headers,
    properties: { correlation_id: headers.id, delivery_mode: 2 },
    priority: 0,
    contentType,
    contentEncoding: 'utf-8',
    body,
  };
}

describe('worker: bad input never crashes it', () => {
  it('dead-letters unknown tasks, wrong body shapes, non-JSON and bad args, storing FAILURE where there is an id, and keeps serving', async () => {
    const app = testApp();
    const add = app.task('tasks.add', (a: number, b: number) => a + b);
    const { z } = await import('zod');
    app.task('strict', (n: number) => n, { argsSchema: z.tuple([z.number()]) });
    const worker = app.worker();
    await worker.start();
    const transport = await app.transport();
    const bad = [
      wire({ task: 'no.such.task', id: 'id-unknown' }, '[[], {}, {}]'),
      wire({ task: 'tasks.add', id: 'id-two' }, '[[1, 2], {}]'),
      wire({ task: 'tasks.add', id: 'id-json' }, '{not json'),
      wire({ task: 'tasks.add', id: 'id-ct' }, '[[1, 2], {}, {}]', 'application/x-python-serialize'),
      wire({ id: 'id-noname' }, '[[1, 2], {}, {}]'),
      wire({ task: 'strict', id: 'id-schema' }, '[["x"], {}, {}]'),
    ];
    await transport.publish(bad.map((message) => ({ queue: 'celery', message })));
    await until(async () => (await transport.deadLetters.list('celery')).length === bad.length);
    const dead = await transport.deadLetters.list('celery');
    const reasons = Object.fromEntries(dead.map((d) => [d.message?.headers.id as string, d.reason]));
    expect(reasons['id-unknown']).toMatch(/unknown task 'no.such.task'/);
    expect(reasons['id-two']).toMatch(/3|embed/);
    expect(reasons['id-json']).toMatch(/JSON/i);
    expect(reasons['id-ct']).toMatch(/content.type|x-python-serialize/i);
    expect(reasons['id-noname']).toMatch(/task/);
    expect(reasons['id-schema']).toMatch(/schema/);
    const failure = (await app
      .asyncResult('id-unknown')
      .get({ timeout: 1000 })
      .catch((e: unknown) => e)) as TaskError;
    expect(failure).toBeInstanceOf(TaskError);
    expect(failure.excType).toBe('NotRegistered');
    expect(await app.asyncResult('id-schema').state()).toBe('FAILURE');
    // still serving
    expect(await (await add.delay(1, 2)).get({ timeout: 2000 })).toBe(3);
    expect(worker.health().status).toBe('healthy');
  });

  it('dead-letters a message delivered more than maxDeliveries times as poison', async () => {
    const app = testApp({ maxDeliveries: 2 });
    let runs = 0;
    app.task('t', () => ++runs);
    const transport = await app.transport();
    const r = await app.sendTask('t');
    // Simulate two deliveries lost by crashed consumers.
    for (let i = 0; i < 2; i++) {
      const got: Delivery[] = [];
      const consumer = await transport.consume(['celery'], (d) => got.push(d), { prefetch: 1 });
      await until(() => got.length === 1);
      await consumer.cancel();
      await transport.requeue(got[0] as Delivery);
    }
    await app.worker().start();
    await until(async () => (await transport.deadLetters.list('celery')).length === 1);
    const [dead] = await transport.deadLetters.list('celery');
    expect(dead?.reason).toMatch(/poison.*delivered 3 times/);
    expect(runs).toBe(0);
    expect(await r.state()).toBe('FAILURE');
  });
});

describe('worker: graceful stop', () => {
  it('lets in-flight tasks finish, requeues reserved ones, and another worker runs them', async () => {
    const app = testApp();
    const done: number[] = [];
    const t = app.task('t', async (n: number) => {
      await new Promise((r) => setTimeout(r, 100));
      done.push(n);
      return n;
    });
    const w1 = app.worker({ concurrency: 2, prefetch: 4 });
    await w1.start();
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => t.delay(n)));
    await until(() => w1.active === 2);
    expect(w1.reserved).toBe(4);
    await w1.stop();
    expect(done.sort()).toEqual([1, 2]);
    expect(await (await app.transport()).depth('celery')).toBe(4);
    await app.worker({ concurrency: 4 }).start();
    expect(await Promise.all(results.map((r) => r.get({ timeout: 2000 })))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('at the deadline aborts still-running tasks and leaves them unacked for redelivery', async () => {
    const app = testApp();
    let aborted = false;
    const t = app.task(
      'stuck',
      (ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            setTimeout(resolve, 10);
          });
        }),
      { bind: true },
    );
    const w = app.worker();
    await w.start();
    await t.delay();
    await until(() => w.active === 1);
    await w.stop({ timeout: 50 });
    expect(aborted).toBe(true);
    const transport = await app.transport();
    expect(await transport.depth('celery')).toBe(0); // still held by the stopped worker's delivery
    await app.close(); // connection closed: an unacked delivery goes back to the broker
  });

  it('reports health per component and closes everything on app.close()', async () => {
    const app = testApp();
    app.task('t', () => 1);
    const w = app.worker();
    expect((await app.health()).status).toBe('unhealthy');
    await w.start();
    const h = await app.health();
    expect(h.status).toBe('healthy');
    expect(Object.keys(h.components ?? {})).toEqual(['broker', 'results', 'worker']);
    await app.close();
    expect(w.health().status).toBe('unhealthy');
    expect(() => app.task('u', () => 1)).toThrow(/closed/);
  });
});

describe('worker: revocations kept in the broker', () => {
  it('a revoke written to the store while the worker runs (no broadcast) is seen at the next refresh', async () => {
    const app = testApp();
    let runs = 0;
    const t = app.task('t', () => ++runs);
    await app.worker({ revocationRefresh: 50 }).start();
    const transport = await app.transport();
    await transport.revocations?.add(['revoked-id'], Date.now() + 60_000);
    await new Promise((r) => setTimeout(r, 150));
    const r = await t.applyAsync({ taskId: 'revoked-id' });
    await expect(r.get({ timeout: 2000 })).rejects.toThrow(/revoked/);
    expect(await r.state()).toBe('REVOKED');
    expect(runs).toBe(0);
  });
});
