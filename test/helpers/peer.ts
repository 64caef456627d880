/**
 * The real Python Celery peer (`../shared/celery-wire/peer.py`, Debian's python3-celery under
 * /usr/bin/python3) for interop tests: a worker to start and stop, and the client commands
 * (`call`, `get`, `canvas`, `ping`) run as child processes whose JSON output is parsed. Broker and
 * backend URLs are parameters, so the same helper serves Redis and AMQP.
 *
 * Nothing here skips: a missing interpreter, Celery package or broker makes the caller's test fail
 * with a message that says what is missing.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Json, JsonObject } from '../fixtures.js';
import { fixturesDir } from '../fixtures.js';

export const PYTHON = '/usr/bin/python3';
/** The directory of peer.py (the parent of the fixtures). */
export const PEER_DIR = path.dirname(fixturesDir);
export const PEER_SCRIPT = path.join(PEER_DIR, 'peer.py');

/** Where the peer finds its broker and its result backend. */
export interface PeerUrls {
  broker: string;
  backend: string;
  /**
   * The queue that stands for Celery's default `celery` in this test run (calls and scripts send
   * there, a worker consumes it), so that concurrent runs of a test file never share a queue.
   */
  defaultQueue?: string;
}

/** What `call`, `get` and `canvas` print (peer.py's `result_json`), plus how the process ended. */
export interface PeerResult {
  id: string;
  state: string;
  result?: Json;
  exc_type?: string;
  exc_message?: string[];
  traceback?: string | null;
  /** 'timeout' when the result was not ready in time. */
  error?: string;
  /** group only */
  children?: string[];
  states?: string[];
  /** The process's exit code: 0 SUCCESS (or --no-wait), 1 FAILURE, 2 timeout. */
  exitCode: number;
  stderr: string;
}

const CHILD_ENV = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };

let checked: Promise<void> | null = null;

/** Fails (never skips) with an actionable message when the peer cannot run here. */
export function assertPeerAvailable(): Promise<void> {
  checked ??= (async () => {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: run scripts/test-setup.sh`);
    if (!existsSync(PEER_SCRIPT)) throw new Error(`${PEER_SCRIPT} not found (../shared/celery-wire)`);
    const { code, stdout, stderr } = await runPython(
      ['-c', 'import celery; print(celery.__version__)'],
      20_000,
    );
    if (code !== 0) {
      throw new Error(
        `Python Celery is not importable by ${PYTHON} (apt-get install -y python3-celery python3-redis python3-amqp): ${stderr.trim()}`,
      );
    }
    if (!stdout.trim().startsWith('5.')) throw new Error(`expected Celery 5.x, got ${stdout.trim()}`);
  })();
  return checked;
}

function runPython(
  argv: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      argv,
      { timeout: timeoutMs, env: CHILD_ENV, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          // Spawn failure or killed by the timeout: not an exit code of the peer.
          reject(new Error(`${PYTHON} ${argv.slice(0, 3).join(' ')}…: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
  });
}

function lastJsonLine(stdout: string, stderr: string, what: string): JsonObject {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const value = JSON.parse(line) as Json;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  throw new Error(`${what}: expected one JSON object on stdout, got ${JSON.stringify(stdout)}\n${stderr}`);
}

async function peerCommand(urls: PeerUrls, argv: string[], timeoutMs: number): Promise<PeerResult> {
  const [cmd, ...rest] = argv;
  const { code, stdout, stderr } = await runPython(
    [PEER_SCRIPT, cmd as string, '--broker', urls.broker, '--backend', urls.backend, ...rest],
    timeoutMs,
  );
  const out = lastJsonLine(stdout, stderr, `peer.py ${argv.join(' ')} (exit ${code})`);
  return { ...(out as unknown as Omit<PeerResult, 'exitCode' | 'stderr'>), exitCode: code, stderr };
}

/** Options of `peer.py call` (seconds, as in Celery). */
export interface PeerCallOptions {
  kwargs?: Record<string, Json>;
  countdown?: number;
  expires?: number;
  /** Celery's wire priority (on Redis 0 is served first). */
  priority?: number;
  queue?: string;
  /** Seconds to wait for the result. Default 15. */
  timeout?: number;
  noWait?: boolean;
  ignoreResult?: boolean;
}

/**
 * `peer.py call`: Python's `app.send_task(...)`, then `AsyncResult.get()` unless `noWait`.
 *
 * @example
 * const r = await peerCall(urls, 'tasks.add', [2, 3]); // { state: 'SUCCESS', result: 5, … }
 */
