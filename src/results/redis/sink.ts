import {
  ConnectionWatch,
  createClient,
  ensureConnected,
  type RedisClient,
} from '../../brokers/redis/clients.js';
import type { RedisEndpoint } from '../../brokers/redis/url.js';
import { ClosedError, ConnectionError } from '../../errors.js';
import type { HealthReport } from '../../health.js';
import { aggregate } from '../../health.js';
import { dumps, loads } from '../../messages/json.js';
import { READY_STATES, type ResultMeta } from '../meta.js';
import type { ResultSink } from '../sink.js';

/** Celery's key (and pub/sub channel) prefix for task results. */
export const TASK_KEYPREFIX = 'celery-task-meta-';

/** Celery's key order in a result meta; keys it does not know go just before task_id. */
const ORDER = [
  'status',
  'result',
  'traceback',
  'children',
  'date_done',
  'group_id',
  'parent_id',
  'name',
  'args',
  'kwargs',
  'worker',
  'retries',
  'queue',
];

type Listener = (meta: ResultMeta) => void;

/**
 * Celery's Redis result backend, readable and writable by Python Celery (PROTOCOL.md section 5):
 * `celery-task-meta-<id>` holds the meta JSON (Python's json.dumps spacing, Celery's key order),
 * written with an expiry and PUBLISHed on a channel of the same name in one transaction, as Celery's
 * backend does (a Python `AsyncResult.get()` waits on that channel).
 *
 * `wait()` and `watch()` SUBSCRIBE first, then GET, so a result stored in between is never missed;
 * nothing polls. One subscriber connection serves every waiter of the sink. After the subscriber
 * reconnects (ioredis re-subscribes), pending waits GET their key again, so a result published while
 * it was away is not missed either.
 *
 * `global_keyprefix` (URL parameter) prefixes keys and channels, as Celery ≥ 5.3's
 * `result_backend_transport_options` does; Celery 5.2.6's backend has no prefix, so leave it unset
 * for Python 5.2 clients.
 *
 * @example
 * const sink = createResultSink(new URL('redis://127.0.0.1:6379/0'), {});
 * const meta = await sink.wait(taskId, { signal: AbortSignal.timeout(5000) });
 */
export class RedisResultSink implements ResultSink {
  readonly kind = 'redis';
  readonly shared = true;
  private client: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private watches: ConnectionWatch[] = [];
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Channels whose SUBSCRIBE is in flight or done. */
  private readonly subscribed = new Map<string, Promise<unknown>>();
  /** Pending waits, rechecked after a subscriber reconnect and rejected on close. */
  private readonly waits = new Set<{ taskId: string; recheck: () => void; fail: (e: unknown) => void }>();
  private closed = false;
  private readonly prefix: string;

  constructor(
    private readonly endpoint: RedisEndpoint,
    private readonly label: string,
  ) {
    this.prefix = endpoint.keyPrefix;
  }

  private key(taskId: string): string {
    return `${this.prefix}${TASK_KEYPREFIX}${taskId}`;
  }

  private redis(): RedisClient {
    if (this.closed) throw new ClosedError(`redis result sink '${this.label}'`);
    if (!this.client) {
      this.client = createClient(this.endpoint, 'celeriac-results');
      this.watches.push(new ConnectionWatch(this.client, `redis results ${this.label}`));
      this.client.connect().catch(() => {});
    }
    return this.client;
  }

  private sub(): RedisClient {
    if (this.closed) throw new ClosedError(`redis result sink '${this.label}'`);
    if (!this.subscriber) {
      const s = createClient(this.endpoint, 'celeriac-results-sub');
      this.subscriber = s;
      this.watches.push(new ConnectionWatch(s, `redis results subscriber ${this.label}`));
      let first = true;
      s.on('ready', () => {
        if (!first) for (const w of this.waits) w.recheck();
        first = false;
      });
      s.on('message', (channel: string, text: string) => this.onMessage(channel, text));
      s.connect().catch(() => {});
    }
    return this.subscriber;
  }

  private onMessage(channel: string, text: string): void {
    const set = this.listeners.get(channel);
    if (!set || set.size === 0) return;
    let meta: ResultMeta;
    try {
      meta = loads(text) as ResultMeta;
    } catch {
      return;
    }
    for (const l of [...set]) l(meta);
  }

