/**
 * Remote-control scenarios written once and run on the brokers of the integration tests (Redis in
 * test/integration/control, RabbitMQ in test/integration/amqp/control.test.ts), beside the
 * broker-agnostic test/integration/control/suite.ts (which also runs on the memory broker):
 * topic semantics on `celeryev`, the `celeriac inspect|control` CLI against a Celeriac worker, and
 * remote control across languages with the Python Celery peer.
 *
 * Nothing skips: a missing broker or Python peer fails.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fanout } from '../../src/brokers/transport.js';
import { REPLY_EXCHANGE, requestMessage } from '../../src/control/protocol.js';
import type { Worker } from '../../src/index.js';
import { Celeriac } from '../../src/index.js';
import type { WireMessage } from '../../src/messages/types.js';
import { INFO_KEYS } from '../integration/control/suite.js';
import { runCli } from '../unit/cli/helpers.js';
import { until } from './app.js';
import { assertPeerAvailable, PEER_DIR, PeerWorker, PYTHON } from './peer.js';

export interface ControlBroker {
  /** Shown in the describe names: 'Redis', 'AMQP'. */
  label: string;
  /**
   * Broker and result URLs (and broker options), read when the scenario starts (after the file's
   * own beforeAll). The broker must be the scenario's alone: it counts the nodes that answer.
   */
  urls(): { broker: string; results: string; brokerOptions?: Record<string, unknown> };
}

/** A control request (`ping`) for fan-out tests: its body does not matter there. */
export const pingRequest = (oid: string, priority = 0): WireMessage =>
  requestMessage(
    {
      method: 'ping',
      arguments: {},
      destination: null,
      pattern: null,
      matcher: null,
      ticket: 't-1',
      reply_to: { exchange: REPLY_EXCHANGE, routing_key: oid },
    },
    { clock: 1, timeoutMs: 1000, priority },
  );

/**
 * Topic semantics on `celeryev`, as Celery's topic exchange: bindings `''` and `#` receive every
 * routing key (the empty one too), `task.*` one word after `task.`, an exact key only itself.
 * `afterSubscribe` runs once the four subscriptions are in place (to look at the broker's side).
 */
export async function expectCeleryevTopics(
  fanout: Fanout,
  afterSubscribe: () => Promise<void> = async () => {},
): Promise<void> {
  const got: Record<'all' | 'hash' | 'task' | 'exact', string[]> = { all: [], hash: [], task: [], exact: [] };
  const offs = await Promise.all([
    fanout.subscribe('celeryev', '', (_m, rk) => got.all.push(rk)),
    fanout.subscribe('celeryev', '#', (_m, rk) => got.hash.push(rk)),
    fanout.subscribe('celeryev', 'task.*', (_m, rk) => got.task.push(rk)),
    fanout.subscribe('celeryev', 'worker.heartbeat', (_m, rk) => got.exact.push(rk)),
  ]);
  try {
    await afterSubscribe();
    for (const rk of ['', 'task.sent', 'task.a.b', 'worker.heartbeat'])
      await fanout.publish('celeryev', rk, pingRequest('x'));
    await until(() => got.all.length === 4 && got.hash.length === 4, 5000, 'every routing key on "" and #');
    await new Promise((r) => setTimeout(r, 100)); // nothing more arrives
    expect(got.all.sort()).toEqual(['', 'task.a.b', 'task.sent', 'worker.heartbeat']);
    expect(got.hash.sort()).toEqual(['', 'task.a.b', 'task.sent', 'worker.heartbeat']);
    expect(got.task).toEqual(['task.sent']);
    expect(got.exact).toEqual(['worker.heartbeat']);
  } finally {
    for (const off of offs) await off();
  }
}

