import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from 'rabbitmq-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../../src/brokers/amqp/index.js';
import type { HealthReport } from '../../../src/health.js';
import { Celeriac } from '../../../src/index.js';
import { sleep } from '../../helpers/app.js';
import { amqpUrl, closeNamedConnection, freshVhost } from './helpers.js';

let vhost = '';
let drop: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('faults'));
});
afterAll(async () => {
  await drop();
});

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** An app with a worker on a queue of its own, and a record of every health report it gave. */
async function running(label: string, brokerOptions: Record<string, unknown> = {}) {
  const queue = `faults.${label}.${randomUUID().slice(0, 6)}`;
  const connectionName = `celeriac-faults-${label}-${randomUUID().slice(0, 6)}`;
  const app = new Celeriac({
    broker: amqpUrl(vhost),
    results: 'rpc://',
    brokerOptions: { connectionName, ...brokerOptions },
    logger: 'silent',
  });
  const add = app.task('tests.add', async (a: number, b: number) => a + b, { queue });
  const worker = app.worker({ queues: [queue], concurrency: 4 });
  await worker.start();
  const seen: HealthReport[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      seen.push(await app.health());
      await sleep(5);
    }
  })();
  cleanup.push(async () => {
    sampling = false;
    await sampler;
    await worker.stop();
    await app.close();
  });
  const transport = (await app.transport()) as AmqpTransport;
  expect(transport).toBeInstanceOf(AmqpTransport);
  const roundTrip = async (a: number) =>
    expect(await (await add.delay(a, 1)).get({ timeout: '20s' })).toBe(a + 1);
  await roundTrip(1);
  /** Waits for a degraded report and then for healthy again; returns the degraded reason. */
  const degradedThenHealthy = async (): Promise<string> => {
    const deadline = Date.now() + 20_000;
    let reason: string | undefined;
    while (Date.now() < deadline) {
      const bad = seen.find((h) => h.status !== 'healthy');
      if (bad) reason = bad.reason ?? bad.status;
      if (reason && seen.at(-1)?.status === 'healthy') return reason;
      await sleep(10);
    }
    throw new Error(`health never went degraded then healthy: ${JSON.stringify(seen.slice(-3))}`);
  };
  return { app, queue, connectionName, transport, roundTrip, degradedThenHealthy, seen };
}

async function admin(): Promise<Connection> {
  const conn = new Connection({
    url: amqpUrl(vhost),
    connectionName: `celeriac-faults-admin-${randomUUID()}`,
  });
  cleanup.push(() => conn.close());
  await conn.onConnect(5000);
  return conn;
}

describe('AMQP faults: the worker consumes again by itself, and health says what happened', () => {
  it('consumer cancelled by the server (queue deleted and re-declared)', async () => {
    const r = await running('cancel');
    const conn = await admin();
    await conn.queueDelete({ queue: r.queue });
    await conn.queueDeclare({ queue: r.queue, durable: true });
    const reason = await r.degradedThenHealthy();
    expect(reason).toMatch(/cancelled by the server/);
    await r.roundTrip(2);
  });

  it('a channel closed by a 406 (PRECONDITION_FAILED)', async () => {
    const r = await running('406');
    const [ch] = r.transport.consumerChannels();
    expect(ch).toBeDefined();
    ch?.basicAck({ deliveryTag: 424242 }); // unknown delivery tag: RabbitMQ closes the channel with 406
    const reason = await r.degradedThenHealthy();
    expect(reason).toMatch(/channel .* closed/);
    await r.roundTrip(3);
  });

  it('heartbeats missed while the event loop is blocked', async () => {
    const r = await running('heartbeat', { heartbeat: '1s' });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4500); // block this thread 4.5 s
    const reason = await r.degradedThenHealthy();
    expect(reason).toMatch(/RabbitMQ|channel/);
    await r.roundTrip(4);
  });

  it('connection closed by the server (rabbitmqctl close_connection on our named connection)', async () => {
    const r = await running('close');
    expect(await closeNamedConnection(vhost, r.connectionName)).toBeGreaterThanOrEqual(1);
    const reason = await r.degradedThenHealthy();
    expect(reason).toMatch(/RabbitMQ|channel/);
    await r.roundTrip(5);
  });
});