  private async listen(taskId: string, listener: Listener): Promise<() => Promise<void>> {
    const channel = this.key(taskId);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    let subscribing = this.subscribed.get(channel);
    if (!subscribing) {
      subscribing = this.sub().subscribe(channel);
      this.subscribed.set(channel, subscribing);
    }
    try {
      await subscribing;
    } catch (err) {
      set.delete(listener);
      this.subscribed.delete(channel);
      throw new ConnectionError(`redis results ${this.label}: subscribe failed: ${String(err)}`, {
        cause: err,
      });
    }
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      const current = this.listeners.get(channel);
      current?.delete(listener);
      if (current && current.size === 0) {
        this.listeners.delete(channel);
        this.subscribed.delete(channel);
        if (!this.closed && this.subscriber) await this.subscriber.unsubscribe(channel).catch(() => {});
      }
    };
  }

  async connect(): Promise<void> {
    try {
      await ensureConnected(this.redis());
    } catch (cause) {
      throw new ConnectionError(`cannot connect to redis results ${this.label}: ${String(cause)}`, { cause });
    }
  }

  async store(meta: ResultMeta, options: { expiresMs: number }): Promise<void> {
    const key = this.key(meta.task_id);
    const text = dumps(ordered(meta), { allowBigInt: true });
    const tx = this.redis().multi();
    if (options.expiresMs > 0) tx.set(key, text, 'PX', Math.max(1, Math.round(options.expiresMs)));
    else tx.set(key, text);
    tx.publish(key, text);
    const reply = await tx.exec();
    const err = reply?.find(([e]) => e)?.[0];
    if (err)
      throw new ConnectionError(`redis results ${this.label}: store failed: ${err.message}`, { cause: err });
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    const text = await this.redis().get(this.key(taskId));
    return text === null ? null : (loads(text) as ResultMeta);
  }

  wait(taskId: string, options: { signal?: AbortSignal }): Promise<ResultMeta> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(new ClosedError(`redis result sink '${this.label}'`));
    return new Promise<ResultMeta>((resolve, reject) => {
      let settled = false;
      let stop: (() => Promise<void>) | undefined;
      const entry = {
        taskId,
        recheck: () => void check(),
        fail: (e: unknown) => finish(() => reject(e)),
      };
      const finish = (action: () => void): void => {
        if (settled) return;
        settled = true;
        this.waits.delete(entry);
        signal?.removeEventListener('abort', onAbort);
        void stop?.();
        action();
      };
      const onAbort = (): void => finish(() => reject(signal?.reason));
      const check = async (): Promise<void> => {
        try {
          const meta = await this.get(taskId);
          if (meta && READY_STATES.has(meta.status)) finish(() => resolve(meta));
        } catch (err) {
          if (this.closed) finish(() => reject(new ClosedError(`redis result sink '${this.label}'`)));
          // A stored value that is not JSON will not get better; a connection error will: the
          // recheck after the reconnect reads the key again.
          else if (err instanceof SyntaxError) finish(() => reject(err));
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waits.add(entry);
      this.listen(taskId, (meta) => {
        if (READY_STATES.has(meta.status)) finish(() => resolve(meta));
      }).then(
        (unsubscribe) => {
          stop = unsubscribe;
          if (settled) void unsubscribe();
          else void check();
        },
        (err: unknown) => finish(() => reject(err)),
      );
    });
  }

  async watch(taskId: string, listener: (meta: ResultMeta) => void): Promise<() => Promise<void>> {
    return this.listen(taskId, listener);
  }

  async forget(taskId: string): Promise<void> {
    await this.redis().del(this.key(taskId));
  }

  async incr(key: string, by: number, options: { expiresMs: number }): Promise<number> {
    const k = `${this.prefix}${key}`;
    const tx = this.redis().multi().incrby(k, by);
    if (options.expiresMs > 0) tx.pexpire(k, Math.max(1, Math.round(options.expiresMs)));
    const reply = await tx.exec();
    const first = reply?.[0];
    if (!first || first[0])
      throw new ConnectionError(`redis results ${this.label}: incr failed: ${String(first?.[0])}`);
    return Number(first[1]);
  }

  health(): HealthReport {
    if (this.closed) return { status: 'unhealthy', reason: 'closed' };
    const parts: Record<string, HealthReport> = {};
    this.watches.forEach((w, i) => {
      parts[i === 0 ? 'commands' : 'subscriber'] = w.report();
    });
    const report = aggregate(parts);
    return report.status === 'healthy'
      ? { status: 'healthy' }
      : { status: report.status, reason: report.reason ?? report.status };
  }

  /** Rejects pending waits with ClosedError and closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.subscribed.clear();
    const clients = [this.client, this.subscriber].filter((c): c is RedisClient => c !== undefined);
    this.client = undefined;
    this.subscriber = undefined;
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    // Last, so the caller of close() is already awaiting when the waits reject.
    for (const w of [...this.waits]) w.fail(new ClosedError(`redis result sink '${this.label}'`));
  }
}

/** The meta with Celery's key order (status … task_id), whatever order it was built in. */
function ordered(meta: ResultMeta): Record<string, unknown> {
  const source = meta as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ORDER) if (k in source && source[k] !== undefined) out[k] = source[k];
  for (const [k, v] of Object.entries(source))
    if (!(k in out) && k !== 'task_id' && v !== undefined) out[k] = v;
  out.task_id = meta.task_id;
  return out;
}