/** `celeriac inspect` / `celeriac control` (the CLI, in-process) against a Celeriac worker. */
export function describeControlCli(broker: ControlBroker): void {
  describe(`celeriac inspect / control (CLI) against a Celeriac worker over ${broker.label}`, () => {
    it('tables and JSON keyed by node: ping, registered, rate_limit, pool_grow, stats, revoke (kept in the broker), shutdown; exits 1 / 2 on no reply / bad input', async () => {
      const { broker: url, results } = broker.urls();
      const app = new Celeriac({ broker: url, results, logger: 'silent' });
      app.task('tasks.add', (a: number, b: number) => a + b);
      const worker = app.worker({ name: 'cli@test', concurrency: 2, queues: ['celery'] });
      await worker.start();
      try {
        // A broadcast waits its whole timeout (1 s); the other commands name the node and end on its reply.
        const ping = await runCli(['inspect', 'ping', '-b', url]);
        expect(ping.code, ping.stderr).toBe(0);
        expect(ping.stdout).toMatch(/cli@test\s*│\s*pong/);
        expect(ping.stderr).toBe('1 node replied\n');
        const registered = await runCli(['inspect', 'registered', '-b', url, '-d', 'cli@test', '-j']);
        expect(JSON.parse(registered.stdout)).toEqual({ 'cli@test': ['tasks.add'] });
        const rate = await runCli(['control', 'rate_limit', 'tasks.add', '3/s', '-b', url, '-d', 'cli@test']);
        expect(rate.stdout).toMatch(/new rate limit set successfully/);
        expect(worker.registeredTasks()).toContain('tasks.add [rate_limit=3/s]');
        const grow = await runCli(['control', 'pool_grow', '3', '-b', url, '-d', 'cli@test']);
        expect(grow.stdout).toMatch(/cli@test\s*│\s*pool will grow/);
        expect(worker.concurrency).toBe(5);
        const stats = await runCli(['inspect', 'stats', '-b', url, '-d', 'cli@test', '--json']);
        expect(JSON.parse(stats.stdout)).toMatchObject({ 'cli@test': { pool: { 'max-concurrency': 5 } } });
        const unknown = await runCli([
          'control',
          'rate_limit',
          'tasks.nope',
          '1/s',
          '-b',
          url,
          '-d',
          'cli@test',
        ]);
        expect(unknown.code).toBe(1);
        expect(unknown.stdout).toMatch(/error: unknown task/);
        const none = await runCli(['inspect', 'active', '-b', url, '-d', 'other@test', '-t', '0.2']);
        expect(none.code).toBe(1);
        expect(none.stderr).toBe('error: no nodes replied within 0.2s (destination: other@test)\n');
        const bad = await runCli(['control', 'pool_shrink', 'x', '-b', url]);
        expect(bad.code).toBe(2);
        const ids = [randomUUID(), randomUUID()];
        const revoke = await runCli(['control', 'revoke', ...ids, '-b', url]);
        expect(revoke.stdout).toContain(`tasks ${ids.join(', ')} flagged as revoked`);
        expect(await (await app.transport()).revocations?.list()).toEqual(expect.arrayContaining(ids));
        const shutdown = await runCli(['control', 'shutdown', '-b', url, '-d', 'cli@test']);
        expect(shutdown.stdout).toBe('shutdown sent to cli@test\n');
        await until(() => worker.health().status === 'unhealthy', 5000, 'the worker to stop');
      } finally {
        await app.close();
      }
    });
  });
}

/**
 * Remote control across languages: Python's `celery inspect` / `celery control` against a Celeriac
 * worker, and `app.control` / `celeriac inspect|control` against the Python peer worker. The tests
 * of each describe run in order (the rate limit set by one is read by the next).
 */
