/**
 * rpc:// results and the app's own broker transport (the seam between `results/rpc` and
 * `brokers/amqp`): a result goes to the `reply_to` of the task's message as the app's own transport
 * delivered it; a retry keeps the original reply_to (as Celery's), so a retry run by another worker
 * still reports to the original caller; the apps of one process share one consumer of their reply
 * queue.
 */
import { randomUUID } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../../src/brokers/amqp/index.js';
import type { TaskContext } from '../../../src/index.js';
import { Celeriac } from '../../../src/index.js';
import { buildTaskMessage, encodeTask } from '../../../src/messages/codec.js';
import { threadOid } from '../../../src/messages/ids.js';
import { sleep } from '../../helpers/app.js';
import { assertPeerAvailable, peerCall } from '../../helpers/peer.js';
import { amqpUrl, freshVhost, rabbitmqctl } from './helpers.js';

let vhost = '';
let drop: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('rpc-retry'));
});
afterAll(async () => {
  await drop();
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function rpcApp(connectionName?: string, results = 'rpc://'): Celeriac {
  const a = new Celeriac({
    broker: amqpUrl(vhost),
    results,
    logger: 'silent',
    ...(connectionName ? { brokerOptions: { connectionName } } : {}),
  });
  cleanup.push(() => a.close());
  return a;
}

/** The client-provided connection name of the consumer(s) of a queue. */
async function consumerConnections(queue: string): Promise<string[]> {
  const consumers = await rabbitmqctl('list_consumers', '-p', vhost, 'queue_name', 'channel_pid');
  const channels = new Set(
    consumers
      .split('\n')
      .map((l) => l.split('\t'))
      .filter(([q]) => q === queue)
      .map(([, pid]) => pid),
  );
  const byChannel = await rabbitmqctl('list_channels', 'pid', 'connection');
  const connections = byChannel
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([pid]) => channels.has(pid))
    .map(([, conn]) => conn);
  const names = await rabbitmqctl('list_connections', '-p', vhost, 'pid', 'client_properties');
  return connections.map((conn) => {
    const line = names.split('\n').find((l) => l.startsWith(`${conn}\t`)) ?? '';
    return /"connection_name","([^"]*)"/.exec(line)?.[1] ?? '?';
  });
}

describe('rpc:// retry across workers (Python caller)', () => {
  beforeAll(async () => {
    await assertPeerAvailable();
  });

  it("a retry run by another worker still delivers the result to the original caller's reply queue", async () => {
    const queue = `retry-across-${randomUUID().slice(0, 6)}`;
    const runs: Array<{ worker: string; retries: number; id: string }> = [];
    const workerApp = (name: string): Celeriac => {
      const a = rpcApp();
      a.task(
        'tasks.retry',
        (ctx: TaskContext) => {
          runs.push({ worker: name, retries: ctx.retries, id: ctx.id });
          if (ctx.retries < Number(ctx.kwargs.succeed_after ?? 1))
            throw ctx.retry({ countdown: Number(ctx.kwargs.countdown ?? 1) * 1000 });
          return { retries: ctx.retries, by: name };
        },
        { bind: true, retry: { max: 5 }, queue },
      );
      return a;
    };

    // Worker A runs the first attempt, publishes the retry (eta +2 s) and goes away.
    const a = workerApp('A');
    const wa = a.worker({ queues: [queue], concurrency: 1 });
    await wa.start();
    const retried = new Promise((r) => wa.once('task-retried', r));
    const urls = { broker: amqpUrl(vhost), backend: 'rpc://' };
    // Python's send_task with reply_to = its own oid, then AsyncResult.get() on its reply queue.
    const call = peerCall(urls, 'tasks.retry', [], {
      kwargs: { succeed_after: 1, countdown: 2 },
      queue,
      timeout: 25,
    });
    await retried;
    await wa.stop();
    await a.close();

    // Worker B, another app (another process as far as the broker can tell), runs the retry.
    const b = workerApp('B');
    const wb = b.worker({ queues: [queue], concurrency: 1 });
    await wb.start();
    cleanup.push(() => wb.stop());

    const r = await call;
    expect(r).toMatchObject({ state: 'SUCCESS', result: { retries: 1, by: 'B' }, exitCode: 0 });
    expect(runs).toEqual([
      { worker: 'A', retries: 0, id: r.id },
      { worker: 'B', retries: 1, id: r.id },
    ]);
  }, 60_000);
});

