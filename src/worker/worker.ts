import { availableParallelism, hostname as osHostname } from 'node:os';
import type { Consumer, Delivery, Transport } from '../brokers/transport.js';
import { Mailbox } from '../control/mailbox.js';
import type { AppCore } from '../core.js';
import type { Duration } from '../duration.js';
import { toMs } from '../duration.js';
import { ConfigError } from '../errors.js';
import type { HealthReport } from '../health.js';
import { aggregate } from '../health.js';
import type { Logger } from '../logging.js';
import type { Publisher } from '../publisher/publisher.js';
import { failureMeta, retryMeta, revokedMeta, stateMeta, successMeta } from '../results/exceptions.js';
import type { ResultMeta, TaskState } from '../results/meta.js';
import type { ResultSink } from '../results/sink.js';
import type { Task } from '../task.js';
import { LazyAbortController } from './abort.js';
import type { WorkerEventMap } from './events.js';
import { TypedEmitter } from './events.js';
import type { Outcome } from './execute.js';
import { errbackRequests, followUps, retryRequest } from './follow-ups.js';
import type { Pool, PoolKind, PoolRun } from './pool.js';
import { POOL_KINDS } from './pool.js';
import { createPool } from './pools/index.js';
import { AutoPrefetch } from './prefetch.js';
import type { Job, Refusal } from './prepare.js';
import { isRefusal, prepare } from './prepare.js';
import type { Rate } from './rate-limit.js';
import { parseRate, TokenBucket } from './rate-limit.js';
import { RecentSet } from './recent.js';

/** `prefetch: 'auto'`: the reserve covers this much work at the recent rate, re-sized this often. */
const AUTO_PREFETCH_WINDOW_MS = 10;
const AUTO_PREFETCH_TICK_MS = 25;
const NO_LIMITS = Object.freeze({ hardMs: null, softMs: null });

/** Options of `app.worker()`. */
export interface WorkerOptions {
  /** Queues to consume. Default: the default queue plus every queue the app's tasks and routes name. */
  queues?: readonly string[];
  /** Tasks run at once on the default pool. Default 10. */
  concurrency?: number;
  /** The default pool: `async` (the event loop, default), `threads` or `process`. Tasks may pick another with their `pool` option. */
  pool?: PoolKind;
  /** Sizes of the other pools that tasks ask for. Default: the number of CPUs. */
  poolSizes?: Partial<Record<PoolKind, number>>;
  /**
   * Messages reserved beyond the pools' sizes. Default `'auto'`: about 10 ms of work at the
   * worker's recent rate, at least 1 (so a long task holds at most one message back) and at most
   * 4 × the pools' sizes, 64 at least (see `worker/prefetch.ts`). A number fixes it; 0 reserves nothing extra
   * (strict fair dispatch for long tasks).
   */
  prefetch?: number | 'auto';
  /** Node name, `celeriac@<host>` by default (Celery's `-n`). */
  name?: string;
  /** An eta further away than this is parked in the broker instead of waiting in memory. Default 1s. */
  etaHorizon?: Duration;
  /** How long `stop()` lets in-flight tasks finish. Default 30s. */
  shutdownTimeout?: Duration;
  /** The module that exports the app, loaded in each thread or child (threads and process pools). */
  appModule?: string;
  /** Replace a thread or child after this many tasks (threads and process pools). */
  maxTasksPerChild?: number;
  /** Replace a thread or child whose memory exceeds this many bytes after a task (threads and process pools). */
  maxMemoryPerChild?: number;
  /** How many recently succeeded (task, id) pairs are remembered to drop redelivered duplicates. Default 10,000; 0 turns it off. */
  idempotencyWindow?: number;
  /** Send Celery's monitoring events (task-received…, worker heartbeats) on the broker's `celeryev` fan-out, as Celery's `-E`. Default false. */
  events?: boolean;
  /** How often the broker's revocation store is read again (revokes broadcast while this worker was reconnecting). Default 10s. */
  revocationRefresh?: Duration;
}

/** @internal what the app gives a worker. */
export interface WorkerCore extends AppCore {
  /** A broker's transport, connected (`default` unless named). */
  transport(broker?: string): Promise<Transport>;
  /** The broker (by name) a queue lives on. */
  brokerOfQueue(queue: string): string;
  readonly publisher: Publisher;
  /** Event subscriptions of this app: which task (on which queue) subscribes to which event. */
  subscriptions(): Array<{ event: string; task: string; queue: string }>;
  /** Queues the app's tasks and routes name (for the default `queues`). */
  knownQueues(): string[];
  queueOf(taskName: string): string;
}

/** A task as remote control reports it (Celery's `inspect active` / `reserved` entry). */
export interface TaskInfo {
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  type: string;
  hostname: string;
  time_start: number | null;
  acknowledged: boolean;
  delivery_info: { exchange: string; routing_key: string; priority: number; redelivered: boolean };
  worker_pid: number | null;
  eta?: string | null;
}

/**
 * A task run: what the pool receives (PoolRun, with the signal made only when read) and what the
 * worker tracks while it runs. A class, so the getter and updateState live on the prototype.
 */
class Run implements PoolRun {
  readonly task: Task<never[], unknown>;
  readonly id: string;
  args: unknown[];
  readonly kwargs: Record<string, unknown>;
  readonly headers: Record<string, unknown>;
  readonly retries: number;
  readonly queue: string;
  readonly event: string | null;
  readonly controller = new LazyAbortController();
  readonly started = Date.now();
  /** Set when stop() gave up on the task: its late outcome is not settled. */
  abandoned = false;

