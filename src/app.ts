import { createTransport } from './brokers/registry.js';
import type { OutgoingMessage, Transport } from './brokers/transport.js';
import { redactUrl } from './brokers/url.js';
import type { CeleriacConfig, ResolvedConfig } from './config.js';
import { resolveConfig } from './config.js';
import { Control } from './control/control.js';
import type { SendRequest } from './core.js';
import type { EagerResult } from './eager.js';
import type { EagerCore } from './eager-run.js';
import { applyEager } from './eager-run.js';
import { readEnv } from './env.js';
import { ClosedError, ConfigError } from './errors.js';
import type { EventCore, EventPayload, EventSubscriber, PublishedEvent } from './event.js';
import { CeleriacEvent } from './event.js';
import type { HealthReport } from './health.js';
import { aggregate } from './health.js';
import type { Logger } from './logging.js';
import { createLogger } from './logging.js';
import { originName, subscriberTaskId, threadOid, uuid4 } from './messages/ids.js';
import { EVENT_HEADER, EVENT_ID_HEADER } from './messages/types.js';
import type { MonitoringEvents } from './observability/events/worker-events.js';
import { sendWorkerEvents } from './observability/events/worker-events.js';
import { Publisher } from './publisher/publisher.js';
import { AsyncResult } from './result.js';
import { createResultSink } from './results/registry.js';
import type { ResultSink } from './results/sink.js';
import { Router } from './router/router.js';
import type { StandardSchemaV1 } from './schema.js';
import { validate } from './schema.js';
import { toSendRequest } from './send-request.js';
import { Signature } from './signature.js';
import type { ApplyOptions, BoundHandler, TaskOptions } from './task.js';
import { Task } from './task.js';
import type { WorkerCore, WorkerOptions } from './worker/worker.js';
import { Worker } from './worker/worker.js';

/**
 * A Celeriac app: the registry of tasks and events, and the wiring of publisher, router, broker,
 * result sink and workers. The constructor validates config and does no I/O; connections open on
 * first use, and `close()` closes every one the app opened.
 *
 * @example
 * export const app = new Celeriac({ broker: 'redis://localhost:6379/0', results: 'redis://localhost:6379/0' });
 * export const add = app.task('tasks.add', (a: number, b: number) => a + b);
 */
export class Celeriac {
  readonly config: ResolvedConfig;
  readonly log: Logger;
  readonly #tasks = new Map<string, Task<never[], unknown>>();
  readonly #events = new Map<string, CeleriacEvent<Record<string, unknown>>>();
  readonly #workers = new Set<Worker>();
  readonly #monitors: MonitoringEvents[] = [];
  readonly #router: Router;
  readonly #publisher: Publisher;
  /** Connected (or connecting) transports by broker name; `default` is `broker`. */
  readonly #transports = new Map<string, Promise<Transport>>();
  #sink: Promise<ResultSink | null> | null = null;
  #closed = false;
  #control: Control | null = null;
  readonly #core: WorkerCore & EagerCore & EventCore;

