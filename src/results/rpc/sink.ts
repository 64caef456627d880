import { Connection } from 'rabbitmq-client';
import { asReplyPort, type ReplyPort, type ReplyRoutes } from '../../brokers/amqp/replies.js';
import { resolveAmqpSettings } from '../../brokers/amqp/settings.js';
import { ChannelSlot } from '../../brokers/amqp/topology.js';
import type { Transport } from '../../brokers/transport.js';
import { ClosedError, ConfigError, ConnectionError } from '../../errors.js';
import type { HealthReport } from '../../health.js';
import { threadOid } from '../../messages/ids.js';
import { dumps } from '../../messages/json.js';
import { READY_STATES, type ResultMeta } from '../meta.js';
import type { ResultSink } from '../sink.js';
import { type Lender, ReplyHub } from './hub.js';

/** Celery's result_expires default: the reply queue's `x-expires`. */
const DEFAULT_EXPIRES_MS = 86_400_000;
/** Fields Celery's rpc body carries, in its order; extended fields follow, `date_done` is not sent. */
const EXTRA = ['group_id', 'parent_id', 'name', 'args', 'kwargs', 'worker', 'retries', 'queue'] as const;

/** Celery's rpc reply body for a meta: `{task_id, status, result, traceback, children}` (+ extended fields). */
export function replyBody(meta: ResultMeta): string {
  const body: Record<string, unknown> = {
    task_id: meta.task_id,
    status: meta.status,
    result: meta.result,
    traceback: meta.traceback,
    children: meta.children,
  };
  for (const k of EXTRA) if (meta[k] !== undefined) body[k] = meta[k];
  return dumps(body, { allowBigInt: true, root: 'result' });
}

/**
 * Celery's rpc:// result backend (PROTOCOL.md §5.5): a state is published to the reply queue of the
 * task's sender (the `reply_to` of its message; routing key = that queue, `correlation_id` = task id,
 * delivery_mode 1, empty headers, JSON body without `date_done`), and each client consumes its own
 * reply queue (`threadOid()`, declared non-durable, auto-delete, `x-expires` = result expiry).
 *
 * The connection: `rpc://` borrows the app's own broker transport (`broker`, given by the app; it
 * must be amqp://), as Celery's rpc backend uses the broker connection; `rpc://user:pass@host:5672/vhost`
 * opens its own. The consumer of the reply queue is shared by every rpc sink of the process on the
 * same vhost (`hub.ts`).
 *
 * What differs from a stored backend such as redis://, by design of rpc (and Celery's):
 * - a state reaches only the process that sent the task; `get()` elsewhere returns null;
 * - `get()` answers from what has arrived on the reply queue (latest state per task), so a state in
 *   flight is not seen yet; `wait()`/`watch()` see every state as it arrives;
 * - expiry: the reply queue expires after `expiresMs` unused; states in the local cache expire after
 *   the `expiresMs` given when this process stored them, else after a day;
 * - `incr()` (chord counters) is refused: there is no shared store. Chords need a redis:// results URL.
 * - which reply queue: the `reply_to` of the task's latest delivery through the borrowed transport
 *   (`brokers/amqp/replies.ts`; a retry keeps the original's); a state stored for a task that no
 *   delivery brought here goes to this process's own reply queue.
 *
 * @example
 * const app = new Celeriac({ broker: 'amqp://guest:guest@127.0.0.1:5672//', results: 'rpc://' });
 */