describe("rpc:// uses the app's own broker transport", () => {
  for (const results of ['rpc://', 'rpc://user:pass@host/vhost (a connection of its own)'])
    it(`${results}: the result goes to the reply_to the app's own transport delivered, not through the first AMQP transport of the process`, async () => {
      const other = await freshVhost('rpc-other');
      cleanup.push(other.drop);
      // The first AMQP transport of this process, on another vhost: rpc:// used to borrow it.
      const first = createTransport(new URL(amqpUrl(other.vhost)), {});
      cleanup.push(() => first.close());
      await first.connect();

      const queue = `own-transport-${randomUUID().slice(0, 6)}`;
      // rpc://host: the sink has a connection of its own, and still routes by the app broker's deliveries.
      const w = rpcApp(undefined, results === 'rpc://' ? results : amqpUrl(vhost).replace(/^amqp:/, 'rpc:'));
      w.task('tasks.add', async (x: number, y: number) => x + y, { queue });
      const worker = w.worker({ queues: [queue], concurrency: 2 });
      await worker.start();
      cleanup.push(() => worker.stop());

      // A caller elsewhere (its own reply queue), sending a Celery message with reply_to = that queue.
      const conn = new Connection({ url: amqpUrl(vhost), connectionName: `rpc-caller-${randomUUID()}` });
      conn.on('error', () => {});
      cleanup.push(() => conn.close());
      const ch = await conn.acquire();
      const replyQueue = `caller-${randomUUID()}`;
      await ch.queueDeclare({ queue: replyQueue, durable: false, autoDelete: false });
      const id = randomUUID();
      const message = encodeTask(
        buildTaskMessage({ id, task: 'tasks.add', args: [2, 3], replyTo: replyQueue }),
      );
      await (await w.transport()).publish([{ queue, message }]);

      let result: Record<string, unknown> | undefined;
      for (let i = 0; i < 200 && result?.status !== 'SUCCESS'; i++) {
        const got = await ch.basicGet({ queue: replyQueue, noAck: true });
        if (got)
          result = JSON.parse(Buffer.isBuffer(got.body) ? got.body.toString() : JSON.stringify(got.body));
        else await sleep(25);
      }
      expect(result).toMatchObject({ task_id: id, status: 'SUCCESS', result: 5 });
      const otherQueues = await rabbitmqctl('list_queues', '-p', other.vhost, 'name');
      expect(otherQueues).not.toContain(threadOid());
      await ch.close();
    });

  it('the apps of one process share one consumer of their reply queue; it moves when the app that carries it closes', async () => {
    const p = rpcApp(`rpc-app-p-${randomUUID().slice(0, 6)}`);
    const q = rpcApp(`rpc-app-q-${randomUUID().slice(0, 6)}`);
    const pTask = p.task('tasks.p', async () => 'p', { queue: 'rpc-p' });
    const qTask = q.task('tasks.q', async () => 'q', { queue: 'rpc-q' });
    const pw = p.worker({ queues: ['rpc-p'], concurrency: 1 });
    const qw = q.worker({ queues: ['rpc-q'], concurrency: 1 });
    await pw.start();
    await qw.start();
    cleanup.push(() => qw.stop());

    expect(await (await pTask.delay()).get({ timeout: '10s' })).toBe('p');
    expect(await (await qTask.delay()).get({ timeout: '10s' })).toBe('q');
    // Two consumers of one queue would split the results between them.
    expect(await consumerConnections(threadOid())).toEqual([p.config.brokerOptions.connectionName]);

    const pending = await qTask.applyAsync({ countdown: 1500 });
    await pw.stop();
    await p.close();
    expect(await consumerConnections(threadOid())).toEqual([q.config.brokerOptions.connectionName]);
    expect(await pending.get({ timeout: '10s' })).toBe('q');
    expect(await (await qTask.delay()).get({ timeout: '10s' })).toBe('q');
  });
});