export function peerCall(
  urls: PeerUrls,
  task: string,
  args: Json[] = [],
  options: PeerCallOptions = {},
): Promise<PeerResult> {
  const argv = ['call', task, JSON.stringify(args)];
  if (options.kwargs) argv.push('--kwargs', JSON.stringify(options.kwargs));
  for (const key of ['countdown', 'expires', 'priority'] as const) {
    const v = options[key];
    if (v !== undefined) argv.push(`--${key}`, String(v));
  }
  const queue = options.queue ?? urls.defaultQueue;
  if (queue) argv.push('--queue', queue);
  const timeout = options.timeout ?? 15;
  argv.push('--timeout', String(timeout));
  if (options.noWait) argv.push('--no-wait');
  if (options.ignoreResult) argv.push('--ignore-result');
  return peerCommand(urls, argv, (timeout + 15) * 1000);
}

/**
 * `peer.py get`: waits for a result with Python's AsyncResult. Note: peer.py cannot print a REVOKED
 * result (its exception is not JSON-serializable and the command crashes); use `peerResult` then.
 */
export function peerGet(urls: PeerUrls, id: string, timeout = 15): Promise<PeerResult> {
  return peerCommand(urls, ['get', id, '--timeout', String(timeout)], (timeout + 15) * 1000);
}

/** `peer.py canvas chain|group|chord` with steps `[name, args?, kwargs?]`. */
export function peerCanvas(
  urls: PeerUrls,
  kind: 'chain' | 'group' | 'chord',
  steps: Array<[string, Json[]?, Record<string, Json>?]>,
  timeout = 15,
): Promise<PeerResult> {
  return peerCommand(
    urls,
    ['canvas', kind, JSON.stringify(steps), '--timeout', String(timeout)],
    (timeout + 15) * 1000,
  );
}

/** `peer.py ping`: the replies of a broadcast ping (`[{"node": {"ok": "pong"}}]`), or [] on none. */
export async function peerPing(urls: PeerUrls, timeout = 2): Promise<Json[]> {
  const { stdout, stderr } = await runPython(
    [PEER_SCRIPT, 'ping', '--broker', urls.broker, '--backend', urls.backend, '--timeout', String(timeout)],
    (timeout + 15) * 1000,
  );
  try {
    const value = JSON.parse(stdout.trim()) as Json;
    return Array.isArray(value) ? value : [];
  } catch {
    throw new Error(`peer.py ping: unexpected output ${JSON.stringify(stdout)}\n${stderr}`);
  }
}

const PRELUDE = `
import json, sys
sys.path.insert(0, sys.argv[1])
import peer
from peer import app
app.conf.broker_url = sys.argv[2]
app.conf.result_backend = sys.argv[3]
ARGS = json.loads(sys.argv[4])
if sys.argv[5]:
    app.conf.task_default_queue = sys.argv[5]

def result_out(res, timeout):
    from celery.exceptions import TimeoutError as CeleryTimeout
    out = {'id': res.id}
    try:
        value = res.get(timeout=timeout, propagate=False)
    except CeleryTimeout:
        out.update(state=res.state, error='timeout')
        return out
    out['state'] = res.state
    if isinstance(value, BaseException):
        out.update(result=None, exc_type=type(value).__name__,
                   exc_message=[str(a) for a in getattr(value, 'args', ())],
                   traceback=res.traceback)
    else:
        out['result'] = value
    return out
`;

/**
 * Runs a Python snippet with peer.py's app configured for `urls` (its `task_default_queue` is
 * `urls.defaultQueue` when set), for what peer.py's commands cannot say: a chain routed across
 * queues, links, a REVOKED result. In the snippet: `app`, `peer`, `json`,
 * `ARGS` (the decoded `args`) and `result_out(res, timeout)` (peer.py's result JSON, also for
 * REVOKED). It must print one JSON object as its last line of stdout.
 *
 * @example
 * await peerScript(urls, "print(json.dumps(result_out(app.AsyncResult(ARGS['id']), 10)))", { id });
 */
export async function peerScript(
  urls: PeerUrls,
  code: string,
  args: Json = null,
  timeoutMs = 30_000,
): Promise<JsonObject> {
  const {
    code: exit,
    stdout,
    stderr,
  } = await runPython(
    [
      '-c',
      `${PRELUDE}\n${code}`,
      PEER_DIR,
      urls.broker,
      urls.backend,
      JSON.stringify(args),
      urls.defaultQueue ?? '',
    ],
    timeoutMs,
  );
  if (exit !== 0) throw new Error(`python snippet exited ${exit}:\n${stderr}\n${stdout}`);
  return lastJsonLine(stdout, stderr, 'python snippet');
}

