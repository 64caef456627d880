/**
 * Celeriac client -> Python worker over RabbitMQ (a vhost of this file), with the real Python Celery
 * peer: this process publishes, a Python Celery worker runs the task, Celeriac's AsyncResult reads
 * the result over rpc:// (this process's reply queue) and over Redis.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { Celeriac, TaskError, TaskRevokedError } from '../../../src/index.js';
import { sleep } from '../../helpers/app.js';
import { PEER_DIR, PeerWorker, PYTHON } from '../../helpers/peer.js';
import { redisUrl } from '../redis/helpers.js';
import { amqpUrl, freshVhost } from './helpers.js';

const GET = { timeout: '20s' } as const;
let vhost = '';
let drop: () => Promise<void> = async () => {};
let python: PeerWorker | undefined;

beforeAll(async () => {
  ({ vhost, drop } = await freshVhost('interop-ts'));
});
afterAll(async () => {
  await drop();
});

function doneAt(dateDone: string | null | undefined): number {
  if (!dateDone) throw new Error('no date_done');
  return Date.parse(/[Zz]|[+-]\d\d:\d\d$/.test(dateDone) ? dateDone : `${dateDone}Z`);
}

for (const backend of ['rpc', 'redis'] as const) {
  describe(`interop over AMQP: Celeriac client -> Python worker, results over ${backend}`, () => {
    const results = backend === 'rpc' ? 'rpc://' : redisUrl({ db: 9 });
    // A Python worker per backend (its result backend is its own config), each on a queue of its own.
    const queue = `py-${backend}`;
    let app: Celeriac;

    beforeAll(async () => {
      python = await PeerWorker.start(
        { broker: amqpUrl(vhost), backend: results },
        { queues: queue, concurrency: 2 },
      );
      app = new Celeriac({ broker: amqpUrl(vhost), results, logger: 'silent' });
    });
    afterAll(async () => {
      await app?.close();
      await python?.stop();
    });
    beforeEach(() => {
      onTestFailed(() => console.error(`Python worker output (tail):\n${python?.tail(60)}`));
    });

    it('tasks.add, tasks.mul, tasks.xsum: get() returns the values', async () => {
      const [add, mul, xsum] = await Promise.all([
        app.sendTask<number>('tasks.add', [2, 3], {}, { queue }),
        app.sendTask<number>('tasks.mul', [6, 7], {}, { queue }),
        app.sendTask<number>('tasks.xsum', [[1, 2, 3, 4]], {}, { queue }),
      ]);
      expect(await add.get(GET)).toBe(5);
      expect(await mul.get(GET)).toBe(42);
      expect(await xsum.get(GET)).toBe(10);
    });

    it('tasks.echo: args and kwargs with non-ASCII text survive the round trip', async () => {
      const kwargs = { k: 'ünï', emoji: '🌱', list: [true, false] };
      const r = await app.sendTask('tasks.echo', [1, 'héllo ✓', { deep: ['ünï', null, 2.5] }], kwargs, {
        queue,
      });
      expect(await r.get(GET)).toEqual({ args: [1, 'héllo ✓', { deep: ['ünï', null, 2.5] }], kwargs });
    });

    it('tasks.fail: get() throws a TaskError with excType ValueError and the Python traceback', async () => {
      const r = await app.sendTask('tasks.fail', ['bad input ✗'], {}, { queue });
      const err = await r.get(GET).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskError);
      expect(err).toMatchObject({ taskId: r.id, excType: 'ValueError', excMessage: ['bad input ✗'] });
      expect((err as TaskError).traceback).toContain('ValueError: bad input ✗');
    });

    it('tasks.retry: the Python task retries itself; get() waits through RETRY to SUCCESS', async () => {
      const r = await app.sendTask('tasks.retry', [], { succeed_after: 2, countdown: 0.2 }, { queue });
      const states: string[] = [];
      const stop = await r.watch((meta) => states.push(meta.status));
      try {
        expect(await r.get(GET)).toEqual({ retries: 2 });
      } finally {
        await stop();
      }
      expect(states).toContain('RETRY');
    });

    it('countdown: the Python worker runs it no earlier than the countdown', async () => {
      const sent = Date.now();
      const r = await app.sendTask<number>('tasks.add', [20, 22], {}, { queue, countdown: '1500ms' });
      expect(await r.get(GET)).toBe(42);
      expect(Date.now()).toBeGreaterThanOrEqual(sent + 1500 - 20);
      if (backend === 'redis')
        expect(doneAt((await r.info())?.date_done)).toBeGreaterThanOrEqual(sent + 1480);
    });

    it('expires: one that expires before its eta ends REVOKED, get() throws TaskRevokedError', async () => {
      const r = await app.sendTask('tasks.add', [1, 2], {}, { queue, countdown: '1s', expires: 300 });
      const err = await r.get(GET).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskRevokedError);
      expect(err).toMatchObject({ excType: 'TaskRevokedError', excMessage: ['expired'] });
    });
  });
}

describe('interop over AMQP: Celeriac client -> Python worker started later', () => {
  it('priority: on a queue both sides declare with x-max-priority 9, API 9 runs first', async () => {
    const results = redisUrl({ db: 9 });
    const app = new Celeriac({
      broker: amqpUrl(vhost),
      results,
      logger: 'silent',
      brokerOptions: { queues: { 'ts-prio': { maxPriority: 9 } } },
    });
    let worker: ChildProcess | undefined;
    try {
      const sent: Array<{ priority: number; id: string }> = [];
      for (const priority of [0, 3, 6, 9]) {
        const r = await app.sendTask('tasks.echo', [`p${priority}`], {}, { queue: 'ts-prio', priority });
        sent.push({ priority, id: r.id });
      }
      worker = await priorityWorker(amqpUrl(vhost), results, 'ts-prio');
      const done: Array<{ priority: number; at: number }> = [];
      for (const s of sent) {
        const r = app.asyncResult(s.id);
        expect(await r.get(GET)).toEqual({ args: [`p${s.priority}`], kwargs: {} });
        done.push({ priority: s.priority, at: doneAt((await r.info())?.date_done) });
      }
      expect(done.sort((a, b) => a.at - b.at).map((d) => d.priority)).toEqual([9, 6, 3, 0]);
    } finally {
      if (worker && worker.exitCode === null) {
        worker.kill('SIGTERM');
        await Promise.race([new Promise((r) => worker?.once('exit', r)), sleep(10_000)]);
        if (worker.exitCode === null) worker.kill('SIGKILL');
      }
      await app.close();
    }
  });
});

/**
 * A Python Celery worker (solo pool, prefetch 1) whose queue is declared as Celery does with
 * `task_queues = [Queue(q, max_priority=9)]`: peer.py's `worker` has no flag for it, and RabbitMQ
 * refuses a queue declared with other arguments than it has.
 */
async function priorityWorker(broker: string, backend: string, queue: string): Promise<ChildProcess> {
  const code = `
import sys
sys.path.insert(0, sys.argv[1])
from peer import app
from kombu import Exchange, Queue
app.conf.broker_url = sys.argv[2]
app.conf.result_backend = sys.argv[3]
app.conf.task_queues = [Queue(sys.argv[4], Exchange(sys.argv[4]), routing_key=sys.argv[4], max_priority=9)]
app.conf.worker_prefetch_multiplier = 1
app.worker_main(argv=['worker', '-Q', sys.argv[4], '-c', '1', '-P', 'solo', '-n', 'prio-%d@%%h' % 1,
                      '--loglevel', 'INFO', '--without-gossip', '--without-mingle'])
`;
  const child = spawn(PYTHON, ['-c', code, PEER_DIR, broker, backend, queue], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`python priority worker not ready:\n${log}`)), 30_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('ready.')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (c) => reject(new Error(`python priority worker exited ${c}:\n${log}`)));
  });
  return child;
}
