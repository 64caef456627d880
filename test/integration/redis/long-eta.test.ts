/**
 * The literal case: a 120 s countdown, longer than the visibility timeout, with two
 * workers. Celery 5.2 holds such a task unacked in worker memory, so kombu's restore hands it to a
 * second worker and it runs twice; a Celeriac worker parks it in the broker, so it runs once.
 * Slow by nature (about two minutes); it runs beside the other files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celeriac, type TaskContext } from '../../../src/index.js';
import { deletePrefix, inspector, redisUrl, uniquePrefix } from './helpers.js';

const prefix = uniquePrefix('long-eta');
const admin = inspector();
const apps: Celeriac[] = [];

beforeAll(async () => {
  await admin.connect();
});

afterAll(async () => {
  for (const a of apps.splice(0)) await a.close();
  await deletePrefix(admin, prefix);
  await admin.quit();
});

describe('eta beyond the visibility timeout', () => {
  it('a 120 s countdown with a 30 s visibility timeout runs exactly once with two workers', async () => {
    const queue = 'eta120';
    const url = redisUrl({ prefix });
    const options = { brokerOptions: { visibilityTimeout: '30s' }, logger: 'silent' as const };
    const runs: Array<{ id: string; worker: number; at: number }> = [];
    for (const n of [0, 1]) {
      const app = new Celeriac({ broker: url, ...options });
      apps.push(app);
      app.task('eta.once', (ctx: TaskContext) => void runs.push({ id: ctx.id, worker: n, at: Date.now() }), {
        bind: true,
      });
      await app.worker({ queues: [queue], concurrency: 4, name: `eta${n}@test` }).start();
    }
    const client = new Celeriac({ broker: url, ...options });
    apps.push(client);
    const sentAt = Date.now();
    const sent = await Promise.all(
      Array.from({ length: 6 }, () => client.sendTask('eta.once', [], {}, { queue, countdown: '120s' })),
    );
    // Past two visibility timeouts nothing has run, nothing sits in `unacked`: the messages are parked.
    await new Promise((r) => setTimeout(r, 65_000));
    expect(runs).toEqual([]);
    expect(await admin.hlen(`${prefix}unacked`)).toBe(0);
    const end = sentAt + 140_000;
    while (runs.length < sent.length && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 2000)); // a late duplicate would show up here
    expect(runs.map((r) => r.id).sort()).toEqual(sent.map((r) => r.id).sort());
    for (const r of runs) expect(r.at - sentAt).toBeGreaterThanOrEqual(119_000);
  }, 180_000);
});
