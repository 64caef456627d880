/**
 * Monitoring events over RabbitMQ (own vhost), across languages: Python Celery's EventReceiver (and
 * events.State) and `celery events --dump` read a Celeriac worker's events, `celeriac events --dump
 * --broker amqp://…` reads a Python Celery worker's (`-E`), and the events are on the wire as
 * Celery's (topic exchange `celeryev`, raw JSON, delivery_mode 1, `hostname` header). Results go to
 * Redis db 6 (never flushed; task ids are unique). Fails, never skips, when RabbitMQ, Redis or the
 * Python peer is missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { type AsyncMessage, Connection } from 'rabbitmq-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard } from '../../../src/dashboard/server.js';
import { Celeriac, receiveEvents } from '../../../src/index.js';
import { assertPeerAvailable, PEER_DIR, PeerWorker, PYTHON, peerCall } from '../../helpers/peer.js';
import { runCli, startCli, until } from '../cli/helpers.js';
import { redisUrl } from '../redis/helpers.js';
import { AMQP_HOST, AMQP_PORT, amqpUrl, freshVhost, rabbitmqctl } from './helpers.js';

const RESULTS = redisUrl({ db: 6 });
let vhost = '';
let URL_ = '';
let drop: () => Promise<void> = async () => {};

beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('events'));
  URL_ = amqpUrl(vhost);
  await assertPeerAvailable();
}, 60_000);

afterAll(async () => {
  await drop();
});

/**
 * Celery's EventReceiver on the same vhost: prints "ready" once consuming, records every event until
 * the worker named argv[2] sends worker-offline (or argv[3] seconds pass), then prints one JSON
 * object: the events, and the task states Celery's events.State derived from them.
 */
const RECEIVER = `
import json, sys
sys.path.insert(0, ${JSON.stringify(PEER_DIR)})
from peer import app
app.conf.broker_url = sys.argv[1]
target, timeout = sys.argv[2], float(sys.argv[3])
state = app.events.State()
events = []
class Receiver(app.events.Receiver):
    def on_consume_ready(self, *args, **kwargs):
        print('ready', flush=True)
def on_event(event):
    events.append(dict(event))
    state.event(event)
    if event['type'] == 'worker-offline' and event['hostname'] == target:
        recv.should_stop = True
with app.connection() as conn:
    recv = Receiver(conn, handlers={'*': on_event})
    try:
        recv.capture(limit=None, timeout=timeout, wakeup=False)
    except Exception as exc:
        print('capture ended:', repr(exc), file=sys.stderr)
tasks = {uuid: {'name': t.name, 'state': t.state, 'result': t.result, 'exception': t.exception,
                'args': t.args, 'worker': t.worker.hostname if t.worker else None}
         for uuid, t in state.tasks.items()}
workers = {h: {'alive': w.alive, 'sw_ident': w.sw_ident, 'processed': w.processed} for h, w in state.workers.items()}
print(json.dumps({'events': events, 'tasks': tasks, 'workers': workers}, default=str))
`;

interface PyOut {
  events: Array<Record<string, unknown>>;
  tasks: Record<
    string,
    {
      name: string;
      state: string;
      result: string | null;
      exception: string | null;
      args: string;
      worker: string | null;
    }
  >;
  workers: Record<string, { alive: boolean; sw_ident: string; processed: number }>;
}

function pythonReceiver(
  target: string,
  timeoutS: number,
): { child: ChildProcess; ready: Promise<void>; done: Promise<PyOut> } {
  const child = spawn(PYTHON, ['-c', RECEIVER, URL_, target, String(timeoutS)], {
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('ready\n')) onReady();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<PyOut>((resolve, reject) => {
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as PyOut);
      } catch {
        reject(new Error(`python receiver exited ${code}: ${stdout}\n${stderr}`));
      }
    });
  });
  return { child, ready: Promise.race([ready, done.then(() => undefined)]), done };
}

const text = (body: unknown): string =>
  Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body);