  constructor(config: CeleriacConfig = {}) {
    const env = readEnv();
    this.config = resolveConfig(config, {
      ...(env.brokerUrl ? { brokerUrl: env.brokerUrl } : {}),
      ...(env.resultsUrl ? { resultsUrl: env.resultsUrl } : {}),
    });
    this.log = resolveLogger(config.logger, env.logLevel);
    this.#router = new Router(this.config);
    this.#publisher = new Publisher((broker) => this.#getTransport(broker), this.#router, {
      origin: originName(),
      replyTo: threadOid(),
    });
    this.#core = {
      config: this.config,
      log: this.log,
      tasks: this.#tasks,
      publisher: this.#publisher,
      send: (request) => this.#send(request),
      sendMany: (requests) => this.#sendMany(requests),
      sink: () => this.#getSink(),
      transport: (broker) => this.#getTransport(broker),
      brokerOfQueue: (queue) => this.#router.brokerOfQueue(queue),
      validateArgs: (task, args, where) => this.#validateArgs(task, args, where),
      applyEager: (task, args, kwargs) => applyEager(this.#core, task, args, kwargs),
      subscriptions: () => this.#subscriptions(),
      knownQueues: () => this.#knownQueues(),
      queueOf: (name) => this.#router.queueFor(name, this.#tasks.get(name)?.options.queue),
      publishEvent: (name, payload, subs) => this.#publishEvent(name, payload, subs),
    };
  }

  /**
   * Registers a task. The name is the wire name (Python Celery calls it by this name). The handler
   * gets the message's positional args; with `bind: true` it gets the task context first.
   *
   * @example
   * const add = app.task('tasks.add', async (a: number, b: number) => a + b, { retry: { max: 5 } });
   * const report = app.task('reports.build', async (ctx, day: string) => { await ctx.updateState('PROGRESS', { done: 1 }) }, { bind: true });
   */
  task<A extends unknown[], R>(
    name: string,
    handler: BoundHandler<A, R>,
    options: TaskOptions & { bind: true },
  ): Task<A, Awaited<R>>;
  task<A extends unknown[], R>(
    name: string,
    handler: (...args: A) => R,
    options?: TaskOptions & { bind?: false },
  ): Task<A, Awaited<R>>;
  task(
    name: string,
    handler: (...args: never[]) => unknown,
    options: TaskOptions = {},
  ): Task<unknown[], unknown> {
    this.#assertOpen();
    if (typeof name !== 'string' || !name) throw new ConfigError('task', 'expected a non-empty task name');
    if (typeof handler !== 'function') throw new ConfigError(`task ${name}`, 'expected a handler function');
    if (this.#tasks.has(name))
      throw new ConfigError(`task ${name}`, 'a task with this name is already registered');
    validateTaskOptions(name, options);
    const task = new Task<unknown[], unknown>(
      this.#core,
      name,
      handler as (...args: unknown[]) => unknown,
      options,
    );
    this.#router.registerTask(name, options);
    this.#tasks.set(name, task as unknown as Task<never[], unknown>);
    return task;
  }

  /**
   * Declares an event, with an optional Standard Schema (zod, valibot…) for its payload.
   *
   * @example
   * const userRegistered = app.event('user.registered', z.object({ id: z.string() }));
   */
  event<S extends StandardSchemaV1 | undefined = undefined>(
    name: string,
    schema?: S,
  ): CeleriacEvent<EventPayload<S>> {
    this.#assertOpen();
    if (typeof name !== 'string' || !name) throw new ConfigError('event', 'expected a non-empty event name');
    if (this.#events.has(name))
      throw new ConfigError(`event ${name}`, 'an event with this name is already declared');
    const event = new CeleriacEvent<EventPayload<S>>(this.#core, name, schema);
    this.#events.set(name, event as unknown as CeleriacEvent<Record<string, unknown>>);
    return event;
  }

  /**
   * Sends a task by name, for tasks defined in another codebase (or in Python).
   *
   * @example
   * await app.sendTask('tasks.add', [2, 3]);
   * await app.sendTask('tasks.echo', [], { name: 'Ada' }, { countdown: '5s' });
   */
  async sendTask<R = unknown>(
    name: string,
    args: readonly unknown[] = [],
    kwargs: Record<string, unknown> = {},
    options: Omit<ApplyOptions, 'args' | 'kwargs'> = {},
  ): Promise<AsyncResult<R>> {
    const request = toSendRequest(name, { ...options, args, kwargs }, this.#tasks.get(name)?.options);
    return (await this.#send(request)) as AsyncResult<R>;
  }

  /** A signature by task name (for tasks defined elsewhere). */
  signature<R = unknown>(
    name: string,
    args: unknown[] = [],
    kwargs: Record<string, unknown> = {},
    options: Record<string, unknown> = {},
  ): Signature<R> {
    return new Signature<R>(this.#core, name, args, kwargs, options);
  }

  /** A handle on a result sent from elsewhere. */
  asyncResult<T = unknown>(id: string): AsyncResult<T> {
    return new AsyncResult<T>(this.#core, id);
  }

  /** A worker consuming this app's queues. Nothing happens until `start()`. */
  worker(options: WorkerOptions = {}): Worker {
    this.#assertOpen();
    const worker = new Worker(this.#core, options);
    this.#workers.add(worker);
    if (options.events)
      this.#monitors.push(sendWorkerEvents(worker, { transport: () => this.#getTransport(), log: this.log }));
    return worker;
  }

  /**
   * Calls `listener` with each batch of messages this app publishes, once the broker has it (used by
   * `sendTaskSentEvents` and metrics). Returns a function that removes it.
   */
  onPublished(listener: (messages: readonly OutgoingMessage[]) => void): () => void {
    return this.#publisher.onPublished(listener);
  }

  /**
   * Adds the headers `hook` returns to every message this app publishes from now on (opt-in extras,
   * e.g. `stampSendTime(app)`); without hooks a message is exactly Celery's. Returns a function that
   * removes it.
   */
  addPublishHeaders(hook: () => Record<string, unknown>): () => void {
    return this.#publisher.addHeaders(hook);
  }

  /** Registered tasks by name. */
  get tasks(): ReadonlyMap<string, Task<never[], unknown>> {
    return this.#tasks;
  }

  /** Declared events by name. */
  get events(): ReadonlyMap<string, CeleriacEvent<Record<string, unknown>>> {
    return this.#events;
  }

  /**
   * Remote control of workers, Celery's `app.control`: ping, inspect, revoke, rate_limit, shutdown…
   *
   * @example
   * await app.control.revoke(result.id, { terminate: true });
   * const active = await app.control.inspect().active();
   */
  get control(): Control {
    this.#control ??= new Control({ transport: () => this.#getTransport(), log: this.log, oid: threadOid() });
    return this.#control;
  }

  /** A broker's transport (connected), `default` unless named. For tools such as the CLI's `dead` and `purge`. */
  async transport(broker = 'default'): Promise<Transport> {
    return this.#getTransport(broker);
  }

  /** The result sink (connected), or null. */
  async resultSink(): Promise<ResultSink | null> {
    return this.#getSink();
  }

  /** healthy / degraded / unhealthy, aggregated from the broker, the result sink and the workers. */
  async health(): Promise<HealthReport> {
    const components: Record<string, HealthReport> = {};
    for (const name of Object.keys(this.config.brokers)) {
      const pending = this.#transports.get(name);
      const report: HealthReport = pending
        ? ((await pending.catch(() => null))?.health() ?? {
            status: 'unhealthy',
            reason: 'could not connect',
          })
        : { status: 'healthy', reason: 'not connected yet' };
      if (pending || name === 'default')
        components[name === 'default' ? 'broker' : `broker:${name}`] = report;
    }
    if (this.config.results)
      components.results = this.#sink
        ? ((await this.#sink.catch(() => null))?.health() ?? {
            status: 'unhealthy',
            reason: 'could not connect',
          })
        : { status: 'healthy' };
    let i = 0;
    for (const w of this.#workers)
      components[`worker${this.#workers.size > 1 ? `[${i++}]` : ''}`] = w.health();
    return aggregate(components);
  }

  /** Stops the app's workers and closes every connection it opened. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#workers].map((w) => w.stop()));
    // The last monitoring events (worker-offline) go out before the connections close.
    await Promise.all(this.#monitors.map((m) => m.close()));
    const transports = await Promise.all([...this.#transports.values()].map((t) => t.catch(() => null)));
    const sink = this.#sink ? await this.#sink.catch(() => null) : null;
    // The sink first: rpc:// borrows the broker's connection (and hands the process's reply-queue
    // consumer over to another app's before it goes).
    await sink?.close();
    await Promise.all(transports.map((t) => t?.close()));
  }

  // ---- internals ----

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('this Celeriac app');
  }

  #getTransport(broker = 'default'): Promise<Transport> {
    this.#assertOpen();
    let pending = this.#transports.get(broker);
    if (!pending) {
      const url = this.config.brokers[broker];
      if (url === undefined) {
        return Promise.reject(
          new ConfigError(
            'broker',
            `unknown broker '${broker}' (expected one of ${Object.keys(this.config.brokers).join(', ')})`,
          ),
        );
      }
      pending = (async () => {
        const transport = await createTransport(url, {
          // brokerOptions belong to `broker`; named brokers take their options in their URL.
          options: broker === 'default' ? this.config.brokerOptions : {},
          log: (level, msg, fields) => this.log[level]({ broker: redactUrl(url), ...fields }, msg),
        });
        try {
          await transport.connect();
        } catch (err) {
          // Nothing may keep reconnecting in the background once the caller has the error.
          await transport.close().catch(() => {});
          throw err;
        }
        return transport;
      })();
      this.#transports.set(broker, pending);
      pending.catch(() => {
        this.#transports.delete(broker); // the next call tries again
      });
    }
    return pending;
  }

  #getSink(): Promise<ResultSink | null> {
    this.#assertOpen();
    const url = this.config.results;
    if (!url) return Promise.resolve(null);
    if (!this.#sink) {
      this.#sink = (async () => {
        // The app's own broker transport: rpc:// borrows it (connection, and tasks' reply_to).
        const sink = await createResultSink(url, this.config.resultOptions, () => this.#getTransport());
        try {
          await sink.connect();
        } catch (err) {
          await sink.close().catch(() => {});
          throw err;
        }
        return sink;
      })();
      this.#sink.catch(() => {
        this.#sink = null;
      });
    }
    return this.#sink;
  }

  async #send(request: SendRequest): Promise<AsyncResult<unknown>> {
    this.#assertOpen();
    const task = this.#tasks.get(request.name);
    const sent = await this.#publisher.publish(request, task?.options.queue, task?.options.broker);
    return new AsyncResult(this.#core, sent.id);
  }

  async #sendMany(requests: readonly SendRequest[]): Promise<AsyncResult<unknown>[]> {
    this.#assertOpen();
    if (requests.length === 0) return [];
    const sent = await this.#publisher.publishMany(
      requests.map((request) => {
        const options = this.#tasks.get(request.name)?.options;
        return { request, taskQueue: options?.queue, taskBroker: options?.broker };
      }),
    );
    return sent.map((s) => new AsyncResult(this.#core, s.id));
  }

  async #validateArgs(
    task: Task<never[], unknown>,
    args: unknown[],
    where: 'delay' | 'worker',
  ): Promise<unknown[]> {
    const schema = task.options.argsSchema;
    if (!schema) return args;
    const value = await validate(
      schema,
      args,
      `task ${task.name} args${where === 'delay' ? '' : ' (at the worker)'}`,
    );
    return Array.isArray(value) ? value : args;
  }

  async #publishEvent(
    name: string,
    payload: Record<string, unknown>,
    known: readonly EventSubscriber[],
  ): Promise<PublishedEvent> {
    this.#assertOpen();
    const eventId = uuid4();
    // Subscribers this app knows, then those registered in each broker by other services.
    const subscribers = new Map<string, { queue: string; broker: string | undefined }>();
    for (const s of known) {
      const options = this.#tasks.get(s.task)?.options;
      subscribers.set(s.task, {
        queue: this.#router.queueFor(s.task, s.queue, options?.queue),
        broker: options?.broker,
      });
    }
    for (const broker of Object.keys(this.config.brokers)) {
      const transport = await this.#getTransport(broker);
      for (const s of await transport.subscriptions.list(name)) {
        if (!subscribers.has(s.task)) subscribers.set(s.task, { queue: s.queue, broker });
      }
    }
    const items = [...subscribers].map(([task, { queue, broker }]) => ({
      taskBroker: broker,
      request: {
        name: task,
        args: [],
        kwargs: payload,
        taskId: subscriberTaskId(eventId, task),
        eta: null,
        expires: null,
        priority: this.#tasks.get(task)?.options.priority,
        queue,
        headers: { [EVENT_HEADER]: name, [EVENT_ID_HEADER]: eventId },
        ignoreResult: this.#tasks.get(task)?.options.ignoreResult ?? false,
        shadow: null,
        timelimit: [null, null] as [null, null],
      } satisfies SendRequest,
    }));
    if (items.length === 0) this.log.warn({ event: name, eventId }, 'event published with no subscribers');
    const sent = items.length ? await this.#publisher.publishMany(items) : [];
    const results = new Map<string, AsyncResult<unknown>>();
    for (const [i, s] of sent.entries())
      results.set(items[i]?.request.name as string, new AsyncResult(this.#core, s.id));
    return { id: eventId, results };
  }

  /** This app's event subscriptions, each with the queue its copies go to. */
  #subscriptions(): Array<{ event: string; task: string; queue: string }> {
    const out: Array<{ event: string; task: string; queue: string }> = [];
    for (const event of this.#events.values()) {
      for (const s of event.subscribers) {
        if (this.#tasks.has(s.task))
          out.push({
            event: event.name,
            task: s.task,
            queue: this.#router.queueFor(s.task, s.queue, this.#tasks.get(s.task)?.options.queue),
          });
      }
    }
    return out;
  }

  #knownQueues(): string[] {
    const queues = new Set([this.config.defaultQueue]);
    for (const task of this.#tasks.values()) queues.add(this.#router.queueFor(task.name, task.options.queue));
    for (const s of this.#subscriptions()) queues.add(s.queue);
    return [...queues];
  }
}

function resolveLogger(logger: CeleriacConfig['logger'], envLevel: string | undefined): Logger {
  if (logger && typeof logger === 'object') return logger;
  const level = typeof logger === 'string' ? logger : (envLevel ?? 'info');
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  if (!levels.includes(level))
    throw new ConfigError('logger', `expected a pino logger or one of ${levels.join(', ')}, got '${level}'`);
  return createLogger(level);
}

function validateTaskOptions(name: string, o: TaskOptions): void {
  const field = (f: string) => `task ${name}: ${f}`;
  if (o.priority !== undefined && !(Number.isInteger(o.priority) && o.priority >= 0 && o.priority <= 9)) {
    throw new ConfigError(field('priority'), `expected an integer from 0 to 9, got ${o.priority}`);
  }
  if (o.retry?.max !== undefined && !(Number.isInteger(o.retry.max) && o.retry.max >= 0)) {
    throw new ConfigError(field('retry.max'), `expected an integer ≥ 0, got ${o.retry.max}`);
  }
  if (o.retry?.backoff !== undefined && o.retry.backoff !== 'fixed' && o.retry.backoff !== 'exponential') {
    throw new ConfigError(
      field('retry.backoff'),
      `expected 'fixed' or 'exponential', got '${String(o.retry.backoff)}'`,
    );
  }
  if (o.params !== undefined && (!Array.isArray(o.params) || o.params.some((p) => typeof p !== 'string'))) {
    throw new ConfigError(field('params'), 'expected an array of parameter names');
  }
  if (
    o.argsSchema !== undefined &&
    typeof (o.argsSchema as { '~standard'?: unknown })['~standard'] !== 'object'
  ) {
    throw new ConfigError(
      field('argsSchema'),
      'expected a Standard Schema validator (zod, valibot, arktype…)',
    );
  }
}

export type { EagerResult };