/** Reads a task's result with Python's AsyncResult, REVOKED included (peer.py `get` crashes on it). */
export async function peerResult(urls: PeerUrls, id: string, timeout = 15): Promise<PeerResult> {
  const out = await peerScript(
    urls,
    "print(json.dumps(result_out(app.AsyncResult(ARGS['id']), ARGS['timeout'])))",
    { id, timeout },
    (timeout + 15) * 1000,
  );
  return { ...(out as unknown as Omit<PeerResult, 'exitCode' | 'stderr'>), exitCode: 0, stderr: '' };
}

/** Options of `peer.py worker`. */
export interface PeerWorkerOptions {
  /** Comma-separated queues. Default `urls.defaultQueue`, else `celery`. */
  queues?: string;
  concurrency?: number;
  pool?: 'prefork' | 'solo' | 'threads';
  /** Node name (`-n`). Default `peer-<random>@%h`, unique per worker. */
  name?: string;
  events?: boolean;
  resultExtended?: boolean;
  /** How long to wait for the "ready." line. Default 30 s. */
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
// A test process that dies without afterAll must not leave Python workers behind.
process.once('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the worker and its prefork children (its own process group)
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * A Python Celery worker (`peer.py worker`) in its own process group. `start()` resolves on its
 * "ready." log line; `stop()` does a warm shutdown (SIGTERM), then SIGKILL after a grace period.
 *
 * @example
 * const worker = await PeerWorker.start(urls, { concurrency: 2 });
 * afterAll(() => worker.stop());
 */
export class PeerWorker {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #log = '';

  private constructor(child: ChildProcess, name: string) {
    this.#child = child;
    this.name = name;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const append = (chunk: Buffer) => {
      this.#log += chunk.toString('utf8');
      if (this.#log.length > 200_000) this.#log = this.#log.slice(-100_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  }

  static async start(urls: PeerUrls, options: PeerWorkerOptions = {}): Promise<PeerWorker> {
    await assertPeerAvailable();
    const name = options.name ?? `peer-${Math.random().toString(36).slice(2, 8)}@%h`;
    const argv = [
      PEER_SCRIPT,
      'worker',
      '--broker',
      urls.broker,
      '--backend',
      urls.backend,
      '-Q',
      options.queues ?? urls.defaultQueue ?? 'celery',
      '-c',
      String(options.concurrency ?? 2),
      '-P',
      options.pool ?? 'prefork',
      '-n',
      name,
    ];
    if (options.events) argv.push('-E');
    if (options.resultExtended) argv.push('--result-extended');
    const child = spawn(PYTHON, argv, { env: CHILD_ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    const worker = new PeerWorker(child, name);
    await worker.#ready(options.readyTimeoutMs ?? 30_000);
    return worker;
  }

  async #ready(timeoutMs: number): Promise<void> {
    const child = this.#child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
      const onData = () => {
        if (/ ready\.\s*$/m.test(this.#log)) done();
      };
      const onExit = (code: number | null, signal: string | null) =>
        done(new Error(`exited (code ${code}, signal ${signal}) before it was ready`));
      const onError = (err: Error) => done(err);
      const done = (err?: Error) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
        if (err) {
          killGroup(child, 'SIGKILL');
          reject(new Error(`Python Celery worker ${this.name}: ${err.message}\n${this.output()}`));
        } else resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
      onData();
    });
  }

  /** Everything the worker printed so far (for failure messages). */
  output(): string {
    return this.#log;
  }

  /** The last `lines` lines of output. */
  tail(lines = 40): string {
    return this.#log.split('\n').slice(-lines).join('\n');
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Warm shutdown, then SIGKILL of its process group after `graceMs`. Idempotent. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    killGroup(this.#child, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const outcome = await Promise.race([this.#exited.then(() => 'exited' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      killGroup(this.#child, 'SIGKILL');
      await this.#exited;
    }
    // Prefork children that outlived their parent share its group.
    const pid = this.#child.pid;
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // no process left in the group
      }
    }
  }
}

/** A suffix for this run's queue names: concurrent runs of a test file (other engineers, CI) share a db. */
export function runSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

/**
 * Deletes this run's keys on a kombu Redis db (its queues, priority sub-queues and bindings): no
 * FLUSHDB, since another run of the same file may be using the db at the same time.
 */
export async function deleteRunKeys(client: Redis, suffix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `*${suffix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}