describe('a Celeriac worker’s events on the wire (AMQP)', () => {
  it('topic exchange celeryev, routing keys worker.online / task.multi, raw JSON, delivery_mode 1, hostname header; receiveEvents reads them', async () => {
    const name = `ts-wire-${randomUUID().slice(0, 6)}@test`;
    const queue = `wire-${randomUUID().slice(0, 6)}`;
    const conn = new Connection({
      hostname: AMQP_HOST,
      port: AMQP_PORT,
      vhost,
      username: 'guest',
      password: 'guest',
    });
    const raw: AsyncMessage[] = [];
    const capture = conn.createConsumer(
      {
        queue: `capture-${randomUUID()}`,
        noAck: true,
        queueOptions: { exclusive: true, autoDelete: true },
        exchanges: [{ exchange: 'celeryev', type: 'topic', durable: true }],
        queueBindings: [{ exchange: 'celeryev', routingKey: '#' }],
      },
      (m) => void raw.push(m),
    );
    await new Promise((r) => capture.once('ready', r));
    const app = new Celeriac({ broker: URL_, results: RESULTS, logger: 'silent' });
    const got: Array<Record<string, unknown>> = [];
    const receiver = await receiveEvents(app, (e) => got.push(e));
    try {
      const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue });
      const worker = app.worker({ events: true, name, queues: [queue] });
      await worker.start();
      const r = await add.delay(2, 3);
      expect(await r.get({ timeout: 10_000 })).toBe(5);
      await worker.stop();
      await until(
        () => got.some((e) => e.type === 'worker-offline' && e.hostname === name),
        'worker-offline',
      );
      const types = got.filter((e) => e.hostname === name).map((e) => e.type);
      expect(types[0]).toBe('worker-online');
      for (const t of ['task-received', 'task-started', 'task-succeeded']) expect(types).toContain(t);
      expect(got.find((e) => e.type === 'task-succeeded' && e.uuid === r.id)).toMatchObject({ result: '5' });
      await until(() => raw.some((m) => m.routingKey === 'worker.offline'), 'the raw worker-offline');
      const mine = raw.filter((m) => m.headers?.hostname === name);
      const online = mine.find((m) => m.routingKey === 'worker.online');
      expect(online).toMatchObject({
        exchange: 'celeryev',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 1,
        priority: 0,
        headers: { hostname: name },
      });
      expect(JSON.parse(text(online?.body))).toMatchObject({
        type: 'worker-online',
        hostname: name,
        freq: 2,
      });
      const multi = mine.find((m) => m.routingKey === 'task.multi');
      expect(Array.isArray(JSON.parse(text(multi?.body)))).toBe(true);
      expect(mine.every((m) => (m as AsyncMessage & { deliveryMode?: number }).deliveryMode === 1)).toBe(
        true,
      );
      // The receiver's queue is Celery's: celeryev.<uuid>, x-message-ttl 5000, x-expires 60000.
      const queues = await rabbitmqctl('list_queues', '-p', vhost, 'name', 'auto_delete', 'arguments');
      expect(queues).toMatch(/celeryev\.[0-9a-f-]{36}\ttrue\t.*x-message-ttl.*5000/);
    } finally {
      await receiver.close();
      await app.close();
      await capture.close();
      await conn.close();
    }
  }, 60_000);
});

