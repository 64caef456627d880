import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celeriac, type TaskContext, TaskError } from '../../../src/index.js';
import { wireDir } from '../../fixtures.js';
import { deletePrefix, REDIS_HOST, REDIS_PORT } from './helpers.js';

/**
 * Interop with the real Python Celery 5.2.6 peer (../shared/celery-wire/peer.py, Debian's
 * python3-celery), both ways, over one Redis db of its own (peer.py takes plain URLs, and Celery 5.2's
 * result backend has no key prefix). Queue names are random per run. Fails when Python or Redis is
 * missing.
 */
const run = promisify(execFile);
const DB = 11;
const URL_ = `redis://${REDIS_HOST}:${REDIS_PORT}/${DB}`;
const PEER = path.join(wireDir, 'peer.py');
const suffix = randomUUID().slice(0, 8);
const toCeleriac = `interop-ts-${suffix}`;
const toPython = `interop-py-${suffix}`;

interface PeerResult {
  id: string;
  state: string;
  result?: unknown;
  exc_type?: string;
  exc_message?: string[];
  traceback?: string;
}

async function peer(...args: string[]): Promise<PeerResult> {
  const [cmd, ...rest] = args;
  try {
    const { stdout } = await run(
      '/usr/bin/python3',
      [PEER, cmd as string, '--broker', URL_, '--backend', URL_, ...rest],
      {
        timeout: 60_000,
      },
    );
    return JSON.parse(stdout.trim().split('\n').pop() as string) as PeerResult;
  } catch (err) {
    const e = err as { stdout?: string; code?: number };
    // exit 1 = FAILURE, still a JSON answer
    if (e.stdout?.trim()) return JSON.parse(e.stdout.trim().split('\n').pop() as string) as PeerResult;
    throw err;
  }
}

/** The state Python's own AsyncResult reads for a task id (after it is ready). */
async function pythonState(id: string): Promise<string> {
  const code = [
    'import sys, time',
    `sys.path.insert(0, ${JSON.stringify(PEER.replace(/\/[^/]+$/, ''))})`,
    'import peer',
    `peer.app.conf.broker_url = peer.app.conf.result_backend = ${JSON.stringify(URL_)}`,
    `r = peer.app.AsyncResult(${JSON.stringify(id)})`,
    'end = time.time() + 20',
    'while not r.ready() and time.time() < end: time.sleep(0.05)',
    'print(r.state)',
  ].join('\n');
  const { stdout } = await run('/usr/bin/python3', ['-c', code], { timeout: 30_000 });
  return stdout.trim();
}

const retried: Record<string, number> = {};
let app: Celeriac;
let client: Celeriac;
let pyWorker: ChildProcess | undefined;

