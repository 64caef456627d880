import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpTransport, createTransport } from '../../../src/brokers/amqp/index.js';
import { ConnectionError } from '../../../src/errors.js';
import type { HealthReport } from '../../../src/health.js';
import { Celeriac, type Logger, type TaskContext } from '../../../src/index.js';
import { sleep, until } from '../../helpers/app.js';
import { messageId, testMessage } from '../../helpers/messages.js';
import { RabbitNode } from './servers.js';

/**
 * A full RabbitMQ restart, on a test-owned node (the shared RabbitMQ is never stopped): `rabbitmqctl
 * stop`, a few seconds down, `rabbitmq-server` again on the same port and data dir.
 */
let node: RabbitNode;
beforeAll(async () => {
  node = await RabbitNode.create('restart');
  await node.start();
}, 60_000);
afterAll(async () => {
  await node?.remove();
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await node.start(); // a failed test may have left it stopped
}, 60_000);

/** A logger that keeps warnings and errors (printed when a test fails to explain why). */
function capture(lines: string[]): Logger {
  const keep =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push(`${level} ${msg ?? ''} ${JSON.stringify(obj)}`);
    };
  const logger: Logger = {
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: keep('warn'),
    error: keep('error'),
    child: () => logger,
  };
  return logger;
}

function brokerOf(h: HealthReport): HealthReport {
  return h.components?.broker ?? h;
}

