/**
 * The CEP's Router with real brokers: one app sends some tasks to Redis and others to RabbitMQ, and
 * one worker in the same process consumes queues on both. Results go to Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celeriac } from '../../../src/index.js';
import { amqpUrl, freshVhost } from '../amqp/helpers.js';
import { deletePrefix, inspector, redisUrl, uniquePrefix } from '../redis/helpers.js';

const prefix = uniquePrefix('router');
const admin = inspector();
let vhost: { vhost: string; drop: () => Promise<void> };
const apps: Celeriac[] = [];

beforeAll(async () => {
  await admin.connect();
  vhost = await freshVhost('router');
});

afterAll(async () => {
  for (const a of apps.splice(0)) await a.close();
  await vhost?.drop();
  await deletePrefix(admin, prefix);
  await admin.quit();
});

describe('one app, Redis and RabbitMQ at once', () => {
  it('routes by pattern and by task option, and one worker consumes queues on both brokers', async () => {
    const app = new Celeriac({
      broker: redisUrl({ prefix }),
      brokers: { rabbit: amqpUrl(vhost.vhost) },
      results: redisUrl({ prefix }),
      routes: { 'billing.*': { queue: 'billing', broker: 'rabbit' } },
      logger: 'silent',
    });
    apps.push(app);
    const ranOn: Record<string, string> = {};
    const charge = app.task(
      'billing.charge',
      (ctx, cents: number) => {
        ranOn[ctx.id] = ctx.queue;
        return cents + 1;
      },
      { bind: true },
    );
    const report = app.task(
      'reports.build',
      (ctx, day: string) => {
        ranOn[ctx.id] = ctx.queue;
        return `report ${day}`;
      },
      { bind: true, queue: 'reports', broker: 'rabbit' },
    );
    const mail = app.task(
      'mail.send',
      (ctx, to: string) => {
        ranOn[ctx.id] = ctx.queue;
        return `sent ${to}`;
      },
      { bind: true },
    );
    const r1 = await charge.delay(99);
    const r2 = await report.delay('monday');
    const r3 = await mail.delay('ada');
    const rabbit = await app.transport('rabbit');
    const redis = await app.transport();
    expect(rabbit.kind).toBe('amqp');
    expect(redis.kind).toBe('redis');
    expect(await rabbit.depth('billing')).toBe(1);
    expect(await rabbit.depth('reports')).toBe(1);
    expect(await redis.depth('celery')).toBe(1);
    expect(await admin.llen(`${prefix}billing`)).toBe(0);
    await app.worker({ queues: ['celery', 'billing', 'reports'], concurrency: 4 }).start();
    expect(await r1.get({ timeout: 10_000 })).toBe(100);
    expect(await r2.get({ timeout: 10_000 })).toBe('report monday');
    expect(await r3.get({ timeout: 10_000 })).toBe('sent ada');
    expect([ranOn[r1.id], ranOn[r2.id], ranOn[r3.id]]).toEqual(['billing', 'reports', 'celery']);
    const health = await app.health();
    expect(health.components?.broker?.status).toBe('healthy');
    expect(health.components?.['broker:rabbit']?.status).toBe('healthy');
  }, 60_000);
});
