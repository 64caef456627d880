import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../../src/brokers/amqp/index.js';
import { Celeriac, type TaskContext } from '../../../src/index.js';
import { until } from '../../helpers/app.js';
import { RabbitNode, sparePort } from './servers.js';

/**
 * `?hosts=` failover between two test-owned RabbitMQ nodes (independent nodes, not a cluster: what
 * is tested is which node the connection goes to). The shared RabbitMQ is never touched.
 */
let a: RabbitNode;
let b: RabbitNode;
beforeAll(async () => {
  [a, b] = await Promise.all([RabbitNode.create('failover-a'), RabbitNode.create('failover-b')]);
  await Promise.all([a.start(), b.start()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.remove(), b?.remove()]);
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** Names of the client connections a node has now (from their connection_name). */
async function connectionsOn(node: RabbitNode): Promise<string[]> {
  const out = await node.ctl('list_connections', 'client_properties');
  return [...out.matchAll(/\{"connection_name","([^"]+)"\}/g)].map((m) => m[1] as string);
}

function app(url: string, connectionName: string) {
  const runs: Array<{ id: string; at: number }> = [];
  const celeriac = new Celeriac({ broker: url, brokerOptions: { connectionName }, logger: 'silent' });
  cleanup.push(() => celeriac.close());
  const work = celeriac.task(
    'failover.work',
    (ctx: TaskContext) => {
      runs.push({ id: ctx.id, at: Date.now() });
    },
    { bind: true, ignoreResult: true, queue: 'failover' },
  );
  return { celeriac, work, runs };
}

describe('AMQP cluster URL failover (?hosts=)', () => {
  it('on connect: the first host is a dead port, the connection goes to the next one', async () => {
    const dead = await sparePort([a.port, b.port]);
    const url = `amqp://guest:guest@127.0.0.1:${dead}/?hosts=127.0.0.1:${a.port}`;
    const { celeriac, work, runs } = app(url, 'failover-connect');
    const started = Date.now();
    const transport = (await celeriac.transport()) as AmqpTransport;
    const connectedIn = Date.now() - started;
    expect(transport).toBeInstanceOf(AmqpTransport);
    expect(await connectionsOn(a)).toContain('failover-connect');
    await celeriac.worker({ queues: ['failover'], concurrency: 2 }).start();
    const sent = await work.delay();
    await until(() => runs.some((r) => r.id === sent.id), 10_000, 'the task to run');
    console.log(`[failover] dead first host: connected to the second one in ${connectedIn} ms, task ran`);
    expect((await celeriac.health()).status).toBe('healthy');
  });

  it('the node in use stops: the worker reconnects to the next host and consumes again', async () => {
    const url = `amqp://guest:guest@127.0.0.1:${a.port}/?hosts=127.0.0.1:${b.port}`;
    const worker = app(url, 'failover-worker');
    await worker.celeriac.worker({ queues: ['failover'], concurrency: 2 }).start();
    expect(await connectionsOn(a)).toContain('failover-worker');
    expect(await connectionsOn(b)).not.toContain('failover-worker');
    const first = await worker.work.delay(); // from the worker's app itself, through node a
    await until(() => worker.runs.some((r) => r.id === first.id), 10_000, 'a task through node a');

    await a.stop();
    const stoppedAt = Date.now();
    const onB = await until(
      async () => (await connectionsOn(b)).includes('failover-worker'),
      20_000,
      'the worker to connect to node b',
    );
    // A client of node b alone sends; the worker consumes it there (its queue declared again on b).
    const sender = app(`amqp://guest:guest@127.0.0.1:${b.port}/`, 'failover-sender');
    const ids = (await Promise.all(Array.from({ length: 20 }, () => sender.work.delay()))).map((r) => r.id);
    const consumedIn = await until(
      () => ids.every((id) => worker.runs.some((r) => r.id === id)),
      20_000,
      'the worker to run the tasks sent to node b',
    );
    const healthy = await until(
      async () => (await worker.celeriac.health()).status === 'healthy',
      10_000,
      'the worker app to be healthy again',
    );
    const afterStop = Date.now() - stoppedAt;
    // The worker's own publishes go through node b too.
    const own = await worker.work.delay();
    await until(
      () => worker.runs.some((r) => r.id === own.id),
      10_000,
      'a task the worker app sent through node b',
    );

    // Node a back, node b stops: the hosts are tried in turn, so the worker goes back to a.
    await a.start();
    await b.stop();
    const backOnA = await until(
      async () => (await connectionsOn(a)).includes('failover-worker'),
      20_000,
      'the worker to connect to node a again',
    );
    const last = await worker.work.delay();
    await until(() => worker.runs.some((r) => r.id === last.id), 10_000, 'a task through node a again');
    console.log(
      `[failover] node a stopped: the worker connected to node b ${onB} ms later, ran the 20 tasks sent there ` +
        `${consumedIn} ms after that (${afterStop} ms after the stop), healthy after ${healthy} ms more; ` +
        `node b stopped (a up again): back on node a ${backOnA} ms later, consuming`,
    );
  }, 60_000);
});