  constructor(
    readonly job: Job,
    readonly pool: PoolKind,
    readonly hostname: string,
    readonly limits: { hardMs: number | null; softMs: number | null },
    private readonly storeState: (job: Job, state: TaskState, meta: unknown) => Promise<void>,
  ) {
    this.task = job.task;
    this.id = job.id;
    this.args = job.args;
    this.kwargs = job.kwargs;
    this.headers = job.message.headers;
    this.retries = job.retries;
    this.queue = job.delivery.queue;
    this.event = job.event;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  updateState(state: TaskState, meta: unknown): Promise<void> {
    return this.storeState(this.job, state, meta);
  }
}

/**
 * Consumes task messages and runs them in pools (the event loop by default) with a concurrency
 * limit. Acks after the task finishes (at-least-once), parks eta messages in the broker,
 * dead-letters bad input with a reason and keeps serving. Create with `app.worker()`; nothing
 * happens until `start()`.
 *
 * @example
 * const worker = app.worker({ queues: ['celery'], concurrency: 50 });
 * await worker.start();
 * process.on('SIGTERM', () => worker.stop());
 */
export class Worker extends TypedEmitter<WorkerEventMap> {
  readonly hostname: string;
  readonly defaultPool: PoolKind;
  /** The fixed prefetch, or the automatic one (`prefetch: 'auto'`). */
  readonly #prefetch: number | AutoPrefetch;
  #prefetchTimer: NodeJS.Timeout | undefined;
  readonly #core: WorkerCore;
  readonly #options: WorkerOptions;
  readonly #log: Logger;
  readonly #etaHorizonMs: number;
  readonly #shutdownMs: number;
  #queues: string[];
  #transport: Transport | null = null;
  #sink: ResultSink | null = null;
  /** One consumer per broker this worker's queues live on. */
  #consumers: Consumer[] = [];
  /** The transport each delivery came from (a worker may consume queues on several brokers). */
  readonly #owner = new WeakMap<Delivery, Transport>();
  /** The broker of the first single-broker consume(): its deliveries get no #owner entry. */
  #soleTransport: Transport | null = null;
  #mailbox: Mailbox | null = null;
  #revocationTimer: NodeJS.Timeout | undefined;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  readonly #sizes: Record<PoolKind, number>;
  readonly #pools = new Map<PoolKind, Pool>();
  readonly #reserved: Record<PoolKind, Job[]> = { async: [], threads: [], process: [] };
  /** Set while #pump runs for a pool (it is not re-entered). */
  readonly #pumping: Record<PoolKind, boolean> = { async: false, threads: false, process: false };
  /** Running tasks per pool (the members of #running, counted). */
  readonly #busy: Record<PoolKind, number> = { async: 0, threads: 0, process: 0 };
  readonly #waiting = new Map<Job, NodeJS.Timeout>();
  readonly #running = new Set<Run>();
  #revoked = new Set<string>();
  /** Revoked here since the last read of the store (kept when the set is rebuilt from the store). */
  #revokedLately = new Set<string>();
  readonly #recent: RecentSet;
  readonly #limits = new Map<string, TokenBucket>();
  readonly #timeLimits = new Map<string, { softMs: number | null; hardMs: number | null }>();
  #settling = 0;
  #idle: (() => void) | null = null;
  /** ctx.updateState of every run (one function, not one closure per run). */
  readonly #storeState = (job: Job, state: TaskState, meta: unknown): Promise<void> =>
    this.#store(job, stateMeta(job.id, state, meta));
  readonly #startedAt = Date.now();
  readonly stats = {
    received: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    revoked: 0,
    rejected: 0,
    duplicates: 0,
  };