export function describeControlInterop(broker: ControlBroker): void {
  const { label } = broker;
  const suffix = randomUUID().slice(0, 6);
  const TS_NODE = `ts-${suffix}@interop`;
  const PY_NODE = `py-${suffix}@interop`;
  const TS_QUEUE = `ctl-ts-${suffix}`;
  const PY_QUEUE = `ctl-py-${suffix}`;
  let url = '';
  let app: Celeriac;
  let worker: Worker;
  let peer: PeerWorker | undefined;
  let release: () => void = () => {};

  /** `python3 -m celery -A peer --workdir <peer dir> -b URL <args>`: stdout, stderr, exit code. */
  const celery = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      execFile(
        PYTHON,
        ['-m', 'celery', '-A', 'peer', '--workdir', PEER_DIR, '-b', url, ...args],
        { timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number')
            reject(new Error(`celery ${args.join(' ')}: ${err.message}\n${stderr}`));
          else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
        },
      );
    });

  describe(`remote control across languages (${label})`, () => {
    beforeAll(async () => {
      await assertPeerAvailable();
      const urls = broker.urls();
      url = urls.broker;
      app = new Celeriac({ ...urls, logger: 'silent' });
      const gate = new Promise<void>((r) => {
        release = r;
      });
      app.task('tasks.add', (a: number, b: number) => a + b);
      app.task('tasks.hold', async (x: string) => {
        await gate;
        return x;
      });
      worker = app.worker({ name: TS_NODE, queues: [TS_QUEUE], concurrency: 2 });
      await worker.start();
      peer = await PeerWorker.start(
        { broker: url, backend: urls.results },
        { name: PY_NODE, queues: PY_QUEUE, concurrency: 2 },
      );
    }, 60_000);

    afterAll(async () => {
      release();
      await peer?.stop();
      await app?.close();
    });

    describe('Python Celery client → Celeriac worker', () => {
      it('celery inspect ping → the Celeriac worker, and both nodes answer a broadcast', async () => {
        const { code, stdout, stderr } = await celery([
          'inspect',
          'ping',
          '-d',
          TS_NODE,
          '-j',
          '--timeout',
          '3',
        ]);
        expect(code, stderr).toBe(0);
        expect(JSON.parse(stdout.trim())).toEqual({ [TS_NODE]: { ok: 'pong' } });
        const all = await celery(['inspect', 'ping', '-j', '--timeout', '2']);
        expect(JSON.parse(all.stdout.trim())).toMatchObject({
          [TS_NODE]: { ok: 'pong' },
          [PY_NODE]: { ok: 'pong' },
        });
      });

      it('celery control rate_limit changes the Celeriac worker rate', async () => {
        const r = await celery([
          'control',
          'rate_limit',
          'tasks.add',
          '7/s',
          '-d',
          TS_NODE,
          '--timeout',
          '3',
        ]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain(TS_NODE);
        expect(r.stdout).toContain('new rate limit set successfully');
        expect(worker.registeredTasks()).toContain('tasks.add [rate_limit=7/s]');
      });

      it('celery inspect active / registered read the Celeriac worker', async () => {
        const sent = await app.sendTask('tasks.hold', ['x'], {}, { queue: TS_QUEUE });
        await until(() => worker.active >= 1, 5000, 'the task to start');
        const active = await celery(['inspect', 'active', '-d', TS_NODE, '-j', '--timeout', '3']);
        expect(active.code, active.stderr).toBe(0);
        const tasks = (
          JSON.parse(active.stdout.trim()) as Record<
            string,
            Array<{ id: string; name: string; args: unknown }>
          >
        )[TS_NODE];
        expect(tasks?.map((t) => [t.id, t.name, t.args])).toEqual([[sent.id, 'tasks.hold', ['x']]]);
        const registered = await celery(['inspect', 'registered', '-d', TS_NODE, '-j', '--timeout', '3']);
        expect(JSON.parse(registered.stdout.trim())).toEqual({
          [TS_NODE]: ['tasks.add [rate_limit=7/s]', 'tasks.hold'],
        });
      });
    });

    describe('Celeriac client → Python Celery worker', () => {
      it('app.control.ping and inspect().active() (Celery shapes)', async () => {
        expect(await app.control.ping({ destination: PY_NODE, timeout: 3000 })).toEqual({
          [PY_NODE]: { ok: 'pong' },
        });
        const sleeping = await app.sendTask('tasks.sleep', [3, 'x'], {}, { queue: PY_QUEUE });
        let tasks: Array<Record<string, unknown>> = [];
        const end = Date.now() + 10_000;
        while (!tasks.length && Date.now() < end) {
          const active = await app.control.inspect({ destination: PY_NODE, timeout: 2000 }).active();
          tasks = (active[PY_NODE] ?? []) as unknown as Array<Record<string, unknown>>;
        }
        expect(tasks).toHaveLength(1);
        expect(Object.keys(tasks[0] ?? {})).toEqual(INFO_KEYS);
        expect(tasks[0]).toMatchObject({
          id: sleeping.id,
          name: 'tasks.sleep',
          args: [3, 'x'],
          hostname: PY_NODE,
        });
      });

      it('app.control.rateLimit and revoke reach the Python worker', async () => {
        expect(
          await app.control.rateLimit('tasks.add', '9/s', {
            destination: PY_NODE,
            reply: true,
            timeout: 3000,
          }),
        ).toEqual({ [PY_NODE]: { ok: 'new rate limit set successfully' } });
        const registered = await app.control.inspect({ destination: PY_NODE, timeout: 3000 }).registered();
        expect(registered[PY_NODE]).toContain('tasks.add [rate_limit=9/s]');
        const id = randomUUID();
        expect(await app.control.revoke(id, { destination: PY_NODE, reply: true, timeout: 3000 })).toEqual({
          [PY_NODE]: { ok: `tasks ${id} flagged as revoked` },
        });
        const revoked = await app.sendTask('tasks.add', [1, 2], {}, { queue: PY_QUEUE, taskId: id });
        await until(
          async () => (await revoked.state()) === 'REVOKED',
          10_000,
          'REVOKED by the Python worker',
        );
      });

      it('celeriac inspect ping / active and control rate_limit (CLI) against the Python worker', async () => {
        const ping = await runCli(['inspect', 'ping', '-b', url, '-d', PY_NODE, '--timeout', '3', '--json']);
        expect(ping.code, ping.stderr).toBe(0);
        expect(JSON.parse(ping.stdout)).toEqual({ [PY_NODE]: { ok: 'pong' } });
        const table = await runCli(['inspect', 'ping', '-b', url, '--timeout', '2']);
        expect(table.stdout).toMatch(new RegExp(`${PY_NODE.replace(/[.@]/g, '\\$&')}\\s*│\\s*pong`));
        expect(table.stdout).toMatch(new RegExp(`${TS_NODE.replace(/[.@]/g, '\\$&')}\\s*│\\s*pong`));
        const sleeping = await app.sendTask('tasks.sleep', [3, 'cli'], {}, { queue: PY_QUEUE });
        let out = '';
        const end = Date.now() + 10_000;
        while (!out.includes(sleeping.id) && Date.now() < end)
          out = (await runCli(['inspect', 'active', '-b', url, '-d', PY_NODE, '--timeout', '2'])).stdout;
        expect(out).toContain(sleeping.id);
        expect(out).toContain('tasks.sleep');
        const rate = await runCli([
          'control',
          'rate_limit',
          'tasks.add',
          '4/s',
          '-b',
          url,
          '-d',
          PY_NODE,
          '--timeout',
          '3',
        ]);
        expect(rate.code, rate.stderr).toBe(0);
        expect(rate.stdout).toContain('new rate limit set successfully');
        const none = await runCli(['inspect', 'ping', '-b', url, '-d', 'nobody@nowhere', '--timeout', '0.3']);
        expect(none.code).toBe(1);
        expect(none.stderr).toMatch(/no nodes replied/);
      });
    });
  });
}
