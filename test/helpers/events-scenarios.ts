/**
 * Monitoring events across languages, written once and run on every broker with a `celeryev`
 * fan-out (Redis in test/integration/observability/events-redis.test.ts, RabbitMQ in
 * test/integration/amqp/events.test.ts): Python Celery's EventReceiver (and events.State) and
 * `celery events --dump` read a Celeriac worker's events, `celeriac events --dump` reads a Python
 * Celery worker's (`-E`), and `celeriac status` lists both kinds of worker.
 *
 * Node and queue names are unique to the run. Nothing skips: a missing broker or Python peer fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Celeriac } from '../../src/index.js';
import { runCli, startCli, until } from '../integration/cli/helpers.js';
import { assertPeerAvailable, PEER_DIR, PeerWorker, PYTHON, peerCall } from './peer.js';

export interface EventsBroker {
  /** Shown in the describe names: 'Redis', 'AMQP'. */
  label: string;
  /** Broker and result URLs, read when a test runs (after the file's own beforeAll). */
  urls(): { broker: string; results: string };
  /**
   * Resolves once `celery events --dump`, whose banner has been printed, consumes the events (its
   * queue or its subscription follows the banner).
   */
  dumpConsuming(): Promise<void>;
}

/**
 * Celery's EventReceiver: prints "ready" once consuming, records every event until the worker named
 * argv[2] sends worker-offline (or argv[3] seconds pass), then prints one JSON object: the events,
 * and the task and worker states Celery's events.State derived from them.
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
  brokerUrl: string,
  target: string,
  timeoutS: number,
): { child: ChildProcess; ready: Promise<void>; done: Promise<PyOut> } {
  const child = spawn(PYTHON, ['-c', RECEIVER, brokerUrl, target, String(timeoutS)], {
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

/** A name unique to this run: `<label>-<random>`. */
const unique = (label: string) => `${label}-${randomUUID().slice(0, 6)}`;

export function describeEventsScenarios(broker: EventsBroker): void {
  const { label } = broker;

  beforeAll(async () => {
    await assertPeerAvailable();
  });

  describe(`Python Celery reads a Celeriac worker’s events (${label})`, () => {
    it('EventReceiver sees worker-online/heartbeat/offline and task events; events.State derives SUCCESS and FAILURE', async () => {
      const { broker: url, results } = broker.urls();
      const name = `${unique('ts-events')}@test`;
      const queue = unique('ts-events');
      const py = pythonReceiver(url, name, 40);
      await py.ready;
      const app = new Celeriac({ broker: url, results, logger: 'silent' });
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
        const heartbeat = mine.find((e) => e.type === 'worker-heartbeat');
        expect(heartbeat).toMatchObject({ freq: 2, sw_sys: expect.any(String) });
        expect(Array.isArray(heartbeat?.loadavg)).toBe(true);
      } finally {
        py.child.kill('SIGKILL');
        await app.close();
      }
    }, 60_000);

    it('`celery events --dump` (Celery’s own command) prints its online, task received/succeeded, heartbeat and shutdown lines', async () => {
      const { broker: url, results } = broker.urls();
      const name = `${unique('ts-dump')}@test`;
      const queue = unique('ts-dump');
      const dump = spawn(PYTHON, ['-m', 'celery', '-A', 'peer', '-b', url, 'events', '--dump'], {
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
      const app = new Celeriac({ broker: url, results, logger: 'silent' });
      const mine = () => out.split('\n').filter((l) => l.startsWith(`${name} [`));
      try {
        await until(() => out.includes('starting capture'), 'celery events to start', 20_000);
        await broker.dumpConsuming();
        const add = app.task('tasks.add', (a: number, b: number) => a + b, { queue });
        const worker = app.worker({ events: true, name, queues: [queue] });
        await worker.start();
        const r = await add.delay(2, 3);
        expect(await r.get({ timeout: 10_000 })).toBe(5);
        await until(() => mine().some((l) => l.includes('heartbeat:')), 'a heartbeat line', 10_000);
        await worker.stop();
        await until(() => mine().some((l) => /shutdown:/.test(l)), 'the shutdown line', 10_000);
        const lines = mine();
        expect(lines[0]).toMatch(/started: active=0, clock=1, freq=2, .*sw_ident=celeriac/);
        expect(lines.find((l) => l.includes('task received:'))).toContain(
          `tasks.add(${r.id}) args=(2, 3) kwargs={}`,
        );
        expect(lines.find((l) => l.includes('task succeeded:'))).toMatch(/result=5, runtime=/);
        expect(lines.at(-1)).toMatch(/shutdown: .*processed=1/);
      } finally {
        dump.kill('SIGKILL');
        await app.close();
      }
    }, 60_000);
  });

  describe(`\`celeriac events --dump\` reads a Python Celery worker’s events (-E) (${label})`, () => {
    it('prints JSON lines: worker-online, task-received … task-succeeded (from task.multi batches), worker-offline', async () => {
      const { broker: url, results } = broker.urls();
      const cli = startCli(['events', '--dump', '--broker', url]);
      let peer: PeerWorker | null = null;
      const queue = unique('py-events');
      const urls = { broker: url, backend: results };
      try {
        await until(() => cli.output().stderr.includes('listening'), 'celeriac events to listen');
        const node = `${unique('py-events')}@test`;
        peer = await PeerWorker.start(urls, { events: true, name: node, queues: queue });
        const r = await peerCall(urls, 'tasks.add', [20, 22], { queue });
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

  describe(`\`celeriac status\` (${label})`, () => {
    it('lists a Celeriac worker and a Python Celery worker that answer, as a table and as JSON', async () => {
      const { broker: url, results } = broker.urls();
      const app = new Celeriac({ broker: url, results, logger: 'silent' });
      const peerNode = `${unique('py-status')}@test`;
      const tsNode = `${unique('ts-status')}@test`;
      const queue = unique('ts-status');
      const peer = await PeerWorker.start(
        { broker: url, backend: results },
        { name: peerNode, queues: unique('py-status'), concurrency: 2 },
      );
      try {
        app.task('tasks.add', (a: number, b: number) => a + b, { queue });
        const worker = app.worker({ name: tsNode, queues: [queue], concurrency: 3 });
        await worker.start();
        await (await app.sendTask('tasks.add', [1, 2])).get({ timeout: 10_000 });
        const out = await runCli(['status', '--broker', url, '--timeout', '2']);
        expect(out.code, out.stderr).toBe(0);
        const row = (node: string) => out.stdout.split('\n').find((l) => l.includes(node)) ?? '';
        expect(row(tsNode)).toMatch(/OK\s+│\s+celeriac/);
        // concurrency 3, active 0, processed 1
        expect(row(tsNode)).toMatch(/│\s+3\s+│\s+0\s+│\s+1\s+│/);
        expect(row(peerNode)).toMatch(/OK\s+│\s+celery/);
        expect(out.stdout).toMatch(/\d+ nodes online\./);
        const json = await runCli(['status', '--broker', url, '--json', '--timeout', '2']);
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
}