describe('Python Celery reads a Celeriac worker’s events (AMQP)', () => {
  it('EventReceiver sees worker-online/heartbeat/offline and task events; events.State derives SUCCESS and FAILURE', async () => {
    const name = `ts-events-${randomUUID().slice(0, 6)}@test`;
    const queue = `ts-events-${randomUUID().slice(0, 6)}`;
    const py = pythonReceiver(name, 40);
    await py.ready;
    const app = new Celeriac({ broker: URL_, results: RESULTS, logger: 'silent' });
    try {
      const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue });
      const fail = app.task(
        'tasks.fail',
        (m: string) => {
          throw Object.assign(new Error(m), { name: 'ValueError' });
        },
        { queue },
      );
      const worker = app.worker({ events: true, name, queues: [queue] });
      await worker.start();
      const ok = await add.delay(2, 3);
      const bad = await fail.delay('boom');
      expect(await ok.get({ timeout: 10_000 })).toBe(5);
      await expect(bad.get({ timeout: 10_000 })).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 2500)); // one heartbeat
      await worker.stop();
      await app.close();
      const out = await py.done;
      const mine = out.events.filter((e) => e.hostname === name);
      const types = mine.map((e) => e.type);
      expect(types[0]).toBe('worker-online');
      expect(types).toContain('worker-heartbeat');
      expect(types.at(-1)).toBe('worker-offline');
      for (const t of ['task-received', 'task-started', 'task-succeeded', 'task-failed'])
        expect(types).toContain(t);
      expect(out.tasks[ok.id]).toMatchObject({
        name: 'tasks.add',
        state: 'SUCCESS',
        result: '5',
        args: '(2, 3)',
        worker: name,
      });
      expect(out.tasks[bad.id]).toMatchObject({
        name: 'tasks.fail',
        state: 'FAILURE',
        exception: "ValueError('boom')",
      });
      expect(out.workers[name]).toMatchObject({ sw_ident: 'celeriac', alive: false });
    } finally {
      py.child.kill('SIGKILL');
      await app.close();
    }
  }, 60_000);

  it('`celery events --dump` (Celery’s own command) prints its online, task and shutdown lines', async () => {
    const name = `ts-dump-${randomUUID().slice(0, 6)}@test`;
    const queue = `ts-dump-${randomUUID().slice(0, 6)}`;
    const dump = spawn(PYTHON, ['-m', 'celery', '-A', 'peer', '-b', URL_, 'events', '--dump'], {
      cwd: PEER_DIR,
      env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    dump.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    dump.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const app = new Celeriac({ broker: URL_, results: RESULTS, logger: 'silent' });
    try {
      await until(() => out.includes('starting capture'), 'celery events to start', 20_000);
      // Its queue celeryev.<uuid> is bound after the banner.
      const end = Date.now() + 10_000;
      while (!/celeryev\.[0-9a-f-]{36}/.test(await rabbitmqctl('list_queues', '-p', vhost, 'name'))) {
        if (Date.now() > end) throw new Error('celery events declared no celeryev.<uuid> queue');
        await new Promise((r) => setTimeout(r, 200));
      }
      const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue });
      const worker = app.worker({ events: true, name, queues: [queue] });
      await worker.start();
      const r = await add.delay(2, 3);
      expect(await r.get({ timeout: 10_000 })).toBe(5);
      await worker.stop();
      await until(() => out.includes(`${name} [`) && /shutdown:/.test(out), 'the shutdown line', 10_000);
      const mine = out.split('\n').filter((l) => l.startsWith(`${name} [`));
      expect(mine[0]).toMatch(/started: active=0, clock=1, freq=2, .*sw_ident=celeriac/);
      expect(mine.find((l) => l.includes('task received:'))).toContain(
        `tasks.add(${r.id}) args=(2, 3) kwargs={}`,
      );
      expect(mine.find((l) => l.includes('task succeeded:'))).toMatch(/result=5, runtime=/);
      expect(mine.at(-1)).toMatch(/shutdown: .*processed=1/);
    } finally {
      dump.kill('SIGKILL');
      await app.close();
    }
  }, 60_000);
});