  /** @internal use `app.worker()`. */
  constructor(core: WorkerCore, options: WorkerOptions = {}) {
    super();
    this.#core = core;
    this.#options = options;
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new ConfigError('concurrency', `expected an integer ≥ 1, got ${concurrency}`);
    const prefetch = options.prefetch ?? 'auto';
    if (prefetch !== 'auto' && (!Number.isInteger(prefetch) || prefetch < 0))
      throw new ConfigError('prefetch', `expected an integer ≥ 0 or 'auto', got ${String(prefetch)}`);
    const pool = options.pool ?? 'async';
    if (!POOL_KINDS.includes(pool))
      throw new ConfigError('pool', `expected one of ${POOL_KINDS.join(', ')}, got '${String(pool)}'`);
    this.defaultPool = pool;
    this.#prefetch =
      prefetch === 'auto'
        ? new AutoPrefetch(AUTO_PREFETCH_WINDOW_MS, () => Math.max(64, 4 * this.#poolCredit()))
        : prefetch;
    const cpus = availableParallelism();
    this.#sizes = { async: cpus, threads: cpus, process: cpus, ...options.poolSizes, [pool]: concurrency };
    for (const [kind, size] of Object.entries(this.#sizes)) {
      if (!Number.isInteger(size) || size < 1)
        throw new ConfigError(`poolSizes.${kind}`, `expected an integer ≥ 1, got ${size}`);
    }
    this.hostname = options.name ?? `celeriac@${osHostname()}`;
    const queues = options.queues ?? core.knownQueues();
    if (!queues.length || queues.some((q) => typeof q !== 'string' || !q))
      throw new ConfigError('queues', 'expected a non-empty list of queue names');
    this.#queues = [...new Set(queues)];
    this.#etaHorizonMs = toMs(options.etaHorizon ?? 1000, 'etaHorizon');
    this.#shutdownMs = toMs(options.shutdownTimeout ?? 30_000, 'shutdownTimeout');
    this.#recent = new RecentSet(options.idempotencyWindow ?? 10_000);
    this.#log = core.log.child({ worker: this.hostname });
    for (const task of core.tasks.values()) {
      const perSecond = parseRate(task.options.rateLimit, `task ${task.name}: rateLimit`);
      if (perSecond > 0) this.#limits.set(task.name, new TokenBucket(perSecond));
    }
  }

  /** Tasks run at once on the default pool. */
  get concurrency(): number {
    return this.#sizes[this.defaultPool];
  }

  /** Queues consumed now. */
  get queues(): readonly string[] {
    return this.#queues;
  }

  /** Connects, starts the pools and starts consuming. Resolves once the consumer is running. */
  async start(): Promise<void> {
    if (this.#state !== 'new')
      throw new ConfigError('worker', `start() called on a worker that is ${this.#state}`);
    this.#state = 'starting';
    try {
      // The primary transport (remote control, revocations) is the default broker's when this worker
      // consumes any queue there, else the broker of its first queue.
      const brokers = this.#brokersOfQueues(this.#queues);
      this.#transport = await this.#core.transport(
        brokers.has('default') ? 'default' : [...brokers.keys()][0],
      );
      this.#sink = await this.#core.sink();
      for (const kind of this.#poolKinds()) {
        const pool = await createPool(kind, {
          size: this.#sizes[kind],
          log: this.#log.child({ pool: kind }),
          appModule: this.#options.appModule,
          maxTasksPerChild: this.#options.maxTasksPerChild,
          maxMemoryPerChild: this.#options.maxMemoryPerChild,
          host: { transport: () => this.#core.transport(), sink: () => this.#core.sink() },
        });
        await pool.start();
        this.#pools.set(kind, pool);
      }
      for (const task of this.#core.tasks.values()) {
        if (task.options.timeLimit?.hard !== undefined && this.#poolOf(task.options.pool) === 'async') {
          this.#log.warn(
            { task: task.name },
            'hard time limit on the async pool: the task fails at the limit, but code on the event loop cannot be killed and may keep running (use pool: "threads" or "process")',
          );
        }
      }
      for (const id of (await this.#transport.revocations?.list()) ?? []) this.#revoked.add(id);
      // Subscriptions of this app's events whose tasks this worker serves are registered in the
      // broker, so publishers that do not know them (other services) reach them too.
      for (const sub of this.#core.subscriptions()) {
        if (!this.#queues.includes(sub.queue)) continue;
        const transport = await this.#core.transport(this.#core.brokerOfQueue(sub.queue));
        await transport.subscriptions.add(sub.event, { task: sub.task, queue: sub.queue });
      }
      this.#consumers = await this.#consume(this.#queues);
    } catch (err) {
      this.#state = 'stopped';
      await Promise.all([...this.#pools.values()].map((p) => p.stop({ force: true })));
      throw err;
    }
    this.#mailbox = await Mailbox.start(this, this.#transport, this.#log);
    this.#state = 'running';
    this.#watchRevocations();
    this.#watchPrefetch();
    // Deliveries can arrive while consume() is starting: they were reserved meanwhile; run them now.
    this.#pumpAll();
    this.#log.info(
      { queues: this.#queues, pools: Object.fromEntries([...this.#pools].map(([k, p]) => [k, p.size])) },
      'worker ready',
    );
    this.emit('worker-online', {
      hostname: this.hostname,
      queues: this.#queues,
      concurrency: this.concurrency,
      at: Date.now(),
    });
  }

  /**
   * Graceful stop: stops consuming, requeues reserved messages that have not started, lets running
   * tasks finish within `timeout` (default `shutdownTimeout`). At the deadline, tasks on the threads
   * and process pools are killed and requeued; tasks on the event loop cannot be stopped, so they are
   * left unacked (the broker redelivers them) and the log says so.
   */
  async stop(options: { timeout?: Duration } = {}): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    clearInterval(this.#revocationTimer);
    clearInterval(this.#prefetchTimer);
    await this.#mailbox?.stop();
    const timeoutMs = toMs(options.timeout ?? this.#shutdownMs, 'timeout');
    await Promise.all(
      this.#consumers.map((c) =>
        c.cancel().catch((err: unknown) => this.#log.warn({ err }, 'could not cancel the consumer cleanly')),
      ),
    );
    const unstarted = [...POOL_KINDS.flatMap((k) => this.#reserved[k].splice(0)), ...this.#waiting.keys()];
    for (const timer of this.#waiting.values()) clearTimeout(timer);
    this.#waiting.clear();
    await Promise.all(unstarted.map((job) => this.#settle(job.delivery, 'requeue').catch(() => {})));
    if (unstarted.length)
      this.#log.info({ count: unstarted.length }, 'requeued reserved tasks that had not started');
    if (this.#running.size || this.#settling) {
      const drained = new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), timeoutMs);
      });
      const outcome = await Promise.race([drained, deadline]);
      clearTimeout(timer);
      if (outcome === 'deadline') await this.#abandonRunning();
    }
    await Promise.all([...this.#pools.values()].map((p) => p.stop({ force: true })));
    this.#state = 'stopped';
    this.#log.info(this.stats, 'worker stopped');
    this.emit('worker-offline', { hostname: this.hostname, at: Date.now() });
  }

  async #abandonRunning(): Promise<void> {
    const onLoop: string[] = [];
    const killed: Run[] = [];
    for (const r of this.#running) {
      r.abandoned = true;
      r.controller.abort(new Error('worker shutdown deadline reached'));
      if (r.pool === 'async') onLoop.push(r.job.id);
      else killed.push(r);
    }
    // Killed runs are requeued now; runs on the event loop stay unacked and come back when the connection closes.
    await Promise.all(killed.map((r) => this.#settle(r.job.delivery, 'requeue').catch(() => {})));
    if (killed.length)
      this.#log.warn(
        { tasks: killed.map((r) => r.job.id) },
        'shutdown deadline reached: stopped tasks on the threads/process pools and requeued them',
      );
    if (onLoop.length) {
      this.#log.warn(
        { tasks: onLoop },
        'shutdown deadline reached: tasks on the event loop cannot be stopped; they were not acked and will be redelivered',
      );
    }
  }

  /** Tasks running now. */
  get active(): number {
    return this.#running.size;
  }

  /** Messages received and not yet started (reserved, and eta messages waiting for their time). */
  get reserved(): number {
    return POOL_KINDS.reduce((n, k) => n + this.#reserved[k].length, 0) + this.#waiting.size;
  }

  health(): HealthReport {
    if (this.#state === 'starting') return { status: 'degraded', reason: 'starting' };
    if (this.#state !== 'running')
      return { status: 'unhealthy', reason: this.#state === 'new' ? 'not started' : this.#state };
    const pools: Record<string, HealthReport> = {};
    for (const [kind, pool] of this.#pools) pools[`pool:${kind}`] = pool.health();
    return aggregate(pools);
  }

  // ---- remote control (Celery's pidbox commands call these) ----

  /** `inspect active`: tasks running now. */
  activeTasks(): TaskInfo[] {
    return [...this.#running].map((r) => this.#info(r.job, r.started, true));
  }

  /** `inspect reserved`: received, not started. */
  reservedTasks(): TaskInfo[] {
    return POOL_KINDS.flatMap((k) => this.#reserved[k].map((j) => this.#info(j, null, false)));
  }

  /** `inspect scheduled`: eta tasks held in this worker until due (those further away are parked in the broker). */
  scheduledTasks(): Array<{ eta: string | null; priority: number; request: TaskInfo }> {
    return [...this.#waiting.keys()].map((j) => ({
      eta: j.message.headers.eta,
      priority: j.message.priority,
      request: this.#info(j, null, false),
    }));
  }

  /** `inspect registered`: task names (with their rate limit, as Celery prints it). */
  registeredTasks(): string[] {
    return [...this.#core.tasks.keys()].sort().map((name) => {
      const rate = this.#limits.get(name)?.perSecond;
      return rate ? `${name} [rate_limit=${rate}/s]` : name;
    });
  }

  /** `inspect stats`: counters and pool sizes. */
  statsInfo(): Record<string, unknown> {
    const total: Record<string, number> = {};
    return {
      total,
      counts: { ...this.stats },
      pid: process.pid,
      uptime: Math.round((Date.now() - this.#startedAt) / 1000),
      pool: {
        implementation: this.defaultPool,
        'max-concurrency': this.concurrency,
        pools: Object.fromEntries(POOL_KINDS.map((k) => [k, this.#sizes[k]])),
      },
      prefetch_count: this.#credit(),
      broker: { transport: this.#transport?.kind ?? null },
      rusage: { maxrss: Math.round(process.memoryUsage().rss / 1024) },
      sw_ident: 'celeriac',
    };
  }

  /** `inspect query_task`: where each id is in this worker. */
  queryTask(ids: readonly string[]): Record<string, [string, TaskInfo]> {
    const out: Record<string, [string, TaskInfo]> = {};
    for (const r of this.#running)
      if (ids.includes(r.job.id)) out[r.job.id] = ['active', this.#info(r.job, r.started, true)];
    for (const k of POOL_KINDS)
      for (const j of this.#reserved[k])
        if (ids.includes(j.id)) out[j.id] = ['reserved', this.#info(j, null, false)];
    for (const j of this.#waiting.keys())
      if (ids.includes(j.id)) out[j.id] = ['scheduled', this.#info(j, null, false)];
    return out;
  }

  /** `inspect revoked`: ids this worker knows as revoked. */
  revokedIds(): string[] {
    return [...this.#revoked];
  }

  /**
   * `revoke`: a revoked task that has not started is never run; with `terminate`, a running one is
   * stopped (killed on the threads/process pools; on the event loop its signal fires).
   */
  revoke(ids: readonly string[], options: { terminate?: boolean } = {}): string[] {
    for (const id of ids) {
      this.#revoked.add(id);
      this.#revokedLately.add(id);
    }
    const terminated: string[] = [];
    if (options.terminate) {
      for (const r of this.#running) {
        if (ids.includes(r.job.id)) {
          r.controller.abort(new Error('revoked'));
          terminated.push(r.job.id);
        }
      }
    }
    return terminated;
  }

  /** `rate_limit`: changes a task's per-worker rate at run time; 0 or null removes it. */
  setRateLimit(taskName: string, rate: Rate | string | null): void {
    if (!this.#core.tasks.has(taskName)) throw new ConfigError('rate_limit', `unknown task '${taskName}'`);
    const perSecond = parseRate(rate, 'rate_limit');
    if (perSecond > 0) this.#limits.set(taskName, new TokenBucket(perSecond));
    else this.#limits.delete(taskName);
  }

  /** `time_limit`: changes a task's soft and hard limits (seconds, as Celery's command) at run time. */
  setTimeLimit(taskName: string, soft: number | null, hard: number | null): void {
    if (!this.#core.tasks.has(taskName)) throw new ConfigError('time_limit', `unknown task '${taskName}'`);
    this.#timeLimits.set(taskName, {
      softMs: soft === null ? null : soft * 1000,
      hardMs: hard === null ? null : hard * 1000,
    });
  }

  /** `pool_grow` / `pool_shrink` / autoscale: resizes the default pool and the prefetch credit. */
  resize(concurrency: number): void {
    const size = Math.max(1, Math.floor(concurrency));
    this.#sizes[this.defaultPool] = size;
    this.#pools.get(this.defaultPool)?.resize(size);
    for (const c of this.#consumers) c.setPrefetch(this.#credit(), this.#fetchBatch());
    this.#pumpAll();
  }

  /** `add_consumer`: starts consuming another queue. */
  async addConsumer(queue: string): Promise<void> {
    if (this.#queues.includes(queue)) return;
    await this.#reconsume([...this.#queues, queue]);
  }

  /** `cancel_consumer`: stops consuming a queue (messages already received still run). */
  async cancelConsumer(queue: string): Promise<void> {
    if (!this.#queues.includes(queue)) return;
    const rest = this.#queues.filter((q) => q !== queue);
    if (!rest.length) throw new ConfigError('cancel_consumer', 'a worker must consume at least one queue');
    await this.#reconsume(rest);
  }

  async #reconsume(queues: string[]): Promise<void> {
    if (this.#state !== 'running' || !this.#transport) {
      this.#queues = queues;
      return;
    }
    const next = await this.#consume(queues);
    const previous = this.#consumers;
    this.#consumers = next;
    this.#queues = queues;
    await Promise.all(previous.map((c) => c.cancel()));
  }

  /** Queues grouped by the broker they live on. */
  #brokersOfQueues(queues: readonly string[]): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const q of queues) {
      const broker = this.#core.brokerOfQueue(q);
      out.set(broker, [...(out.get(broker) ?? []), q]);
    }
    return out;
  }

  /** One consumer per broker; each delivery remembers the transport it came from, for settling. */
  async #consume(queues: readonly string[]): Promise<Consumer[]> {
    const consumers: Consumer[] = [];
    const byBroker = this.#brokersOfQueues(queues);
    for (const [broker, qs] of byBroker) {
      const transport = await this.#core.transport(broker);
      // With one broker (the usual case) every delivery is its: no per-delivery bookkeeping. Once
      // set, the sole transport stays the fallback of #transportOf (deliveries taken before an
      // add_consumer on another broker have no #owner entry).
      if (byBroker.size === 1) this.#soleTransport ??= transport;
      const onDelivery =
        byBroker.size === 1 && transport === this.#soleTransport
          ? (d: Delivery) => this.#onDelivery(d)
          : (d: Delivery) => {
              this.#owner.set(d, transport);
              this.#onDelivery(d);
            };
      consumers.push(
        await transport.consume(qs, onDelivery, { prefetch: this.#credit(), batch: this.#fetchBatch() }),
      );
    }
    return consumers;
  }

  /**
   * Re-reads the broker's revocation store now and then: a revoke broadcast while this worker was
   * reconnecting (fan-out is at-most-once) still reaches it before long.
   */
  #watchRevocations(): void {
    const store = this.#transport?.revocations;
    if (!store) return;
    this.#revocationTimer = setInterval(
      () => {
        store.list().then(
          (ids) => {
            // Rebuilt from the store, so expired revokes leave memory too.
            this.#revoked = new Set([...ids, ...this.#revokedLately]);
            this.#revokedLately = new Set();
          },
          (err: unknown) => this.#log.warn({ err }, 'could not read the revocation store; will retry'),
        );
      },
      toMs(this.#options.revocationRefresh ?? 10_000, 'revocationRefresh'),
    );
    this.#revocationTimer.unref();
  }

  // ---- consuming ----

  /** Messages reserved beyond the running ones now (fixed, or the automatic value). */
  get prefetch(): number {
    return typeof this.#prefetch === 'number' ? this.#prefetch : this.#prefetch.value;
  }

  #poolCredit(): number {
    let total = 0;
    for (const kind of this.#poolKinds()) total += this.#sizes[kind];
    return total;
  }

  #credit(): number {
    return this.#poolCredit() + this.prefetch;
  }

  /** The consumers' batch hint: half the reserve, so a slot never waits on a batch filling up. */
  #fetchBatch(): number {
    return Math.max(1, Math.floor(this.prefetch / 2));
  }

  /** With `prefetch: 'auto'`, re-sizes the reserve every tick from the recent completion rate. */
  #watchPrefetch(): void {
    const auto = this.#prefetch;
    if (typeof auto === 'number') return;
    // Measured from the start: the time before it (connecting, or a worker made long before it is
    // started) is no time in which tasks could finish.
    auto.reset();
    this.#prefetchTimer = setInterval(() => {
      if (auto.tick() === null) return;
      const credit = this.#credit();
      for (const c of this.#consumers) c.setPrefetch(credit, this.#fetchBatch());
    }, AUTO_PREFETCH_TICK_MS);
    this.#prefetchTimer.unref();
  }

  #poolKinds(): PoolKind[] {
    const kinds = new Set<PoolKind>([this.defaultPool]);
    for (const task of this.#core.tasks.values()) if (task.options.pool) kinds.add(task.options.pool);
    return [...kinds];
  }

  #poolOf(kind: PoolKind | undefined): PoolKind {
    return kind ?? this.defaultPool;
  }

  #onDelivery(delivery: Delivery): void {
    this.stats.received++;
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      this.#track(this.#settle(delivery, 'requeue'), 'requeue', null);
      return;
    }
    const prepared = prepare(delivery, this.#core.tasks, this.#core.config.maxDeliveries);
    if (isRefusal(prepared)) {
      void this.#refuse(delivery, prepared);
      return;
    }
    const job = prepared;
    if (this.listening('task-received'))
      this.emit('task-received', {
        id: job.id,
        name: job.name,
        queue: delivery.queue,
        retries: job.retries,
        eta: job.message.headers.eta,
        headers: job.message.headers,
        at: Date.now(),
      });
    if (this.#revoked.has(job.id)) {
      void this.#revoke(job, 'revoked');
      return;
    }
    if (this.#recent.has(job.id) && job.retries === 0) {
      this.#dropDuplicate(job);
      return;
    }
    const now = Date.now();
    if (job.expires !== null && job.expires <= now) {
      void this.#revoke(job, 'expired');
      return;
    }
    if (job.eta !== null && job.eta > now) {
      const wait = job.eta - now;
      if (wait > this.#etaHorizonMs) {
        // Parked in the broker, atomically with settling this delivery: no eta lives in worker memory.
        this.#track(this.#transportOf(delivery).defer(delivery, job.eta), 'defer', job.id);
        return;
      }
      this.#enqueueIn(job, wait);
      return;
    }
    this.#enqueue(job);
  }

  /** Holds a job in this worker for `wait` ms (a near eta, a rate limit), then enqueues it. */
  #enqueueIn(job: Job, wait: number): void {
    this.#waiting.set(
      job,
      setTimeout(() => {
        this.#waiting.delete(job);
        this.#enqueue(job);
      }, wait),
    );
  }

  #enqueue(job: Job): void {
    const limiter = this.#limits.get(job.name);
    if (limiter) {
      const wait = limiter.take();
      if (wait > 0) {
        this.#enqueueIn(job, wait);
        return;
      }
    }
    const kind = this.#poolOf(job.task.options.pool);
    this.#reserved[kind].push(job);
    this.#pump(kind);
  }

  #pumpAll(): void {
    for (const kind of POOL_KINDS) this.#pump(kind);
  }

  /**
   * Starts reserved jobs while the pool has room. Not re-entrant: a run that ends at once (a
   * synchronous handler) frees its slot inside #execute, and the loop here takes the next job,
   * instead of a nested pump per job growing the stack with the reserve.
   */
  #pump(kind: PoolKind): void {
    const queue = this.#reserved[kind];
    if (this.#state !== 'running' || !queue.length || this.#pumping[kind]) return;
    this.#pumping[kind] = true;
    try {
      while (this.#busy[kind] < this.#sizes[kind] && queue.length) {
        const job = queue.shift() as Job;
        try {
          this.#execute(job, kind);
        } catch (err) {
          // Not acked: the broker redelivers it.
          new TaskLog(this.#log, job).error({ err }, 'could not start task; it will be redelivered');
        }
      }
    } finally {
      this.#pumping[kind] = false;
    }
  }

  /**
   * Runs a job on its pool. The usual run (nothing to check or store first) starts at once and,
   * when the handler returns without a promise, ends in the same turn; every other run goes
   * through #prelude first. Nothing here throws: infrastructure errors are logged and the delivery
   * stays unsettled, so the broker redelivers it.
   */
  #execute(job: Job, kind: PoolKind): void {
    const run = new Run(job, kind, this.hostname, this.#limitsOf(job), this.#storeState);
    this.#running.add(run);
    this.#busy[kind]++;
    const { task, delivery } = job;
    if (
      this.#revoked.has(job.id) ||
      (job.expires !== null && job.expires <= run.started) ||
      delivery.redelivered ||
      (task.options.argsSchema !== undefined && job.event === null) ||
      task.options.acksLate === false ||
      (task.options.trackStarted ?? this.#core.config.trackStarted)
    ) {
      this.#prelude(run).then(
        (go) => (go ? this.#start(run) : this.#done(run)),
        (err: unknown) => this.#settleFailed(run, err),
      );
      return;
    }
    this.#start(run);
  }

  /** The checks and writes some runs need before the handler; false when the job is not to run. */
  async #prelude(run: Run): Promise<boolean> {
    const { job } = run;
    const { task, delivery } = job;
    if (this.#revoked.has(job.id)) {
      await this.#revoke(job, 'revoked');
      return false;
    }
    if (job.expires !== null && job.expires <= Date.now()) {
      await this.#revoke(job, 'expired');
      return false;
    }
    if (delivery.redelivered && (await this.#succeededBefore(job))) {
      this.#dropDuplicate(job);
      return false;
    }
    if (task.options.argsSchema && job.event === null) {
      try {
        job.args = await this.#core.validateArgs(task, job.args, 'worker');
        run.args = job.args;
      } catch (err) {
        await this.#refuse(delivery, {
          reason: `args refused by the task's schema: ${(err as Error).message}`,
          excType: 'PayloadError',
          id: job.id,
          name: job.name,
          message: job.message,
        });
        return false;
      }
    }
    if (task.options.acksLate === false) await this.#settle(delivery, 'ack');
    if (task.options.trackStarted ?? this.#core.config.trackStarted) {
      await this.#store(job, stateMeta(job.id, 'STARTED', { pid: process.pid, hostname: this.hostname }));
    }
    return true;
  }

  /** Hands the run to its pool; the outcome goes to #ended, at once when the pool had it at once. */
  #start(run: Run): void {
    const { job } = run;
    if (this.listening('task-started'))
      this.#emitSafe('task-started', {
        id: job.id,
        name: job.name,
        queue: job.delivery.queue,
        retries: job.retries,
        at: run.started,
      });
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = (this.#pools.get(run.pool) as Pool).run(run);
    } catch (err) {
      outcome = { kind: 'failure', error: err instanceof Error ? err : new Error(String(err)) };
    }
    if (outcome instanceof Promise)
      outcome.then(
        (o) => this.#ended(run, o),
        (err: unknown) => this.#ended(run, { kind: 'failure', error: err as Error }),
      );
    else this.#ended(run, outcome);
  }

  /**
   * The handler is done: its slot goes to the next task now, while this one stores its result and
   * acks (counted as settling, so stop() still waits for it; the unacked message still holds its
   * prefetch credit, so this phase stays bounded).
   */
  #ended(run: Run, outcome: Outcome): void {
    const { job } = run;
    if (run.abandoned) {
      this.#done(run);
      return;
    }
    if (this.#revoked.has(job.id) && run.controller.aborted) {
      this.#revoke(job, 'revoked').then(
        () => this.#done(run),
        (err: unknown) => this.#settleFailed(run, err),
      );
      return;
    }
    this.#settling++;
    const acksLate = job.task.options.acksLate ?? true;
    const runtimeMs = Date.now() - run.started;
    const { embed } = job.message;
    if (
      outcome.kind === 'success' &&
      acksLate &&
      !embed.chain?.length &&
      !embed.callbacks?.length &&
      !this.#storesResult(job)
    ) {
      // The usual success: nothing to store or publish, only the ack. In the duplicate window from
      // here (acks wait a few ms to ride along with a fetch; a copy arriving meanwhile is dropped),
      // before the slot goes to the next job.
      this.#recent.add(job.id);
      let acked: Promise<void>;
      try {
        acked = this.#transportOf(job.delivery).ack(job.delivery);
      } catch (err) {
        acked = Promise.reject(err);
      }
      this.#release(run);
      acked.then(
        () => {
          this.#settling--;
          this.#succeededAcked(job, outcome.value, runtimeMs);
          this.#done(run);
        },
        (err: unknown) => {
          this.#settling--;
          this.#settleFailed(run, err);
        },
      );
      return;
    }
    this.#release(run);
    this.#finish(job, outcome, runtimeMs, acksLate, new TaskLog(this.#log, job)).then(
      () => {
        this.#settling--;
        this.#done(run);
      },
      (err: unknown) => {
        this.#settling--;
        this.#settleFailed(run, err);
      },
    );
  }

  /** Only infrastructure errors land here (a broker or sink that failed while settling). */
  #settleFailed(run: Run, err: unknown): void {
    new TaskLog(this.#log, run.job).error({ err }, 'could not settle task; it will be redelivered');
    this.#done(run);
  }

  /** The end of a run, however it went. */
  #done(run: Run): void {
    this.#release(run);
    this.#checkIdle();
  }

  /** Frees a running task's pool slot (once) and starts the next reserved task. */
  #release(running: Run): void {
    if (!this.#running.delete(running)) return;
    this.#busy[running.pool]--;
    if (typeof this.#prefetch !== 'number') this.#prefetch.completed();
    this.#pump(running.pool);
  }

  /** [hard, soft] from the message (seconds), else the run-time override, else the task's option. */
  #limitsOf(job: Job): { hardMs: number | null; softMs: number | null } {
    const [hard, soft] = job.message.headers.timelimit ?? [null, null];
    const override = this.#timeLimits.get(job.name);
    const own = job.task.options.timeLimit;
    if (hard == null && soft == null && override === undefined && own === undefined) return NO_LIMITS;
    const pick = (
      wire: number | null,
      o: number | null | undefined,
      d: Duration | undefined,
      field: string,
    ) => (wire != null ? wire * 1000 : o !== undefined ? o : d !== undefined ? toMs(d, field) : null);
    return {
      hardMs: pick(hard, override?.hardMs, own?.hard, 'timeLimit.hard'),
      softMs: pick(soft, override?.softMs, own?.soft, 'timeLimit.soft'),
    };
  }

  async #finish(
    job: Job,
    outcome: Outcome,
    runtimeMs: number,
    acksLate: boolean,
    log: TaskLog,
  ): Promise<void> {
    const { delivery } = job;
    if (outcome.kind === 'success') return this.#succeeded(job, outcome.value, runtimeMs, acksLate, log);
    const queueOf = (name: string) => this.#core.queueOf(name);
    const ack = () => (acksLate ? this.#settle(delivery, 'ack') : Promise.resolve());
    switch (outcome.kind) {
      case 'retry': {
        // RETRY is stored before the retry message goes out (a quick retry run elsewhere must not
        // have its outcome overwritten by it), and the message before the current one is acked
        // (DESIGN.md §2, Acks).
        await this.#store(job, retryMeta(job.id, outcome.error));
        await this.#core.publisher.publish(
          retryRequest(job, Date.now() + outcome.countdownMs),
          delivery.queue,
        );
        await ack();
        this.stats.retried++;
        log.info(
          { countdownMs: outcome.countdownMs, err: outcome.error ?? undefined },
          'task retry scheduled',
        );
        this.emit('task-retried', {
          id: job.id,
          name: job.name,
          error: outcome.error,
          retries: job.retries + 1,
          countdownMs: outcome.countdownMs,
          at: Date.now(),
        });
        return;
      }
      case 'reject':
        if (outcome.requeue) await this.#settle(delivery, 'requeue');
        else
          await this.#refuse(
            delivery,
            {
              reason: `rejected: ${outcome.reason}`,
              excType: 'Reject',
              id: job.id,
              name: job.name,
              message: job.message,
            },
            false,
          );
        return;
      case 'ignore':
        await ack();
        return;
      case 'failure': {
        await this.#store(job, failureMeta(job.id, outcome.error, this.#extended(job, {})));
        const errbacks = errbackRequests(job, queueOf);
        if (errbacks.length) await this.#core.publisher.publishMany(errbacks.map((request) => ({ request })));
        await ack();
        this.stats.failed++;
        log.warn({ err: outcome.error, runtimeMs }, 'task failed');
        this.emit('task-failed', {
          id: job.id,
          name: job.name,
          error: outcome.error,
          runtimeMs,
          at: Date.now(),
        });
      }
    }
  }

  /** A handler that returned: result stored, follow-ups published, then the ack (at-least-once). */
  async #succeeded(
    job: Job,
    value: unknown,
    runtimeMs: number,
    acksLate: boolean,
    log: TaskLog,
  ): Promise<void> {
    const { delivery } = job;
    const { embed } = job.message;
    if (embed.chain?.length || embed.callbacks?.length) {
      const next = followUps(job, value, (name) => this.#core.queueOf(name));
      await this.#store(job, () =>
        successMeta(job.id, value, this.#extended(job, { children: next.children })),
      );
      await this.#core.publisher.publishMany(next.requests.map((request) => ({ request })));
    } else if (this.#storesResult(job)) {
      await this.#store(job, successMeta(job.id, value, this.#extended(job, { children: [] })));
    }
    // In the window from here, before the ack: a copy that arrives while the ack is on its way
    // (acks wait a few ms to ride along with a fetch) is a duplicate of a stored success.
    this.#recent.add(job.id);
    if (acksLate) await this.#settle(delivery, 'ack');
    this.#succeededAcked(job, value, runtimeMs, log);
  }

  #succeededAcked(job: Job, value: unknown, runtimeMs: number, log?: TaskLog): void {
    this.stats.succeeded++;
    if (isLevelEnabled(this.#log, 'debug'))
      (log ?? new TaskLog(this.#log, job)).debug({ runtimeMs }, 'task succeeded');
    if (this.listening('task-succeeded'))
      this.#emitSafe('task-succeeded', {
        id: job.id,
        name: job.name,
        result: value,
        runtimeMs,
        at: Date.now(),
      });
  }

  /** Emits an event of the run path; a listener that throws is logged and cannot break the run. */
  #emitSafe<K extends keyof WorkerEventMap>(event: K, payload: WorkerEventMap[K]): void {
    try {
      this.emit(event, payload);
    } catch (err) {
      this.#log.error({ err, event }, 'a worker event listener threw');
    }
  }

  /** A redelivered message whose task already succeeded (its ack was lost): ack it without running. */
  async #succeededBefore(job: Job): Promise<boolean> {
    if (this.#recent.has(job.id)) return true;
    if (!this.#sink || !this.#storesResult(job)) return false;
    const meta = await this.#sink.get(job.id);
    return meta?.status === 'SUCCESS' && (meta.retries === undefined || meta.retries === job.retries);
  }

  #dropDuplicate(job: Job): void {
    this.stats.duplicates++;
    this.#log.info(
      { taskId: job.id, task: job.name },
      'duplicate delivery of a task that already succeeded: acked without running',
    );
    this.#track(this.#settle(job.delivery, 'ack'), 'ack', job.id);
  }

  #extended(job: Job, extra: { children?: unknown[] }): Partial<ResultMeta> {
    const meta: Partial<ResultMeta> = { ...extra };
    if (job.message.headers.group) meta.group_id = job.message.headers.group;
    if (job.message.headers.parent_id) meta.parent_id = job.message.headers.parent_id;
    if (this.#core.config.resultExtended) {
      Object.assign(meta, {
        name: job.name,
        args: job.message.args,
        kwargs: job.message.kwargs,
        worker: this.hostname,
        retries: job.retries,
        queue: job.delivery.queue,
      });
    }
    return meta;
  }

  async #revoke(job: Job, reason: 'expired' | 'revoked'): Promise<void> {
    await this.#store(job, revokedMeta(job.id, reason));
    await this.#settle(job.delivery, 'ack');
    this.stats.revoked++;
    this.#log.info(
      { taskId: job.id, task: job.name, reason },
      reason === 'expired' ? 'task expired before it ran: REVOKED' : 'task revoked: not run',
    );
    this.emit('task-revoked', { id: job.id, name: job.name, reason, at: Date.now() });
  }

  async #refuse(delivery: Delivery, refusal: Refusal, storeFailure = true): Promise<void> {
    try {
      if (storeFailure && refusal.id && this.#sink && refusal.message?.headers.ignore_result !== true) {
        const error = Object.assign(new Error(refusal.reason), { name: refusal.excType });
        await this.#sink.store(failureMeta(refusal.id, error, {}), {
          expiresMs: this.#core.config.resultExpiresMs,
        });
      }
      await this.#settle(delivery, 'dead', refusal.reason);
      this.stats.rejected++;
      this.#log.error(
        { taskId: refusal.id, task: refusal.name, queue: delivery.queue, reason: refusal.reason },
        'message dead-lettered',
      );
      this.emit('task-rejected', {
        id: refusal.id,
        name: refusal.name,
        queue: delivery.queue,
        reason: refusal.reason,
        at: Date.now(),
      });
    } catch (err) {
      this.#log.error(
        { err, queue: delivery.queue, reason: refusal.reason },
        'could not dead-letter message; it will be redelivered',
      );
    }
  }

  /** Stores a result state, unless the task's results are ignored (then the meta is not even built). */
  #storesResult(job: Job): boolean {
    return this.#sink !== null && !job.message.headers.ignore_result && !job.task.options.ignoreResult;
  }

