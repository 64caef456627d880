/**
 * Quorum queues (issue #5), against the real RabbitMQ: `brokerOptions.queues` opts Celeriac-only
 * queues into `x-queue-type: quorum` (+ `x-delivery-limit`, + broker-side dead-lettering).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Connection } from 'rabbitmq-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTransport, createTransport } from '../../../src/brokers/amqp/index.js';
import type { Delivery } from '../../../src/brokers/transport.js';
import { ConfigError } from '../../../src/errors.js';
import { Celeriac } from '../../../src/index.js';
import { sleep, until } from '../../helpers/app.js';
import { amqpUrl, freshVhost, rabbitmqctl } from './helpers.js';

let vhost = '';
let drop: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('quorum'));
});
afterAll(async () => {
  await drop();
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** The opt-ins every test uses: `jobs.*` quorum with a delivery limit, `dl.*` also dead-lettering. */
const QUEUES = {
  'jobs.*': { quorum: true, deliveryLimit: 5 },
  'dl.*': { quorum: true, deliveryLimit: 2, deadLetter: true },
};

/** A queue's type and arguments, as `rabbitmqctl list_queues` shows them. */
async function queueInfo(
  name: string,
): Promise<{ type: string; args: string; messages: number } | undefined> {
  const out = await rabbitmqctl('list_queues', '-p', vhost, 'name', 'type', 'arguments', 'messages');
  for (const line of out.split('\n')) {
    const [n, type = '', args = '', messages = '0'] = line.split('\t');
    if (n === name) return { type, args, messages: Number(messages) };
  }
  return undefined;
}

/** The consumers of a queue with their (per-consumer) prefetch. */
async function consumersOf(queue: string): Promise<Array<{ tag: string; prefetch: number }>> {
  const out = await rabbitmqctl(
    'list_consumers',
    '-p',
    vhost,
    'queue_name',
    'consumer_tag',
    'prefetch_count',
  );
  return out
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([q]) => q === queue)
    .map(([, tag = '', prefetch = '0']) => ({ tag, prefetch: Number(prefetch) }));
}

/** The global (channel-wide) prefetch of the channel(s) consuming a queue. */
async function globalPrefetchOf(queue: string): Promise<number[]> {
  const consumers = await rabbitmqctl('list_consumers', '-p', vhost, 'queue_name', 'channel_pid');
  const pids = new Set(
    consumers
      .split('\n')
      .map((l) => l.split('\t'))
      .filter(([q]) => q === queue)
      .map(([, pid]) => pid),
  );
  const channels = await rabbitmqctl('list_channels', 'pid', 'global_prefetch_count');
  return channels
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([pid]) => pids.has(pid))
    .map(([, g = '0']) => Number(g));
}

function app(options: { maxDeliveries?: number } = {}): Celeriac {
  const a = new Celeriac({
    broker: amqpUrl(vhost),
    results: 'rpc://',
    brokerOptions: { queues: QUEUES },
    logger: 'silent',
    ...options,
  });
  cleanup.push(() => a.close());
  return a;
}