describe('`celeriac events --dump --broker amqp://…` reads a Python Celery worker’s events (-E)', () => {
  it('prints JSON lines: worker-online, task-received … task-succeeded (from task.multi batches), worker-offline', async () => {
    const cli = startCli(['events', '--dump', '--broker', URL_]);
    let peer: PeerWorker | null = null;
    const pyQueue = `py-events-${randomUUID().slice(0, 6)}`;
    const urls = { broker: URL_, backend: RESULTS };
    try {
      await until(() => cli.output().stderr.includes('listening'), 'celeriac events to listen');
      const node = `py-events-${randomUUID().slice(0, 6)}@test`;
      peer = await PeerWorker.start(urls, { events: true, name: node, queues: pyQueue });
      const r = await peerCall(urls, 'tasks.add', [20, 22], { queue: pyQueue });
      expect(r.state).toBe('SUCCESS');
      await peer.stop();
      peer = null;
      await until(() => cli.output().stdout.includes('"worker-offline"'), 'worker-offline from the peer');
      cli.kill('SIGINT');
      const done = await cli.result;
      expect(done.code).toBe(0);
      const events = done.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.hostname === node);
      const types = events.map((e) => e.type);
      expect(types[0]).toBe('worker-online');
      expect(types.at(-1)).toBe('worker-offline');
      expect(events.find((e) => e.type === 'task-received' && e.uuid === r.id)).toMatchObject({
        name: 'tasks.add',
        args: '[20, 22]',
      });
      expect(events.find((e) => e.type === 'task-succeeded' && e.uuid === r.id)).toMatchObject({
        result: '42',
      });
      expect(events[0]).toMatchObject({ sw_ident: 'py-celery', freq: 2 });
    } finally {
      await peer?.stop();
      if (cli.exitCode === null) cli.kill('SIGKILL');
    }
  }, 90_000);
});

describe('`celeriac status` (AMQP)', () => {
  it('lists a Celeriac worker and a Python Celery worker that answer', async () => {
    const app = new Celeriac({ broker: URL_, results: RESULTS, logger: 'silent' });
    const suffix = randomUUID().slice(0, 6);
    const peerNode = `py-status-${suffix}@test`;
    const tsNode = `ts-status-${suffix}@test`;
    const peer = await PeerWorker.start(
      { broker: URL_, backend: RESULTS },
      { name: peerNode, queues: `py-status-${suffix}` },
    );
    try {
      app.task('tasks.add', (a: number, b: number) => a + b);
      const worker = app.worker({ name: tsNode, queues: [`ts-status-${suffix}`], concurrency: 3 });
      await worker.start();
      const out = await runCli(['status', '--broker', URL_, '--timeout', '2']);
      expect(out.code, out.stderr).toBe(0);
      const row = (node: string) => out.stdout.split('\n').find((l) => l.includes(node)) ?? '';
      expect(row(tsNode)).toMatch(/OK\s+│\s+celeriac/);
      expect(row(peerNode)).toMatch(/OK\s+│\s+celery/);
      await worker.stop();
    } finally {
      await peer.stop();
      await app.close();
    }
  }, 60_000);
});

describe('the dashboard over AMQP', () => {
  it('shows a Celeriac worker and its task from the events', async () => {
    const app = new Celeriac({ broker: URL_, results: RESULTS, logger: 'silent' });
    const queue = `dash-${randomUUID().slice(0, 6)}`;
    const name = `dash-${randomUUID().slice(0, 6)}@test`;
    const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue });
    const dashboard = await startDashboard({ app, port: 0, auth: null });
    try {
      const worker = app.worker({ events: true, name, queues: [queue] });
      await worker.start();
      const r = await add.delay(1, 2);
      expect(await r.get({ timeout: 10_000 })).toBe(3);
      type State = {
        workers: Array<{ hostname: string; online: boolean }>;
        tasks: Array<{ uuid: string; state: string; worker: string }>;
      };
      let state: State = { workers: [], tasks: [] };
      const end = Date.now() + 10_000;
      while (!state.tasks.some((t) => t.uuid === r.id && t.state === 'SUCCESS') && Date.now() < end) {
        state = (await (await fetch(`${dashboard.url}api/state`)).json()) as State;
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(state.workers.find((w) => w.hostname === name)).toMatchObject({ online: true });
      expect(state.tasks.find((t) => t.uuid === r.id)).toMatchObject({ state: 'SUCCESS', worker: name });
      await worker.stop();
    } finally {
      await dashboard.close();
      await app.close();
    }
  }, 60_000);
});
