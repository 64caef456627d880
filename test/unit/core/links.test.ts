import { describe, expect, it } from 'vitest';
import { fromKombuEnvelope } from '../../../src/messages/kombu.js';
import { loadFixture } from '../../fixtures.js';
import { testApp } from '../../helpers/app.js';

describe('links and chains continue on a Celeriac worker, as Celery workers do', () => {
  it('link: the callback gets the result prepended to its partial args; the parent lists it in children', async () => {
    const app = testApp();
    const add = app.task('tasks.add', (a: number, b: number) => a + b);
    const mul = app.task('tasks.mul', (a: number, b: number) => a * b);
    await app.worker().start();
    const r = await add.applyAsync({ args: [2, 3], link: mul.s(10) });
    expect(await r.get({ timeout: 2000 })).toBe(5);
    const meta = await r.info();
    const childId = (meta?.children[0] as [[string, null], null] | undefined)?.[0][0] as string;
    expect(await app.asyncResult(childId).get({ timeout: 2000 })).toBe(50);
    expect((await app.asyncResult(childId).info())?.parent_id).toBe(r.id);
  });

  it('linkError: the errback is called with the failed task id', async () => {
    const app = testApp();
    const seen: string[] = [];
    const fail = app.task('tasks.fail', () => {
      throw new Error('x');
    });
    const onError = app.task('tasks.on_error', (id: string) => seen.push(id));
    await app.worker().start();
    const r = await fail.applyAsync({ linkError: onError.s() });
    await expect(r.get({ timeout: 2000 })).rejects.toThrow();
    await new Promise((res) => setTimeout(res, 50));
    expect(seen, JSON.stringify(seen)).toEqual([r.id]);
  });

  it("a chain sent by Python (fixtures/redis-chain) runs to its end: (2+2+4)*8 under the chain's pre-assigned ids", async () => {
    const app = testApp();
    app.task('tasks.add', (a: number, b: number) => a + b);
    app.task('tasks.mul', (a: number, b: number) => a * b);
    const fixture = loadFixture('redis-chain') as unknown as {
      messages: Array<{ raw: string }>;
      'last_task_id (AsyncResult returned)': string;
    };
    const { wire } = fromKombuEnvelope(fixture.messages[0]?.raw as string);
    const transport = await app.transport();
    await transport.publish([{ queue: 'celery', message: wire }]);
    await app.worker().start();
    const last = app.asyncResult<number>(fixture['last_task_id (AsyncResult returned)']);
    expect(await last.get({ timeout: 2000 })).toBe(64);
    const first = await app.asyncResult(wire.headers.id as string).info();
    expect(first?.status).toBe('SUCCESS');
    expect(first?.children).toEqual([[['4b5f0f6d-1690-43d2-b5a6-61cd03f9242f', null], null]]);
  });
});