describe('quorum queues (brokerOptions.queues: { quorum, deliveryLimit })', () => {
  it('declares matching queues x-queue-type quorum with x-delivery-limit; other queues stay classic without arguments', async () => {
    const t = createTransport(new URL(amqpUrl(vhost)), { options: { queues: QUEUES } }) as AmqpTransport;
    cleanup.push(() => t.close());
    await t.connect();
    await t.topology.taskQueue('jobs.declared');
    await t.topology.taskQueue('dl.declared');
    await t.topology.taskQueue('plain.declared');

    const jobs = await queueInfo('jobs.declared');
    expect(jobs?.type).toBe('quorum');
    expect(jobs?.args).toContain('{"x-queue-type","quorum"}');
    expect(jobs?.args).toContain('{"x-delivery-limit",5}');
    expect(jobs?.args).not.toContain('x-dead-letter');

    const dl = await queueInfo('dl.declared');
    expect(dl?.type).toBe('quorum');
    expect(dl?.args).toContain('{"x-delivery-limit",2}');
    expect(dl?.args).toContain('{"x-dead-letter-routing-key","dl.declared.dead"}');
    expect((await queueInfo('dl.declared.dead'))?.type).toBe('classic');

    const plain = await queueInfo('plain.declared');
    expect(plain).toEqual({ type: 'classic', args: '[]', messages: 0 });
  });

  it('a worker consumes a quorum queue with per-consumer QoS only and runs its tasks (alone and beside a classic queue)', async () => {
    const a = app();
    const add = a.task('tests.add', async (x: number, y: number) => x + y, { queue: 'jobs.run' });
    const mul = a.task('tests.mul', async (x: number, y: number) => x * y, { queue: 'plain.run' });

    const alone = a.worker({ queues: ['jobs.run'], concurrency: 3, prefetch: 2 });
    await alone.start();
    const sums = await Promise.all(Array.from({ length: 20 }, (_, i) => add.delay(i, 1)));
    expect(await Promise.all(sums.map((r) => r.get({ timeout: '10s' })))).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(await consumersOf('jobs.run')).toEqual([{ tag: expect.any(String), prefetch: 5 }]);
    expect(await globalPrefetchOf('jobs.run')).toEqual([0]); // basic.qos(global) would be refused (a connection error)
    expect(alone.health()).toMatchObject({ status: 'healthy' });
    expect((await a.transport()).health()).toEqual({ status: 'healthy' });
    await alone.stop();

    const both = a.worker({ queues: ['jobs.run', 'plain.run'], concurrency: 3, prefetch: 2 });
    await both.start();
    const mixed = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => add.delay(i, 2)),
      ...Array.from({ length: 10 }, (_, i) => mul.delay(i, 2)),
    ]);
    const values = await Promise.all(mixed.map((r) => r.get({ timeout: '10s' })));
    expect(values).toEqual([
      ...Array.from({ length: 10 }, (_, i) => i + 2),
      ...Array.from({ length: 10 }, (_, i) => i * 2),
    ]);
    expect((await consumersOf('jobs.run')).map((c) => c.prefetch)).toEqual([5]);
    expect((await consumersOf('plain.run')).map((c) => c.prefetch)).toEqual([5]);
    expect(await globalPrefetchOf('jobs.run')).toEqual([0]);
    expect(both.health()).toMatchObject({ status: 'healthy' });
    expect((await a.transport()).health()).toEqual({ status: 'healthy' });
    await both.stop();
  });

  it("prefetch 'auto' re-sizes a quorum consumer without piling up consumers", async () => {
    const a = app();
    const work = a.task(
      'tests.work',
      async (ms: number) => {
        await sleep(ms);
        return ms;
      },
      { queue: 'jobs.auto', ignoreResult: true },
    );
    const worker = a.worker({ queues: ['jobs.auto'], concurrency: 8 });
    await worker.start();
    let done = 0;
    worker.on('task-succeeded', () => {
      done += 1;
    });
    const counts = new Set<number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        counts.add((await consumersOf('jobs.auto')).length);
        await sleep(100);
      }
    })();
    // Bursts of short and long tasks make the automatic prefetch move up and down.
    for (let round = 0; round < 6; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => work.delay(i % 10 === 0 ? 40 : 1)));
      await sleep(150);
    }
    await until(async () => done >= 600, 30_000, '600 tasks');
    await sleep(300);
    sampling = false;
    await sampler;
    expect(await consumersOf('jobs.auto')).toHaveLength(1);
    expect([...counts].every((c) => c <= 1)).toBe(true);
    expect(await a.health()).toMatchObject({ status: 'healthy' });
    await worker.stop();
    expect(await consumersOf('jobs.auto')).toHaveLength(0);
    expect((await queueInfo('jobs.auto'))?.messages).toBe(0);
  });

  it('setPrefetch on a quorum consumer re-subscribes once with the last value, even in a burst, and never after cancel', async () => {
    const t = createTransport(new URL(amqpUrl(vhost)), {
      options: { queues: QUEUES },
      log: (l, m, f) => console.log(l, m, f),
    }) as AmqpTransport;
    cleanup.push(() => t.close());
    await t.connect();
    const got: string[] = [];
    const held: Delivery[] = [];
    const consumer = await t.consume(
      ['jobs.burst'],
      (d) => {
        got.push(d.tag);
        if (got.length <= 5) void t.ack(d);
        else held.push(d);
      },
      { prefetch: 1 },
    );
    expect((await consumersOf('jobs.burst')).map((c) => c.prefetch)).toEqual([1]);
    // Per-consumer QoS only applies to new consumers: each change re-subscribes. A burst of changes
    // (autoscaling, prefetch 'auto') must leave one consumer, with the last value.
    for (const p of [2, 3, 4, 5, 6]) consumer.setPrefetch(p);
    await sleep(500);
    expect((await consumersOf('jobs.burst')).map((c) => c.prefetch)).toEqual([6]);
    const message = () => ({
      queue: 'jobs.burst',
      message: {
        headers: { lang: 'py', task: 'tests.add', id: randomUUID() },
        properties: { correlation_id: 'x', reply_to: '', delivery_mode: 2 },
        priority: 0,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        body: '[[1, 2], {}, {}]',
      },
    });
    await t.publish(Array.from({ length: 6 }, message));
    await until(async () => got.length === 6, 20_000, '6 deliveries');
    // A change racing with cancel() while a delivery is still held (the channel stays open for it)
    // must leave no consumer behind: one would take messages only to nack them back.
    // cancel() lands right after the re-subscription cancelled the old consumer, before the new one.
    const [ch] = t.consumerChannels();
    if (!ch) throw new Error('no consumer channel');
    const basicCancel = ch.basicCancel.bind(ch);
    let cancelling: Promise<void> | undefined;
    ch.basicCancel = (async (tag: string) => {
      const ok = await basicCancel(tag);
      cancelling ??= consumer.cancel();
      return ok;
    }) as typeof ch.basicCancel;
    consumer.setPrefetch(13); // at least doubles: a re-subscription in any case
    await until(async () => cancelling !== undefined, 20_000, 'the racing cancel');
    await cancelling;
    await sleep(500);
    expect(await consumersOf('jobs.burst')).toEqual([]);
    await t.publish([message()]);
    await sleep(300);
    expect(got).toHaveLength(6);
    await t.ack(held[0] as Delivery);
    expect(await t.depth('jobs.burst')).toBe(1);
  });

  it('a task that kills its worker process on every delivery is ended by maxDeliveries and dead-lettered, not looped forever', async () => {
    const queue = `jobs.crash.${randomUUID().slice(0, 6)}`;
    const a = app({ maxDeliveries: 3 });
    const die = a.task('tests.die', async () => undefined, { queue, ignoreResult: true });
    const transport = (await a.transport()) as AmqpTransport;
    const sent = await die.delay();

    const spawnWorker = (): ChildProcess => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(import.meta.dirname, 'fixtures', 'dying-worker.ts'),
          amqpUrl(vhost),
          queue,
          '3',
          JSON.stringify({ queues: QUEUES }),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      cleanup.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      return child;
    };
    let deaths = 0;
    let dead = await transport.deadLetters.list(queue);
    for (let i = 0; i < 8 && dead.length === 0; i++) {
      const child = spawnWorker();
      let exitCode: number | null | undefined;
      const exited = new Promise<void>((r) =>
        child.once('exit', (code) => {
          exitCode = code;
          r();
        }),
      );
      await until(
        async () => exitCode !== undefined || (await transport.deadLetters.list(queue)).length > 0,
        30_000,
        'the worker to die or the message to be dead-lettered',
      );
      if (exitCode !== undefined) {
        expect(exitCode).toBe(3);
        deaths += 1;
      } else {
        child.kill('SIGKILL');
        await exited;
      }
      dead = await transport.deadLetters.list(queue);
    }
    // Deliveries 1–3 killed a worker each; delivery 4 exceeds maxDeliveries 3 and is dead-lettered.
    expect(deaths).toBe(3);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.message?.headers.id).toBe(sent.id);
    expect(dead[0]?.reason).toMatch(/poison message: delivered 4 times \(maxDeliveries 3\)/);
    expect((await queueInfo(queue))?.messages).toBe(0);
  }, 90_000);

  it("RabbitMQ's x-delivery-limit ends what is returned to the queue without reaching a worker: dead-lettered with deadLetter, dropped without", async () => {
    const t = createTransport(new URL(amqpUrl(vhost)), { options: { queues: QUEUES } }) as AmqpTransport;
    cleanup.push(() => t.close());
    await t.connect();
    const conn = new Connection({ url: amqpUrl(vhost), connectionName: `quorum-nacker-${randomUUID()}` });
    conn.on('error', () => {});
    cleanup.push(() => conn.close());
    /** Publishes one message and nacks it (requeue) until the queue stops delivering it; returns the deliveries. */
    const bounce = async (queue: string): Promise<number> => {
      await t.publish([
        {
          queue,
          message: {
            headers: { lang: 'py', task: 'tests.add', id: randomUUID() },
            properties: { correlation_id: 'x', reply_to: '', delivery_mode: 2 },
            priority: 0,
            contentType: 'application/json',
            contentEncoding: 'utf-8',
            body: '[[1, 2], {}, {}]',
          },
        },
      ]);
      const ch = await conn.acquire();
      let deliveries = 0;
      await ch.basicQos({ prefetchCount: 1 });
      await ch.basicConsume({ queue }, (msg) => {
        deliveries += 1;
        ch.basicNack({ deliveryTag: msg.deliveryTag, requeue: true });
      });
      await until(
        async () => (await queueInfo(queue))?.messages === 0 && deliveries > 0,
        20_000,
        `${queue} empty`,
      );
      await sleep(300);
      await ch.close();
      return deliveries;
    };
    // deliveryLimit 2: delivered 3 times (RabbitMQ ends it when the count of returns exceeds the limit).
    expect(await bounce('dl.bounce')).toBe(3);
    const dead = await t.deadLetters.list('dl.bounce');
    expect(dead).toHaveLength(1);
    expect(dead[0]?.reason).toBe('broker: delivery_limit');

    expect(await bounce('jobs.bounce')).toBe(6); // deliveryLimit 5, no deadLetter: dropped
    expect((await queueInfo('jobs.bounce'))?.messages).toBe(0);
    expect(await queueInfo('jobs.bounce.dead')).toBeUndefined();
  });

  it('probing a missing queue (depth, dead-letter listing) does not break probes or declarations running beside it', async () => {
    // A passive declare of a missing queue is a 404, which closes the channel it ran on: polling
    // `deadLetters.list` while waiting for the first dead letter used to fail the calls beside it.
    const t = createTransport(new URL(amqpUrl(vhost)), { options: { queues: QUEUES } }) as AmqpTransport;
    cleanup.push(() => t.close());
    await t.connect();
    await t.topology.taskQueue('jobs.probe');
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all([
        t.depth(`missing.${round}`),
        t.deadLetters.list('jobs.probe'),
        t.depth('jobs.probe'),
        t.topology.taskQueue(`jobs.probe.${round}`),
        t.depth(`missing.${round}.b`),
        t.deadLetters.list(`missing.${round}`),
      ]);
      expect(results).toEqual([0, [], 0, undefined, 0, []]);
    }
  });

  it('refuses maxPriority with quorum, and deliveryLimit without quorum, with a ConfigError naming the queue option', async () => {
    const both = { queues: { 'jobs.*': { quorum: true, maxPriority: 9 } } };
    expect(() => createTransport(new URL(amqpUrl(vhost)), { options: both })).toThrow(ConfigError);
    expect(() => createTransport(new URL(amqpUrl(vhost)), { options: both })).toThrow(
      /brokerOptions\.queues\['jobs\.\*'\].*quorum queues have no priorities/,
    );
    const a = new Celeriac({ broker: amqpUrl(vhost), brokerOptions: both, logger: 'silent' });
    cleanup.push(() => a.close());
    a.task('tests.nop', async () => null, { queue: 'jobs.prio' });
    await expect(a.worker({ queues: ['jobs.prio'] }).start()).rejects.toBeInstanceOf(ConfigError);

    const limitOnly = { queues: { 'jobs.*': { deliveryLimit: 3 } } };
    expect(() => createTransport(new URL(amqpUrl(vhost)), { options: limitOnly })).toThrow(
      /brokerOptions\.queues\['jobs\.\*'\].*deliveryLimit.*quorum/,
    );
  });
});