beforeAll(async () => {
  expect(existsSync(PEER), `the Python peer ${PEER}`).toBe(true);
  app = new Celeriac({
    broker: URL_,
    results: URL_,
    logger: 'silent',
    defaultQueue: toCeleriac,
    brokerOptions: { pollInterval: 50 },
  });
  app.task('tasks.add', (a: number, b: number) => a + b);
  app.task('tasks.mul', (a: number, b: number) => a * b);
  app.task('tasks.xsum', (numbers: number[]) => numbers.reduce((s, n) => s + n, 0));
  app.task('tasks.echo', (ctx: TaskContext, ...args: unknown[]) => ({ args, kwargs: ctx.kwargs }), {
    bind: true,
  });
  app.task('tasks.fail', (message = 'boom') => {
    const err = new Error(String(message));
    err.name = 'ValueError';
    throw err;
  });
  app.task(
    'tasks.retry',
    (ctx: TaskContext) => {
      const succeedAfter = Number(ctx.kwargs.succeed_after ?? 2);
      retried[ctx.id] = ctx.retries;
      if (ctx.retries < succeedAfter)
        throw ctx.retry({ countdown: Number(ctx.kwargs.countdown ?? 0.5) * 1000 });
      return { retries: ctx.retries };
    },
    { bind: true },
  );
  await app.worker({ queues: [toCeleriac], concurrency: 8 }).start();

  client = new Celeriac({ broker: URL_, results: URL_, logger: 'silent', defaultQueue: toPython });
  pyWorker = spawn(
    '/usr/bin/python3',
    [
      PEER,
      'worker',
      '--broker',
      URL_,
      '--backend',
      URL_,
      '-Q',
      toPython,
      '-c',
      '4',
      '-P',
      'threads',
      '--loglevel',
      'WARNING',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let log = '';
  pyWorker.stderr?.on('data', (b: Buffer) => {
    log += b.toString();
  });
  // Ready when it answers a task.
  const r = await client.sendTask('tasks.add', [0, 0], {}, { queue: toPython });
  await r.get({ timeout: '60s' }).catch((e: unknown) => {
    throw new Error(`the Python worker did not start: ${String(e)}\n${log}`);
  });
}, 90_000);

afterAll(async () => {
  if (pyWorker?.pid) process.kill(pyWorker.pid, 'SIGTERM');
  await app?.close();
  await client?.close();
  // This run's queues, bindings and wake lists (results expire on their own, after a day).
  const admin = new Redis({ host: REDIS_HOST, port: REDIS_PORT, db: DB });
  await deletePrefix(admin, '', `*${suffix}*`);
  admin.disconnect();
});

describe('Python client -> Celeriac worker (Redis)', () => {
  it('add, mul, xsum, echo (args + kwargs, non-ASCII), fail, retry, countdown, expires, priority', async () => {
    const q = ['--queue', toCeleriac, '--timeout', '30'];
    const [add, mul, xsum, echo, fail, retry, countdown, expired, priority] = await Promise.all([
      peer('call', 'tasks.add', '[2, 3]', ...q),
      peer('call', 'tasks.mul', '[6, 7]', ...q),
      peer('call', 'tasks.xsum', '[[1, 2, 3, 4]]', ...q),
      peer(
        'call',
        'tasks.echo',
        '[1, "h\u00e9llo \u2713"]',
        '--kwargs',
        '{"k": "v", "n\u00e9": [1, 2]}',
        ...q,
      ),
      peer('call', 'tasks.fail', '["nope"]', ...q),
      peer('call', 'tasks.retry', '[]', '--kwargs', '{"succeed_after": 2, "countdown": 0.3}', ...q),
      peer('call', 'tasks.add', '[1, 1]', '--countdown', '2', ...q),
      // peer.py cannot print a REVOKED result (TaskRevokedError is not JSON): send, then ask Python's AsyncResult.
      peer('call', 'tasks.add', '[1, 2]', '--expires', '0.001', '--no-wait', ...q),
      peer('call', 'tasks.add', '[4, 4]', '--priority', '9', ...q),
    ]);
    expect(add).toMatchObject({ state: 'SUCCESS', result: 5 });
    expect(mul).toMatchObject({ state: 'SUCCESS', result: 42 });
    expect(xsum).toMatchObject({ state: 'SUCCESS', result: 10 });
    expect(echo).toMatchObject({
      state: 'SUCCESS',
      result: { args: [1, 'h\u00e9llo \u2713'], kwargs: { k: 'v', 'n\u00e9': [1, 2] } },
    });
    expect(fail).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError', exc_message: ['nope'] });
    expect(retry).toMatchObject({ state: 'SUCCESS', result: { retries: 2 } });
    expect(countdown).toMatchObject({ state: 'SUCCESS', result: 2 });
    expect(await pythonState(expired.id)).toBe('REVOKED');
    expect(priority).toMatchObject({ state: 'SUCCESS', result: 8 });
  }, 90_000);
});

describe('Celeriac client -> Python worker (Redis)', () => {
  it('add, mul, xsum, echo, fail, retry, countdown, expires, priority; results read by AsyncResult', async () => {
    const o = { queue: toPython };
    const started = Date.now();
    const [add, mul, xsum, echo, fail, retry, countdown, priority] = await Promise.all([
      client.sendTask('tasks.add', [2, 3], {}, o),
      client.sendTask('tasks.mul', [6, 7], {}, o),
      client.sendTask('tasks.xsum', [[1, 2, 3, 4]], {}, o),
      client.sendTask('tasks.echo', [1, 'h\u00e9llo \u2713'], { k: 'v' }, o),
      client.sendTask('tasks.fail', ['nope'], {}, o),
      client.sendTask('tasks.retry', [], { succeed_after: 1, countdown: 0.3 }, o),
      client.sendTask('tasks.add', [1, 1], {}, { ...o, countdown: '2s' }),
      client.sendTask('tasks.add', [4, 4], {}, { ...o, priority: 9 }),
    ]);
    const expired = await client.sendTask('tasks.add', [1, 2], {}, { ...o, expires: 1 });
    const get = { timeout: '30s' as const };
    expect(await add.get(get)).toBe(5);
    expect(await mul.get(get)).toBe(42);
    expect(await xsum.get(get)).toBe(10);
    expect(await echo.get(get)).toEqual({ args: [1, 'h\u00e9llo \u2713'], kwargs: { k: 'v' } });
    const err = await fail.get(get).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect(err).toMatchObject({ excType: 'ValueError', excMessage: ['nope'] });
    expect((err as TaskError).traceback).toContain('ValueError');
    expect(await retry.get(get)).toEqual({ retries: 1 });
    expect(await countdown.get(get)).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(await priority.get(get)).toBe(8);
    const revoked = await expired.get(get).catch((e: unknown) => e);
    expect(revoked).toBeInstanceOf(TaskError);
    expect(await expired.state()).toBe('REVOKED');
  }, 90_000);
});

/** Runs Python code with peer.py's app configured for this db; prints its last line. */
async function python(lines: string[]): Promise<string> {
  const code = [
    'import sys, json',
    `sys.path.insert(0, ${JSON.stringify(PEER.replace(/\/[^/]+$/, ''))})`,
    'import peer',
    'from celery import chain, signature',
    `peer.app.conf.broker_url = peer.app.conf.result_backend = ${JSON.stringify(URL_)}`,
    'app = peer.app',
    ...lines,
  ].join('\n');
  const { stdout } = await run('/usr/bin/python3', ['-c', code], { timeout: 60_000 });
  return stdout.trim().split('\n').pop() as string;
}

describe('canvas across languages (Redis)', () => {
  it('a Python chain continues through Celeriac and Python steps (embed.chain), in both directions', async () => {
    const out = await python([
      `s1 = signature('tasks.add', args=(2, 2), app=app).set(queue=${JSON.stringify(toCeleriac)})`,
      `s2 = signature('tasks.mul', args=(8,), app=app).set(queue=${JSON.stringify(toPython)})`,
      `s3 = signature('tasks.add', args=(1,), app=app).set(queue=${JSON.stringify(toCeleriac)})`,
      `s4 = signature('tasks.mul', args=(2,), app=app).set(queue=${JSON.stringify(toPython)})`,
      'r = chain(s1, s2, s3, s4).apply_async()',
      'print(json.dumps(r.get(timeout=30)))',
    ]);
    expect(JSON.parse(out)).toBe(((2 + 2) * 8 + 1) * 2);
  }, 60_000);

  it('links (callbacks) and link_error (errbacks) sent by Python run when the task ran on Celeriac', async () => {
    const out = await python([
      `cb = signature('tasks.mul', args=(10,), app=app).set(queue=${JSON.stringify(toPython)})`,
      `r = app.send_task('tasks.add', args=(2, 3), queue=${JSON.stringify(toCeleriac)}, link=cb)`,
      'r.get(timeout=30)',
      'child = r.children[0] if r.children else None',
      'linked = child.get(timeout=30) if child else None',
      `eb = signature('tasks.echo', args=('errback',), app=app, immutable=True).set(queue=${JSON.stringify(toPython)}, task_id='eb-' + r.id)`,
      `f = app.send_task('tasks.fail', args=('x',), queue=${JSON.stringify(toCeleriac)}, link_error=eb)`,
      'f.get(timeout=30, propagate=False)',
      "err = app.AsyncResult('eb-' + r.id).get(timeout=30)",
      'print(json.dumps({"add": r.result, "linked": linked, "errback": err, "failed": f.state}))',
    ]);
    expect(JSON.parse(out)).toEqual({
      add: 5,
      linked: 50,
      errback: { args: ['errback'], kwargs: {} },
      failed: 'FAILURE',
    });
  }, 60_000);
});

describe('events across languages (Redis)', () => {
  it('one publish reaches a Python subscriber (by task name, fields as kwargs) and a TypeScript subscriber', async () => {
    const seen: unknown[] = [];
    const onTs = app.task('interop.on_signup', (payload: Record<string, unknown>) => {
      seen.push(payload);
      return 'ts';
    });
    const signedUp = client.event('user.signed_up');
    signedUp.subscribe('tasks.echo', { queue: toPython }).subscribe(onTs.name, { queue: toCeleriac });
    const published = await signedUp.publish({ id: '42', email: 'ada@example.com' });
    const py = published.results.get('tasks.echo');
    const ts = published.results.get(onTs.name);
    expect(await py?.get({ timeout: '30s' })).toEqual({
      args: [],
      kwargs: { id: '42', email: 'ada@example.com' },
    });
    expect(await ts?.get({ timeout: '30s' })).toBe('ts');
    expect(seen).toEqual([{ id: '42', email: 'ada@example.com' }]);
  }, 60_000);
});

describe('a mixed fleet on one queue (Redis)', () => {
  it('Python and Celeriac workers consume the same queue side by side; every task runs once', async () => {
    const shared = `interop-shared-${suffix}`;
    const ran: string[] = [];
    const tsApp = new Celeriac({
      broker: URL_,
      results: URL_,
      logger: 'silent',
      brokerOptions: { pollInterval: 50 },
    });
    tsApp.task(
      'tasks.add',
      (ctx: TaskContext, a: number, b: number) => {
        ran.push(ctx.id);
        return a + b;
      },
      { bind: true },
    );
    const py = spawn(
      '/usr/bin/python3',
      [
        PEER,
        'worker',
        '--broker',
        URL_,
        '--backend',
        URL_,
        '-Q',
        shared,
        '-c',
        '2',
        '-P',
        'threads',
        '-n',
        `mixed-${suffix}@%h`,
        '--loglevel',
        'WARNING',
      ],
      { stdio: 'ignore' },
    );
    const admin = new Redis({ host: REDIS_HOST, port: REDIS_PORT, db: DB });
    try {
      // The Python worker is up once its pidbox queue is bound.
      const end = Date.now() + 30_000;
      while (
        !(await admin.smembers('_kombu.binding.celery.pidbox')).some((m) => m.includes(`mixed-${suffix}@`))
      ) {
        if (Date.now() > end) throw new Error('the Python worker did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      await tsApp.worker({ queues: [shared], concurrency: 2 }).start();
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => client.sendTask('tasks.add', [i, 1], {}, { queue: shared })),
      );
      const values = await Promise.all(results.map((r) => r.get({ timeout: '60s' })));
      expect(values).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(new Set(ran).size).toBe(ran.length);
      // Both took a share.
      expect(ran.length).toBeGreaterThan(0);
      expect(ran.length).toBeLessThan(60);
    } finally {
      admin.disconnect();
      if (py.pid) process.kill(py.pid, 'SIGTERM');
      await tsApp.close();
    }
  }, 90_000);
});
