/**
 * Monitoring events across languages over real Redis (db 9, FLUSHDB here): Python Celery's own
 * EventReceiver (and its events.State) reads a Celeriac worker's events, and `celeriac events
 * --dump` reads a Python Celery worker's (`-E`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celeriac, receiveEvents } from '../../../src/index.js';
import { assertPeerAvailable, PEER_DIR, PeerWorker, PYTHON, peerCall } from '../../helpers/peer.js';
import { runCli, startCli, until } from '../../integration/cli/helpers.js';
import { inspector, redisUrl } from '../redis/helpers.js';

const DB = 9;
const URL = redisUrl({ db: DB });
const admin: Redis = inspector(DB);

beforeAll(async () => {
  await admin.connect();
  await admin.flushdb();
  await assertPeerAvailable();
});

afterAll(async () => {
  admin.disconnect();
});

/**
 * Celery's EventReceiver on the same Redis: prints "ready" once consuming, records every event until
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
  const child = spawn(PYTHON, ['-c', RECEIVER, URL, target, String(timeoutS)], {
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

describe('Python Celery reads a Celeriac worker’s events (Redis)', () => {
  it('sees worker-online/heartbeat/offline and task events; events.State derives SUCCESS and FAILURE', async () => {
    const name = `ts-events-${process.pid}@test`;
    const py = pythonReceiver(name, 40);
    await py.ready;
    const app = new Celeriac({ broker: URL, results: URL, logger: 'silent' });
    try {
      const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue: 'ts-events' });
      const fail = app.task(
        'tasks.fail',
        (m: string) => {
          throw Object.assign(new Error(m), { name: 'ValueError' });
        },
        { queue: 'ts-events' },
      );
      const worker = app.worker({ events: true, name, queues: ['ts-events'] });
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
      const heartbeat = mine.find((e) => e.type === 'worker-heartbeat');
      expect(heartbeat).toMatchObject({ freq: 2, sw_sys: expect.any(String) });
      expect(Array.isArray(heartbeat?.loadavg)).toBe(true);
    } finally {
      py.child.kill('SIGKILL');
      await app.close();
    }
  }, 60_000);
});

describe('`celery events --dump` (Celery’s own command) shows a Celeriac worker', () => {
  it('prints its online, task received/started/succeeded, heartbeat and shutdown lines', async () => {
    const name = `ts-dump-${process.pid}@test`;
    const dump = spawn(PYTHON, ['-m', 'celery', '-A', 'peer', '-b', URL, 'events', '--dump'], {
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
    const app = new Celeriac({ broker: URL, results: URL, logger: 'silent' });
    try {
      await until(() => out.includes('starting capture'), 'celery events to start', 20_000);
      await new Promise((r) => setTimeout(r, 500)); // its PSUBSCRIBE follows the banner
      const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue: 'ts-dump' });
      const worker = app.worker({ events: true, name, queues: ['ts-dump'] });
      await worker.start();
      const r = await add.delay(2, 3);
      expect(await r.get({ timeout: 10_000 })).toBe(5);
      await new Promise((res) => setTimeout(res, 2500)); // a heartbeat
      await worker.stop();
      await until(() => out.includes(`${name} [`) && /shutdown:/.test(out), 'the shutdown line', 10_000);
      const mine = out.split('\n').filter((l) => l.startsWith(`${name} [`));
      expect(mine[0]).toMatch(/started: active=0, clock=1, freq=2, .*sw_ident=celeriac/);
      expect(mine.find((l) => l.includes('task received:'))).toContain(
        `tasks.add(${r.id}) args=(2, 3) kwargs={}`,
      );
      expect(mine.find((l) => l.includes('task succeeded:'))).toMatch(/result=5, runtime=/);
      expect(mine.some((l) => l.includes('heartbeat:'))).toBe(true);
      expect(mine.at(-1)).toMatch(/shutdown: .*processed=1/);
    } finally {
      dump.kill('SIGKILL');
      await app.close();
    }
  }, 60_000);
});

describe('`celeriac events --dump` reads a Python Celery worker’s events (-E)', () => {
  it('prints JSON lines: worker-online, task-received … task-succeeded (from task.multi batches), worker-offline', async () => {
    const cli = startCli(['events', '--dump', '--broker', URL]);
    let peer: PeerWorker | null = null;
    try {
      await until(() => cli.output().stderr.includes('listening'), 'celeriac events to listen');
      const node = `py-events-${process.pid}@test`;
      peer = await PeerWorker.start(
        { broker: URL, backend: URL },
        { events: true, name: node, queues: 'py-events' },
      );
      const r = await peerCall({ broker: URL, backend: URL }, 'tasks.add', [20, 22], { queue: 'py-events' });
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

describe('`celeriac status` (Redis)', () => {
  it('lists a Celeriac worker and a Python Celery worker that answer, as a table', async () => {
    const app = new Celeriac({ broker: URL, results: URL, logger: 'silent' });
    const peerNode = `py-status-${process.pid}@test`;
    const tsNode = `ts-status-${process.pid}@test`;
    const peer = await PeerWorker.start(
      { broker: URL, backend: URL },
      { name: peerNode, queues: 'py-status' },
    );
    try {
      app.task('tasks.add', (a: number, b: number) => a + b, { queue: 'ts-status' });
      const worker = app.worker({ name: tsNode, queues: ['ts-status'], concurrency: 3 });
      await worker.start();
      await (await app.sendTask('tasks.add', [1, 2])).get({ timeout: 10_000 });
      const out = await runCli(['status', '--broker', URL, '--timeout', '2']);
      expect(out.code).toBe(0);
      const row = (node: string) => out.stdout.split('\n').find((l) => l.includes(node)) ?? '';
      expect(row(tsNode)).toMatch(/OK\s+│\s+celeriac/);
      expect(row(tsNode)).toMatch(/│\s+3\s+│\s+0\s+│\s+1\s+│/);
      expect(row(peerNode)).toMatch(/OK\s+│\s+celery/);
      expect(out.stdout).toMatch(/\d+ nodes online\./);
      const json = await runCli(['status', '--broker', URL, '--json', '--timeout', '2']);
      const nodes = json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { node: string; concurrency: number | null });
      expect(nodes.find((n) => n.node === peerNode)?.concurrency).toBe(2);
      await worker.stop();
    } finally {
      await peer.stop();
      await app.close();
    }
  }, 60_000);
});

describe('celeriac worker -E --metrics-port (CLI)', () => {
  it('sends monitoring events and serves /metrics with the counts of what it ran', async () => {
    const env = { CELERIAC_BROKER_URL: URL, CELERIAC_RESULTS_URL: URL };
    const app = new Celeriac({ broker: URL, results: URL, logger: 'silent' });
    const got: Array<Record<string, unknown>> = [];
    const receiver = await receiveEvents(app, (e) => got.push(e));
    const node = `ts-cli-${process.pid}@test`;
    const cli = startCli(
      [
        'worker',
        '--app',
        'examples/basic/app.ts',
        '-Q',
        'ts-cli',
        '-n',
        node,
        '-E',
        '--metrics-port',
        '0',
        '--loglevel',
        'warn',
      ],
      env,
    );
    try {
      await until(() => /metrics on :\d+\/metrics/.test(cli.output().stdout), 'the worker to be ready');
      const port = Number(/metrics on :(\d+)\/metrics/.exec(cli.output().stdout)?.[1]);
      const results = await Promise.all(
        [1, 2, 3].map((i) => app.sendTask('tasks.add', [i, i], {}, { queue: 'ts-cli' })),
      );
      for (const r of results) await r.get({ timeout: 10_000 });
      await until(
        () => got.filter((e) => e.type === 'task-succeeded' && e.hostname === node).length === 3,
        'three task-succeeded events',
      );
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('celeriac_tasks_total{task="tasks.add",state="succeeded"} 3');
      expect(text).toContain('celeriac_queue_depth{queue="ts-cli"} 0');
      cli.kill('SIGTERM');
      expect((await cli.result).code).toBe(0);
      await until(
        () => got.some((e) => e.type === 'worker-offline' && e.hostname === node),
        'worker-offline',
      );
      expect(got.find((e) => e.hostname === node)?.type).toBe('worker-online');
    } finally {
      if (cli.exitCode === null) cli.kill('SIGKILL');
      await receiver.close();
      await app.close();
    }
  }, 60_000);
});