  async #store(job: Job, meta: ResultMeta | (() => ResultMeta)): Promise<void> {
    if (!this.#sink || !this.#storesResult(job)) return;
    await this.#sink.store(typeof meta === 'function' ? meta() : meta, {
      expiresMs: this.#core.config.resultExpiresMs,
    });
  }

  #info(job: Job, started: number | null, acknowledged: boolean): TaskInfo {
    return {
      id: job.id,
      name: job.name,
      args: job.message.args,
      kwargs: job.message.kwargs,
      type: job.name,
      hostname: this.hostname,
      time_start: started === null ? null : started / 1000,
      acknowledged,
      delivery_info: {
        exchange: '',
        routing_key: job.delivery.queue,
        priority: job.message.priority,
        redelivered: job.delivery.redelivered,
      },
      worker_pid: started === null ? null : process.pid,
      eta: job.message.headers.eta,
    };
  }

  #transportOf(delivery: Delivery): Transport {
    return this.#owner.get(delivery) ?? this.#soleTransport ?? (this.#transport as Transport);
  }

  async #settle(delivery: Delivery, how: 'ack' | 'requeue' | 'dead', reason = ''): Promise<void> {
    const t = this.#transportOf(delivery);
    this.#settling++;
    try {
      if (how === 'ack') await t.ack(delivery);
      else if (how === 'requeue') await t.requeue(delivery);
      else await t.deadLetter(delivery, reason);
    } finally {
      this.#settling--;
      this.#checkIdle();
    }
  }

  #track(promise: Promise<void>, what: string, id: string | null): void {
    this.#settling++;
    promise
      .catch((err) =>
        this.#log.error({ err, taskId: id }, `could not ${what} message; it will be redelivered`),
      )
      .finally(() => {
        this.#settling--;
        this.#checkIdle();
      });
  }

  #checkIdle(): void {
    if (this.#idle && this.#running.size === 0 && this.#settling === 0) {
      const idle = this.#idle;
      this.#idle = null;
      idle();
    }
  }
}

/** Task-scoped log lines (task id, name and retries on each): the child logger is made only when a line is written. */
class TaskLog {
  readonly #parent: Logger;
  readonly #job: Job;
  #child: Logger | null = null;

  constructor(parent: Logger, job: Job) {
    this.#parent = parent;
    this.#job = job;
  }

  #logger(): Logger {
    this.#child ??= this.#parent.child({
      taskId: this.#job.id,
      task: this.#job.name,
      retries: this.#job.retries,
    });
    return this.#child;
  }

  debug(obj: object, msg: string): void {
    if (isLevelEnabled(this.#parent, 'debug')) this.#logger().debug(obj, msg);
  }

  info(obj: object, msg: string): void {
    this.#logger().info(obj, msg);
  }

  warn(obj: object, msg: string): void {
    this.#logger().warn(obj, msg);
  }

  error(obj: object, msg: string): void {
    this.#logger().error(obj, msg);
  }
}

function isLevelEnabled(logger: Logger, level: string): boolean {
  const check = (logger as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled;
  return check ? check.call(logger, level) : true;
}
