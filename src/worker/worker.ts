import { hostname as osHostname } from 'node:os';
import type { Consumer, Delivery, Transport } from '../brokers/transport.js';
import type { AppCore, SendRequest } from '../core.js';
import type { Duration } from '../duration.js';
import { toMs } from '../duration.js';
import { ConfigError } from '../errors.js';
import type { HealthReport } from '../health.js';
import type { Logger } from '../logging.js';
import type { SignatureJson } from '../messages/types.js';
import type { Publisher } from '../publisher/publisher.js';
import { failureMeta, retryMeta, revokedMeta, stateMeta, successMeta } from '../results/exceptions.js';
import type { ResultMeta, TaskState } from '../results/meta.js';
import type { ResultSink } from '../results/sink.js';
import type { WorkerEventMap } from './events.js';
import { TypedEmitter } from './events.js';
import type { Outcome } from './execute.js';
import { runTask } from './execute.js';
import type { Job, Refusal } from './prepare.js';
import { isRefusal, prepare } from './prepare.js';

/** Options of `app.worker()`. */
export interface WorkerOptions {
  /** Queues to consume. Default: the default queue plus every queue the app's tasks and routes name. */
  queues?: readonly string[];
  /** Tasks run at once. Default 10. */
  concurrency?: number;
  /** Messages reserved beyond `concurrency` (so a long task never holds many back). Default: concurrency, at most 100. */
  prefetch?: number;
  /** Node name, `celeriac@<host>` by default (Celery's `-n`). */
  name?: string;
  /** An eta further away than this is parked in the broker instead of waiting in memory. Default 1s. */
  etaHorizon?: Duration;
  /** How long `stop()` lets in-flight tasks finish. Default 30s. */
  shutdownTimeout?: Duration;
}

/** @internal what the app gives a worker. */
export interface WorkerCore extends AppCore {
  transport(): Promise<Transport>;
  readonly publisher: Publisher;
  /** Event subscriptions of this app: which task (on which queue) subscribes to which event. */
  subscriptions(): Array<{ event: string; task: string; queue: string }>;
  /** Queues the app's tasks and routes name (for the default `queues`). */
  knownQueues(): string[];
  queueOf(taskName: string): string;
}

interface Running {
  job: Job;
  started: number;
  abort: AbortController;
  /** Set when stop() gave up on the task: its late outcome is not settled. */
  abandoned: boolean;
}

/**
 * Consumes task messages and runs them on the event loop with a concurrency limit. Acks after the
 * task finishes (at-least-once), parks eta messages in the broker, dead-letters bad input with a
 * reason and keeps serving. Create with `app.worker()`; nothing happens until `start()`.
 *
 * @example
 * const worker = app.worker({ queues: ['celery'], concurrency: 50 });
 * await worker.start();
 * process.on('SIGTERM', () => worker.stop());
 */
export class Worker extends TypedEmitter<WorkerEventMap> {
  readonly hostname: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly prefetch: number;
  readonly #core: WorkerCore;
  readonly #log: Logger;
  readonly #etaHorizonMs: number;
  readonly #shutdownMs: number;
  #transport: Transport | null = null;
  #sink: ResultSink | null = null;
  #consumer: Consumer | null = null;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  readonly #reserved: Job[] = [];
  readonly #waiting = new Map<Job, NodeJS.Timeout>();
  readonly #running = new Set<Running>();
  #settling = 0;
  #idle: (() => void) | null = null;
  readonly stats = { received: 0, succeeded: 0, failed: 0, retried: 0, revoked: 0, rejected: 0 };

  /** @internal use `app.worker()`. */
  constructor(core: WorkerCore, options: WorkerOptions = {}) {
    super();
    this.#core = core;
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new ConfigError('concurrency', `expected an integer ≥ 1, got ${concurrency}`);
    const prefetch = options.prefetch ?? Math.min(concurrency, 100);
    if (!Number.isInteger(prefetch) || prefetch < 0)
      throw new ConfigError('prefetch', `expected an integer ≥ 0, got ${prefetch}`);
    this.concurrency = concurrency;
    this.prefetch = prefetch;
    this.hostname = options.name ?? `celeriac@${osHostname()}`;
    const queues = options.queues ?? core.knownQueues();
    if (!queues.length || queues.some((q) => typeof q !== 'string' || !q))
      throw new ConfigError('queues', 'expected a non-empty list of queue names');
    this.queues = [...new Set(queues)];
    this.#etaHorizonMs = toMs(options.etaHorizon ?? 1000, 'etaHorizon');
    this.#shutdownMs = toMs(options.shutdownTimeout ?? 30_000, 'shutdownTimeout');
    this.#log = core.log.child({ worker: this.hostname });
  }