describe('full RabbitMQ restart (test-owned node)', () => {
  it('worker consumes again by itself, the publisher keeps its backlog and flushes it, health follows, no task lost', async () => {
    const queue = 'restart.work';
    const log: string[] = [];
    const worker = new Celeriac({ broker: node.url(), logger: capture(log) });
    const sender = new Celeriac({ broker: node.url(), logger: capture(log) });
    cleanup.push(async () => {
      await worker.close();
      await sender.close();
    });
    const runs: Array<{ id: string; at: number }> = [];
    worker.task(
      'restart.work',
      async (ctx: TaskContext) => {
        runs.push({ id: ctx.id, at: Date.now() });
        await sleep(10);
      },
      { bind: true, ignoreResult: true, queue },
    );
    const w = worker.worker({ queues: [queue], concurrency: 2 });
    await w.start();

    // 1. Tasks published before the stop: durable queue, persistent messages.
    const BEFORE = 300;
    const sentBefore = await Promise.all(
      Array.from({ length: BEFORE }, () => sender.sendTask('restart.work', [], {}, { queue })),
    );
    await until(() => runs.length >= 30, 20_000, 'the worker to run some tasks');
    const readyAtStop = Number(
      (await node.ctl('list_queues', 'name', 'messages_ready'))
        .split('\n')
        .find((l) => l.startsWith(`${queue}\t`))
        ?.split('\t')[1],
    );
    expect(readyAtStop).toBeGreaterThan(50); // plenty still waiting in RabbitMQ when it stops

    // 2. Stop RabbitMQ.
    await node.stop();
    const stoppedAt = Date.now();
    const runsAtStop = runs.length;
    const degradedAfter = await until(
      async () =>
        brokerOf(await worker.health()).status !== 'healthy' &&
        brokerOf(await sender.health()).status !== 'healthy',
      10_000,
      'both apps to report the broker not healthy',
    );
    const downReport = await sender.health();

    // 3. Publish while it is down: the sends wait (backlog), none fails.
    const DURING = 100;
    let flushed = 0;
    let failed: unknown;
    const during = Array.from({ length: DURING }, () =>
      sender.sendTask('restart.work', [], {}, { queue }).then(
        (r) => {
          flushed += 1;
          return r;
        },
        (err: unknown) => {
          failed ??= err;
          throw err;
        },
      ),
    );
    during.forEach((p) => void p.catch(() => {}));
    await sleep(2000);
    expect(failed).toBeUndefined();
    expect(flushed).toBe(0);
    const duringReport = brokerOf(await sender.health());
    expect(duringReport.status).toBe('degraded');
    expect(duringReport.reason).toMatch(/RabbitMQ/);
    expect(duringReport.reason).toMatch(/100 messages waiting to be published/);
    const workerDown = await worker.health();
    expect(brokerOf(workerDown).status).toBe('degraded');
    // Nothing ran while RabbitMQ was down (beyond what was already running at the stop).
    expect(runs.length - runsAtStop).toBeLessThanOrEqual(2);

    // 4. Start it again on the same port and data dir.
    await node.start();
    const upAt = Date.now();
    const runsAtRestart = runs.length;
    const consumedAgainAfter = await until(
      () => runs.length > runsAtRestart,
      30_000,
      'the worker to run a task again',
    );
    const sentDuring = await Promise.all(during);
    const flushedAfter = Date.now() - upAt;
    const ids = new Set([...sentBefore, ...sentDuring].map((r) => r.id));
    await until(
      () => {
        const ran = new Set(runs.map((r) => r.id));
        return [...ids].every((id) => ran.has(id));
      },
      30_000,
      'every task to run',
    );
    const healthyAfter = await until(
      async () =>
        (await worker.health()).status === 'healthy' && (await sender.health()).status === 'healthy',
      15_000,
      'both apps healthy again',
    );
    const ran = new Map<string, number>();
    for (const r of runs) ran.set(r.id, (ran.get(r.id) ?? 0) + 1);
    const twice = [...ran.values()].filter((n) => n > 1).length;
    console.log(
      `[restart] ${BEFORE} sent before the stop (${readyAtStop} still ready in RabbitMQ at the stop), ${DURING} during the ` +
        `outage (${Math.round((upAt - stoppedAt) / 100) / 10} s); broker degraded ${degradedAfter} ms after the stop ` +
        `(${JSON.stringify(brokerOf(downReport).reason)}); after the restart: worker consumed again in ${consumedAgainAfter} ms, ` +
        `backlog flushed in ${flushedAfter} ms, healthy ${healthyAfter} ms after all ran; ${ids.size} ids, ${runs.length} runs, ` +
        `${twice} ran twice (in flight at the stop), 0 lost`,
    );
    expect(ids.size).toBe(BEFORE + DURING);
    expect(twice).toBeLessThanOrEqual(4); // at most what was running or prefetched-and-started at the stop
    expect(w.health().status).toBe('healthy');
    if (log.some((l) => l.startsWith('error')))
      console.log(log.filter((l) => l.startsWith('error')).join('\n'));
  }, 60_000);

  it('maxBacklog (?max_backlog=): the excess is refused naming the limit, the rest delivered after the restart', async () => {
    const queue = 'restart.backlog';
    const t = createTransport(new URL(node.url({ max_backlog: '5' })), {}) as AmqpTransport;
    cleanup.push(() => t.close());
    expect(t).toBeInstanceOf(AmqpTransport);
    await t.connect();
    await node.stop();
    await until(() => t.health().status !== 'healthy', 10_000, 'the transport to notice');
    const messages = Array.from({ length: 5 }, () => testMessage());
    const waiting = messages.map((message) => t.publish([{ queue, message }]));
    waiting.forEach((p) => void p.catch(() => {}));
    await sleep(200);
    const refused = await t.publish([{ queue, message: testMessage() }]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConnectionError);
    expect(String((refused as Error).message)).toMatch(
      /unreachable and the publish backlog is full \(5 of 5 messages waiting, 1 more refused; brokerOptions\.maxBacklog or \?max_backlog=\)/,
    );
    // Refused at once, even to a queue never declared (its declaration would wait for the connection).
    const started = Date.now();
    const other = await t
      .publish([{ queue: 'restart.never', message: testMessage() }])
      .catch((e: unknown) => e);
    expect(other).toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeLessThan(100);
    expect(t.health()).toMatchObject({ status: 'degraded' });
    expect(t.health().reason).toMatch(/5 messages waiting to be published/);

    await node.start();
    await Promise.all(waiting);
    const got: string[] = [];
    await t.consume(
      [queue],
      (d) => {
        got.push(messageId(d.message));
        void t.ack(d);
      },
      { prefetch: 10 },
    );
    await until(() => got.length >= 5, 10_000, 'the 5 messages');
    await sleep(300);
    expect(got.sort()).toEqual(messages.map((m) => messageId(m)).sort());
    expect(t.health()).toEqual({ status: 'healthy' });
  }, 60_000);
});