export class RpcResultSink implements ResultSink {
  readonly kind = 'rpc';
  readonly shared = true;
  private hub: ReplyHub | undefined;
  private opening: Promise<ReplyHub> | undefined;
  /** The app's broker transport, borrowed (`rpc://`), or our own connection (`rpc://host`). */
  private port: ReplyPort | undefined;
  private own: Connection | undefined;
  /** With our own connection: the app broker's routes, if it is AMQP (looked up on first store). */
  private routes: Promise<ReplyRoutes | undefined> | undefined;
  private publisher: ChannelSlot | undefined;
  private readonly lender: Lender = () => this.connection();
  private readonly waits = new Set<(e: unknown) => void>();
  private readonly unlisten = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly url: URL,
    private readonly options: Record<string, unknown> = {},
    private readonly broker?: () => Promise<Transport>,
  ) {}

  private connection(): Connection {
    if (this.closed) throw new ClosedError('rpc result sink');
    if (this.port) return this.port.conn();
    if (this.own) return this.own;
    throw new ClosedError('rpc result sink (not opened)');
  }

  /** Finds the connection (borrowed or own) and joins the process's reply hub for its vhost. */
  private open(): Promise<ReplyHub> {
    if (this.closed) return Promise.reject(new ClosedError('rpc result sink'));
    if (this.hub) return Promise.resolve(this.hub);
    this.opening ??= this.join().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async join(): Promise<ReplyHub> {
    let vhost: { hostname: string; port: number; vhost: string };
    if (this.url.host) {
      const s = resolveAmqpSettings(new URL(this.url.href.replace(/^rpc:/, 'amqp:')), this.options);
      this.own = new Connection({
        hostname: s.hostname,
        port: s.port,
        username: s.username,
        password: s.password,
        vhost: s.vhost,
        heartbeat: s.heartbeatS,
        connectionName: `${s.connectionName}:rpc`,
        retryLow: 100,
        retryHigh: 5000,
      });
      this.own.on('error', () => {});
      vhost = s;
    } else {
      if (!this.broker)
        throw new ConfigError(
          'results',
          "rpc:// uses the app's amqp:// broker connection, and none was given; give rpc:// a host: rpc://user:pass@host:5672/vhost",
        );
      const transport = await this.broker();
      const port = asReplyPort(transport);
      if (!port)
        throw new ConfigError(
          'results',
          `rpc:// uses the app's broker connection, which must be amqp:// (it is ${transport.kind}://); use an amqp:// broker, or give rpc:// a host: rpc://user:pass@host:5672/vhost`,
        );
      this.port = port;
      vhost = port.settings;
    }
    if (this.closed) throw new ClosedError('rpc result sink');
    const hub = ReplyHub.join(
      `${vhost.hostname.toLowerCase()}:${vhost.port}/${vhost.vhost}`,
      threadOid(),
      this.expiresMs(),
      this.lender,
    );
    this.hub = hub;
    this.publisher = new ChannelSlot(
      () => this.connection(),
      (ch) => ch.confirmSelect(),
    );
    return hub;
  }

  /**
   * Where the tasks delivered by the app's broker want their results: the borrowed transport's
   * routes, or, with our own connection (rpc://host), the app broker's when it is AMQP.
   */
  private replyRoutes(): Promise<ReplyRoutes | undefined> {
    if (this.port) return Promise.resolve(this.port.replies);
    if (!this.broker) return Promise.resolve(undefined);
    this.routes ??= this.broker().then(
      (transport) => asReplyPort(transport)?.replies,
      () => {
        this.routes = undefined; // the broker is not reachable yet: ask again next time
        return undefined;
      },
    );
    return this.routes;
  }

  private expiresMs(): number {
    const v = this.options.expires;
    return typeof v === 'number' && v > 0 ? v : DEFAULT_EXPIRES_MS;
  }

  async connect(): Promise<void> {
    const hub = await this.open();
    try {
      await hub.ensure();
    } catch (err) {
      throw new ConnectionError(
        `rpc result sink: cannot consume reply queue '${hub.queue}': ${String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  async store(meta: ResultMeta, options: { expiresMs: number }): Promise<void> {
    const hub = await this.open();
    const routes = await this.replyRoutes();
    const replyTo = routes?.replyTo(meta.task_id) ?? hub.queue;
    if (READY_STATES.has(meta.status)) routes?.forget(meta.task_id);
    if (replyTo === hub.queue) hub.expireAfter(meta.task_id, options.expiresMs);
    const body = Buffer.from(replyBody(meta), 'utf8');
    const ch = await (this.publisher as ChannelSlot).get();
    await ch.basicPublish(
      {
        exchange: '',
        routingKey: replyTo,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: {},
        durable: false,
        priority: 0,
        correlationId: meta.task_id,
        timestamp: undefined,
      },
      body,
    );
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    await this.connect();
    return (this.hub as ReplyHub).get(taskId);
  }

  async wait(taskId: string, options: { signal?: AbortSignal }): Promise<ResultMeta> {
    const signal = options.signal;
    if (signal?.aborted) throw signal.reason;
    return new Promise<ResultMeta>((resolve, reject) => {
      let stop = (): void => {};
      let done = false;
      const finish = (): void => {
        done = true;
        stop();
        this.waits.delete(fail);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (e: unknown): void => {
        finish();
        reject(e);
      };
      const onAbort = (): void => fail(signal?.reason);
      // Registered before anything is awaited, so an abort or a close in between is not missed.
      this.waits.add(fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.connect().then(() => {
        if (done) return;
        const hub = this.hub as ReplyHub;
        // Listen, then read what has arrived: states arrive in later turns, none falls in between.
        stop = hub.listen(taskId, (meta) => {
          if (!READY_STATES.has(meta.status)) return;
          finish();
          resolve(meta);
        });
        const now = hub.get(taskId);
        if (now && READY_STATES.has(now.status)) {
          finish();
          resolve(now);
        }
      }, fail);
    });
  }

  async watch(taskId: string, listener: (meta: ResultMeta) => void): Promise<() => Promise<void>> {
    await this.connect();
    const stop = (this.hub as ReplyHub).listen(taskId, listener);
    this.unlisten.add(stop);
    return async () => {
      stop();
      this.unlisten.delete(stop);
    };
  }

  async forget(taskId: string): Promise<void> {
    (await this.open()).forget(taskId);
  }

  async incr(_key: string, _by: number, _options: { expiresMs: number }): Promise<number> {
    if (this.closed) throw new ClosedError('rpc result sink');
    throw new ConfigError(
      'results',
      'rpc:// keeps no shared counters, so it cannot join chords; use a redis:// results URL for chords',
    );
  }

  health(): HealthReport {
    if (this.closed) return { status: 'unhealthy', reason: 'closed' };
    if (this.own && !this.own.ready) return { status: 'degraded', reason: 'reconnecting to RabbitMQ' };
    if (this.hub?.recovering) return { status: 'degraded', reason: this.hub.recovering };
    return { status: 'healthy' };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new ClosedError('rpc result sink');
    for (const fail of [...this.waits]) fail(error);
    for (const stop of this.unlisten) stop();
    this.unlisten.clear();
    await this.opening?.catch(() => {});
    await this.publisher?.close();
    // Another sink of the process takes over the reply queue's consumer if it ran on our connection.
    await this.hub?.leave(this.lender);
    this.hub = undefined;
    if (this.own) {
      const conn = this.own;
      const timer = setTimeout(() => conn.unsafeDestroy(), 2000);
      await conn.close().catch(() => conn.unsafeDestroy());
      clearTimeout(timer);
    }
  }
}