describe('SIGKILL of a worker mid-batch', () => {
  it('of 1,000 tasks: every run logged, no id missing, duplicates counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-kill-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, 'runs.log');
    writeFileSync(log, '');
    const queue = `faults.kill.${randomUUID().slice(0, 6)}`;
    const app = new Celeriac({ broker: amqpUrl(vhost), logger: 'silent' });
    cleanup.push(() => app.close());
    const logged = app.task('tests.logged', async (_n: number) => 0, { queue, ignoreResult: true });
    const N = 1000;
    for (let i = 0; i < N; i += 100)
      await Promise.all(Array.from({ length: 100 }, (_, j) => logged.delay(i + j)));

    const spawnWorker = (): ChildProcess => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(import.meta.dirname, 'fixtures', 'logging-worker.ts'),
          amqpUrl(vhost),
          log,
          queue,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      cleanup.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      return child;
    };
    const runs = () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map(Number);

    const first = spawnWorker();
    const deadline = Date.now() + 60_000;
    while (runs().length < 300) {
      if (Date.now() > deadline) throw new Error(`first worker ran only ${runs().length} tasks`);
      await sleep(2);
    }
    first.kill('SIGKILL');
    const atKill = runs().length;
    await new Promise((r) => first.once('exit', r));
    spawnWorker();
    while (new Set(runs()).size < N) {
      if (Date.now() > deadline) break;
      await sleep(20);
    }
    await sleep(500); // anything still to come in flight
    const all = runs();
    const distinct = new Set(all);
    const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !distinct.has(i));
    const duplicates = all.length - distinct.size;
    console.log(
      `SIGKILL after ${atKill} runs: ${all.length} runs for ${N} tasks, ${distinct.size} distinct, ` +
        `${duplicates} duplicate runs (tasks in flight or prefetched when the worker died), ${missing.length} missing`,
    );
    expect(missing).toEqual([]);
    // At most what the killed worker held: concurrency 20 + prefetch 10.
    expect(duplicates).toBeLessThanOrEqual(30);
    expect(await (await app.transport()).depth(queue)).toBe(0);
  });
});

describe('malformed messages', () => {
  it('are dead-lettered with their reason, and the worker keeps serving', async () => {
    const r = await running('malformed');
    const conn = await admin();
    const ch = await conn.acquire();
    cleanup.push(() => ch.close());
    const base = { exchange: '', routingKey: r.queue, durable: true, timestamp: undefined };
    const id = () => randomUUID();
    const bad = [
      {
        what: 'not JSON',
        env: {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          headers: { task: 'tests.add', id: id() },
        },
        body: 'not json {',
      },
      {
        what: 'wrong content type',
        env: {
          contentType: 'application/x-python-serialize',
          contentEncoding: 'binary',
          headers: { task: 'tests.add', id: id() },
        },
        body: '\x80\x04K\x01.',
      },
      {
        what: 'missing headers',
        env: { contentType: 'application/json', contentEncoding: 'utf-8', headers: {} },
        body: '[[1, 2], {}, {}]',
      },
      {
        what: 'unknown task',
        env: {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          headers: { task: 'tests.nope', id: id() },
        },
        body: '[[], {}, {}]',
      },
    ];
    for (const b of bad) await ch.basicPublish({ ...base, ...b.env }, Buffer.from(b.body, 'latin1'));
    const deadline = Date.now() + 10_000;
    let letters = await r.transport.deadLetters.list(r.queue);
    while (letters.length < bad.length && Date.now() < deadline) {
      await sleep(50);
      letters = await r.transport.deadLetters.list(r.queue);
    }
    expect(letters).toHaveLength(bad.length);
    for (const l of letters) expect(l.reason.length).toBeGreaterThan(3);
    console.log(`dead-letter reasons: ${letters.map((l) => JSON.stringify(l.reason)).join(', ')}`);
    expect(letters.map((l) => l.reason).join('\n')).toMatch(/tests\.nope/);
    await r.roundTrip(6);
  });
});