  /** Connects and starts consuming. Resolves once the consumer is running. */
  async start(): Promise<void> {
    if (this.#state !== 'new')
      throw new ConfigError('worker', `start() called on a worker that is ${this.#state}`);
    this.#state = 'starting';
    this.#transport = await this.#core.transport();
    this.#sink = await this.#core.sink();
    for (const task of this.#core.tasks.values()) {
      if (task.options.timeLimit?.hard !== undefined) {
        this.#log.warn(
          { task: task.name },
          'hard time limit on the async pool: the task fails at the limit, but its code cannot be killed and may keep running',
        );
      }
    }
    // Subscriptions of this app's events whose tasks this worker serves are registered in the broker,
    // so publishers that do not know them (other services) reach them too.
    for (const sub of this.#core.subscriptions()) {
      if (this.queues.includes(sub.queue))
        await this.#transport.subscriptions.add(sub.event, { task: sub.task, queue: sub.queue });
    }
    this.#consumer = await this.#transport.consume(this.queues, (d) => this.#onDelivery(d), {
      prefetch: this.concurrency + this.prefetch,
    });
    this.#state = 'running';
    // Deliveries can arrive while consume() is starting (a queue that already holds messages):
    // they were reserved while the state was 'starting', so start running them now.
    this.#pump();
    this.#log.info({ queues: this.queues, concurrency: this.concurrency }, 'worker ready');
    this.emit('worker-online', {
      hostname: this.hostname,
      queues: this.queues,
      concurrency: this.concurrency,
      at: Date.now(),
    });
  }

  /**
   * Graceful stop: stops consuming, requeues reserved messages that have not started, lets running
   * tasks finish within `timeout` (default `shutdownTimeout`). Tasks still running then are aborted
   * (their signal fires) and left unacked, so the broker redelivers them.
   */
  async stop(options: { timeout?: Duration } = {}): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    const timeoutMs = toMs(options.timeout ?? this.#shutdownMs, 'timeout');
    await this.#consumer?.cancel();
    const unstarted = [...this.#reserved.splice(0), ...this.#waiting.keys()];
    for (const timer of this.#waiting.values()) clearTimeout(timer);
    this.#waiting.clear();
    await Promise.all(unstarted.map((job) => this.#settle(job.delivery, 'requeue')));
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
      if (outcome === 'deadline') {
        for (const r of this.#running) {
          r.abandoned = true;
          r.abort.abort(new Error('worker shutdown deadline reached'));
        }
        this.#log.warn(
          { count: this.#running.size, tasks: [...this.#running].map((r) => r.job.id) },
          'shutdown deadline reached: tasks still running on the event loop were not acked and will be redelivered',
        );
      }
    }
    this.#state = 'stopped';
    this.#log.info(this.stats, 'worker stopped');
    this.emit('worker-offline', { hostname: this.hostname, at: Date.now() });
  }

  /** Tasks running now. */
  get active(): number {
    return this.#running.size;
  }

  /** Messages received and not yet started (reserved, and eta messages waiting for their time). */
  get reserved(): number {
    return this.#reserved.length + this.#waiting.size;
  }

  health(): HealthReport {
    if (this.#state === 'running') return { status: 'healthy' };
    if (this.#state === 'starting') return { status: 'degraded', reason: 'starting' };
    return { status: 'unhealthy', reason: this.#state === 'new' ? 'not started' : this.#state };
  }

  // ---- consuming ----

  #onDelivery(delivery: Delivery): void {
    this.stats.received++;
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      void this.#settle(delivery, 'requeue');
      return;
    }
    const prepared = prepare(delivery, this.#core.tasks, this.#core.config.maxDeliveries);
    if (isRefusal(prepared)) {
      void this.#refuse(delivery, prepared);
      return;
    }
    const job = prepared;
    this.emit('task-received', {
      id: job.id,
      name: job.name,
      queue: delivery.queue,
      retries: job.retries,
      eta: job.message.headers.eta,
      at: Date.now(),
    });
    const now = Date.now();
    if (job.expires !== null && job.expires <= now) {
      void this.#revokeExpired(job);
      return;
    }
    if (job.eta !== null && job.eta > now) {
      const wait = job.eta - now;
      if (wait > this.#etaHorizonMs) {
        // Park it in the broker (atomically with settling this delivery): no eta lives in worker memory.
        this.#track(this.#transport!.defer(delivery, job.eta), 'defer', job.id);
        return;
      }
      this.#waiting.set(
        job,
        setTimeout(() => {
          this.#waiting.delete(job);
          this.#enqueue(job);
        }, wait),
      );
      return;
    }
    this.#enqueue(job);
  }

  #enqueue(job: Job): void {
    this.#reserved.push(job);
    this.#pump();
  }

  #pump(): void {
    while (this.#running.size < this.concurrency && this.#reserved.length && this.#state === 'running') {
      const job = this.#reserved.shift() as Job;
      void this.#execute(job);
    }
  }

  async #execute(job: Job): Promise<void> {
    const running: Running = { job, started: Date.now(), abort: new AbortController(), abandoned: false };
    this.#running.add(running);
    const { task, delivery } = job;
    const log = this.#log.child({ taskId: job.id, task: job.name, retries: job.retries });
    try {
      if (job.expires !== null && job.expires <= Date.now()) {
        await this.#revokeExpired(job);
        return;
      }
      if (task.options.argsSchema && job.event === null) {
        try {
          job.args = await this.#core.validateArgs(task, job.args, 'worker');
        } catch (err) {
          await this.#refuse(delivery, {
            reason: `args refused by the task's schema: ${(err as Error).message}`,
            excType: 'PayloadError',
            id: job.id,
            name: job.name,
            message: job.message,
          });
          return;
        }
      }
      const acksLate = task.options.acksLate ?? true;
      if (!acksLate) await this.#settle(delivery, 'ack');
      if (task.options.trackStarted ?? this.#core.config.trackStarted) {
        await this.#store(job, stateMeta(job.id, 'STARTED', { pid: process.pid, hostname: this.hostname }));
      }
      this.emit('task-started', {
        id: job.id,
        name: job.name,
        queue: delivery.queue,
        retries: job.retries,
        at: running.started,
      });
      const [hard, soft] = job.message.headers.timelimit ?? [null, null];
      const taskLimit = task.options.timeLimit;
      const outcome = await runTask({
        task,
        id: job.id,
        args: job.args,
        kwargs: job.kwargs,
        headers: job.message.headers,
        retries: job.retries,
        queue: delivery.queue,
        hostname: this.hostname,
        event: job.event,
        limits: {
          hardMs:
            hard != null
              ? hard * 1000
              : taskLimit?.hard !== undefined
                ? toMs(taskLimit.hard, 'timeLimit.hard')
                : null,
          softMs:
            soft != null
              ? soft * 1000
              : taskLimit?.soft !== undefined
                ? toMs(taskLimit.soft, 'timeLimit.soft')
                : null,
        },
        external: running.abort.signal,
        updateState: (state, meta) => this.#store(job, stateMeta(job.id, state, meta)),
      });
      if (running.abandoned) return;
      await this.#finish(job, outcome, Date.now() - running.started, acksLate, log);
    } catch (err) {
      // Only infrastructure errors land here (a broker or sink that failed while settling). The
      // delivery stays unsettled, so the broker redelivers it: nothing is lost.
      log.error({ err }, 'could not settle task; it will be redelivered');
    } finally {
      this.#running.delete(running);
      this.#pump();
      this.#checkIdle();
    }
  }

  async #finish(
    job: Job,
    outcome: Outcome,
    runtimeMs: number,
    acksLate: boolean,
    log: Logger,
  ): Promise<void> {
    const { delivery } = job;
    const ack = () => (acksLate ? this.#settle(delivery, 'ack') : Promise.resolve());
    switch (outcome.kind) {
      case 'success': {
        const followUps = this.#followUps(job, outcome.value);
        await this.#store(
          job,
          successMeta(job.id, outcome.value, this.#extended(job, { children: followUps.children })),
        );
        if (followUps.requests.length)
          await this.#core.publisher.publishMany(followUps.requests.map((request) => ({ request })));
        await ack();
        this.stats.succeeded++;
        log.debug({ runtimeMs }, 'task succeeded');
        this.emit('task-succeeded', {
          id: job.id,
          name: job.name,
          result: outcome.value,
          runtimeMs,
          at: Date.now(),
        });
        return;
      }
      case 'retry': {
        const eta = Date.now() + outcome.countdownMs;
        // The retry message is published before the current one is acked (DESIGN.md §2, Acks).
        await this.#core.publisher.publish(this.#retryRequest(job, eta), delivery.queue);
        await this.#store(job, retryMeta(job.id, outcome.error));
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
      case 'reject': {
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
      }
      case 'ignore':
        await ack();
        return;
      case 'failure': {
        await this.#store(job, failureMeta(job.id, outcome.error, this.#extended(job, {})));
        const errbacks = job.message.embed.errbacks ?? [];
        if (errbacks.length) {
          await this.#core.publisher.publishMany(
            errbacks.map((sig) => ({ request: this.#signatureRequest(sig, [job.id], job) })),
          );
        }
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

  /** Callbacks (link) and the next chain step, as Celery's worker publishes them. */
  #followUps(job: Job, value: unknown): { requests: SendRequest[]; children: unknown[] } {
    const requests: SendRequest[] = [];
    const chain = job.message.embed.chain;
    if (chain?.length) {
      const next = chain[chain.length - 1] as SignatureJson;
      requests.push(this.#signatureRequest(next, [value], job, chain.slice(0, -1)));
    }
    for (const sig of job.message.embed.callbacks ?? [])
      requests.push(this.#signatureRequest(sig, [value], job));
    const children = requests.map((r) => [[r.taskId, null], null]);
    return { requests, children };
  }

  #signatureRequest(
    sig: SignatureJson,
    prepend: unknown[],
    parent: Job,
    chain: SignatureJson[] | null = null,
  ): SendRequest {
    const options = sig.options ?? {};
    const args = sig.immutable ? [...(sig.args ?? [])] : [...prepend, ...(sig.args ?? [])];
    const taskId = typeof options.task_id === 'string' ? options.task_id : crypto.randomUUID();
    return {
      name: sig.task,
      args,
      kwargs: { ...(sig.kwargs ?? {}) },
      taskId,
      eta: null,
      expires: null,
      priority: typeof options.priority === 'number' ? options.priority : undefined,
      queue: typeof options.queue === 'string' ? options.queue : this.#core.queueOf(sig.task),
      ignoreResult: options.ignore_result === true,
      shadow: null,
      timelimit: [null, null],
      embed: { chain: chain?.length ? chain : null },
      parentId: parent.id,
      rootId: parent.message.headers.root_id,
    };
  }

  #retryRequest(job: Job, eta: number): SendRequest {
    const h = job.message.headers;
    const custom: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(h)) if (!STANDARD_HEADERS.has(k)) custom[k] = v;
    return {
      name: job.name,
      args: job.message.args,
      kwargs: job.message.kwargs,
      taskId: job.id,
      eta,
      expires: job.expires,
      priority: job.message.priority,
      ignoreResult: h.ignore_result,
      shadow: h.shadow,
      timelimit: h.timelimit,
      headers: custom,
      embed: job.message.embed,
      retries: job.retries + 1,
      rootId: h.root_id,
      parentId: job.id,
      group: h.group,
      groupIndex: h.group_index,
    };
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

  async #revokeExpired(job: Job): Promise<void> {
    await this.#store(job, revokedMeta(job.id, 'expired'));
    await this.#settle(job.delivery, 'ack');
    this.stats.revoked++;
    this.#log.info({ taskId: job.id, task: job.name }, 'task expired before it ran: REVOKED');
    this.emit('task-revoked', { id: job.id, name: job.name, reason: 'expired', at: Date.now() });
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

  async #store(job: Job, meta: ResultMeta): Promise<void> {
    if (!this.#sink || job.message.headers.ignore_result || job.task.options.ignoreResult) return;
    await this.#sink.store(meta, { expiresMs: this.#core.config.resultExpiresMs });
  }

  async #settle(delivery: Delivery, how: 'ack' | 'requeue' | 'dead', reason = ''): Promise<void> {
    const t = this.#transport!;
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

  #track(promise: Promise<void>, what: string, id: string): void {
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

const STANDARD_HEADERS = new Set([
  'lang',
  'task',
  'id',
  'shadow',
  'eta',
  'expires',
  'group',
  'group_index',
  'retries',
  'timelimit',
  'root_id',
  'parent_id',
  'argsrepr',
  'kwargsrepr',
  'origin',
  'ignore_result',
]);

export type { TaskState };
