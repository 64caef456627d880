import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../../src/index.js';
import { Celeriac } from '../../../src/index.js';
import { assertPeerAvailable, PEER_DIR, PeerWorker, PYTHON } from '../../helpers/peer.js';
import { runCli } from '../../unit/cli/helpers.js';
import { inspector, REDIS_HOST, REDIS_PORT } from '../redis/helpers.js';

/**
 * Remote control across languages over Redis db 15 (flushed at the start): Python's `celery inspect`
 * / `celery control` against a Celeriac worker, and `app.control` / `celeriac inspect|control`
 * against the Python peer worker (../shared/celery-wire/peer.py). Fails, never skips, when Python
 * Celery or Redis is missing.
 */
const DB = 15;
const URL_ = `redis://${REDIS_HOST}:${REDIS_PORT}/${DB}`;
const suffix = randomUUID().slice(0, 6);
const TS_NODE = `ts-${suffix}@interop`;
const PY_NODE = `py-${suffix}@interop`;
const TS_QUEUE = `ctl-ts-${suffix}`;
const PY_QUEUE = `ctl-py-${suffix}`;

/** `python3 -m celery -A peer --workdir <peer dir> -b URL <args>`: stdout, stderr, exit code. */
function celery(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      ['-m', 'celery', '-A', 'peer', '--workdir', PEER_DIR, '-b', URL_, ...args],
      { timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number')
          reject(new Error(`celery ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
  });
}

let app: Celeriac;
let worker: Worker;
let peer: PeerWorker;
let release: () => void = () => {};

beforeAll(async () => {
  await assertPeerAvailable();
  const redis = inspector(DB);
  await redis.connect();
  await redis.flushdb();
  await redis.quit();
  app = new Celeriac({ broker: URL_, results: URL_, logger: 'silent', brokerOptions: { pollInterval: 50 } });
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
    { broker: URL_, backend: URL_ },
    { name: PY_NODE, queues: PY_QUEUE, concurrency: 2 },
  );
}, 60_000);

afterAll(async () => {
  release();
  await peer?.stop();
  await app?.close();
});

describe('Python Celery client → Celeriac worker', () => {
  it('celery inspect ping', async () => {
    const { code, stdout, stderr } = await celery(['inspect', 'ping', '-d', TS_NODE, '-j', '--timeout', '3']);
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout.trim())).toEqual({ [TS_NODE]: { ok: 'pong' } });
    const all = await celery(['inspect', 'ping', '-j', '--timeout', '2']);
    expect(JSON.parse(all.stdout.trim())).toMatchObject({
      [TS_NODE]: { ok: 'pong' },
      [PY_NODE]: { ok: 'pong' },
    });
  });

  it('celery control rate_limit changes the Celeriac worker rate', async () => {
    const { code, stdout, stderr } = await celery([
      'control',
      'rate_limit',
      'tasks.add',
      '7/s',
      '-d',
      TS_NODE,
      '--timeout',
      '3',
    ]);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(TS_NODE);
    expect(stdout).toContain('new rate limit set successfully');
    expect(worker.registeredTasks()).toContain('tasks.add [rate_limit=7/s]');
  });

  it('celery inspect active / registered read the Celeriac worker', async () => {
    const sent = await app.sendTask('tasks.hold', ['x'], {}, { queue: TS_QUEUE });
    const end = Date.now() + 5000;
    while (worker.active < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const active = await celery(['inspect', 'active', '-d', TS_NODE, '-j', '--timeout', '3']);
    expect(active.code, active.stderr).toBe(0);
    const tasks = (
      JSON.parse(active.stdout.trim()) as Record<string, Array<{ id: string; name: string; args: unknown }>>
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
    expect(Object.keys(tasks[0] ?? {})).toEqual([
      'id',
      'name',
      'args',
      'kwargs',
      'type',
      'hostname',
      'time_start',
      'acknowledged',
      'delivery_info',
      'worker_pid',
    ]);
    expect(tasks[0]).toMatchObject({
      id: sleeping.id,
      name: 'tasks.sleep',
      args: [3, 'x'],
      hostname: PY_NODE,
    });
  });

  it('app.control.rateLimit and revoke reach the Python worker', async () => {
    expect(
      await app.control.rateLimit('tasks.add', '9/s', { destination: PY_NODE, reply: true, timeout: 3000 }),
    ).toEqual({
      [PY_NODE]: { ok: 'new rate limit set successfully' },
    });
    const registered = await app.control.inspect({ destination: PY_NODE, timeout: 3000 }).registered();
    expect(registered[PY_NODE]).toContain('tasks.add [rate_limit=9/s]');
    const id = randomUUID();
    expect(await app.control.revoke(id, { destination: PY_NODE, reply: true, timeout: 3000 })).toEqual({
      [PY_NODE]: { ok: `tasks ${id} flagged as revoked` },
    });
    const revoked = await app.sendTask('tasks.add', [1, 2], {}, { queue: PY_QUEUE, taskId: id });
    const end = Date.now() + 10_000;
    while ((await revoked.state()) !== 'REVOKED' && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    expect(await revoked.state()).toBe('REVOKED');
  });

  it('celeriac inspect ping / active and control rate_limit (CLI) against the Python worker', async () => {
    const ping = await runCli(['inspect', 'ping', '-b', URL_, '-d', PY_NODE, '--timeout', '3', '--json']);
    expect(ping.code, ping.stderr).toBe(0);
    expect(JSON.parse(ping.stdout)).toEqual({ [PY_NODE]: { ok: 'pong' } });
    const table = await runCli(['inspect', 'ping', '-b', URL_, '--timeout', '2']);
    expect(table.stdout).toMatch(new RegExp(`${PY_NODE.replace(/[.@]/g, '\\$&')}\\s*│\\s*pong`));
    expect(table.stdout).toMatch(new RegExp(`${TS_NODE.replace(/[.@]/g, '\\$&')}\\s*│\\s*pong`));
    const sleeping = await app.sendTask('tasks.sleep', [3, 'cli'], {}, { queue: PY_QUEUE });
    let out = '';
    const end = Date.now() + 10_000;
    while (!out.includes(sleeping.id) && Date.now() < end)
      out = (await runCli(['inspect', 'active', '-b', URL_, '-d', PY_NODE, '--timeout', '2'])).stdout;
    expect(out).toContain(sleeping.id);
    expect(out).toContain('tasks.sleep');
    const rate = await runCli([
      'control',
      'rate_limit',
      'tasks.add',
      '4/s',
      '-b',
      URL_,
      '-d',
      PY_NODE,
      '--timeout',
      '3',
    ]);
    expect(rate.code, rate.stderr).toBe(0);
    expect(rate.stdout).toContain('new rate limit set successfully');
    const none = await runCli(['inspect', 'ping', '-b', URL_, '-d', 'nobody@nowhere', '--timeout', '0.3']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no nodes replied/);
  });
});
