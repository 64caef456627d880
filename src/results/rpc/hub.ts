import type { AsyncMessage, Channel, Connection } from 'rabbitmq-client';
import { bodyText } from '../../brokers/amqp/frames.js';
import { ClosedError } from '../../errors.js';
import { loads } from '../../messages/json.js';
import type { ResultMeta } from '../meta.js';

type Listener = (meta: ResultMeta) => void;

/** Most task states kept in the reply cache (the oldest go first). */
const MAX_CACHED = 10_000;
const BACKOFF_MS = [100, 200, 500, 1000, 2000, 5000];
/** How long a leaving sink waits for the reply-queue consumer to move to another sink's connection. */
const MOVE_WAIT_MS = 2000;

/** A reply message body (Celery's rpc `{task_id, status, result, traceback, children}`) → ResultMeta. */
export function metaFromReply(body: unknown, correlationId: string | undefined): ResultMeta | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  const taskId = typeof b.task_id === 'string' ? b.task_id : correlationId;
  if (typeof taskId !== 'string' || typeof b.status !== 'string') return null;
  const { task_id: _id, status, result, traceback, children, date_done, ...extra } = b;
  return {
    status,
    result: result ?? null,
    traceback: typeof traceback === 'string' ? traceback : null,
    children: Array.isArray(children) ? children : [],
    date_done: typeof date_done === 'string' ? date_done : null,
    ...(extra as Partial<ResultMeta>),
    task_id: taskId,
  };
}

/** Lends a connection to a hub: an rpc sink's (its own, or the app broker's it borrows). Throws ClosedError once closed. */
export type Lender = () => Connection;

/** The hubs of this process, by broker vhost and reply queue. */
const hubs = new Map<string, ReplyHub>();

/**
 * The reply queue of this process on one RabbitMQ vhost (Celery's rpc result consumer): declared
 * as Celery declares it (non-durable, auto-delete, `x-expires` = result expiry), consumed without
 * acks, every state that arrives cached (latest per task) and passed to the listeners of its task.
 *
 * One per process and vhost, shared by every rpc sink there, whichever connection each uses:
 * they share one reply queue (`threadOid()`), and two consumers on it would split its messages
 * between them. The consumer runs on a connection lent by one of the sinks (`join`); when that
 * sink leaves, or its connection closes, it moves to another lender's. The consumer is
 * re-established (queue re-declared) whenever its channel closes.
 */
export class ReplyHub {
  recovering: string | undefined;
  private readonly cache = new Map<string, { meta: ResultMeta; expiresAt: number }>();
  private readonly expiries = new Map<string, number>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly lenders = new Set<Lender>();
  private channel: Channel | undefined;
  private channelLender: Lender | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly key: string,
    readonly queue: string,
    private readonly queueExpiresMs: number,
  ) {}

  /**
   * The hub of `queue` on the vhost `broker` (`host:port/vhost`), created on first use, with `lender`
   * among the connections it may consume on. Leave it with `leave(lender)`.
   */
  static join(broker: string, queue: string, queueExpiresMs: number, lender: Lender): ReplyHub {
    const key = `${broker}\n${queue}`;
    let hub = hubs.get(key);
    if (!hub) {
      hub = new ReplyHub(key, queue, queueExpiresMs);
      hubs.set(key, hub);
    }
    hub.lenders.add(lender);
    return hub;
  }

  /**
   * A sink leaves: its connection is no longer used. The last one closes the hub; if the consumer
   * ran on the leaver's connection it moves to another's first, so the auto-delete reply queue
   * always has a consumer and keeps the results on their way.
   */
  async leave(lender: Lender): Promise<void> {
    this.lenders.delete(lender);
    if (this.lenders.size === 0) {
      await this.close();
      return;
    }
    if (this.channelLender !== lender) return;
    const old = this.channel;
    this.channel = undefined;
    this.channelLender = undefined;
    // Waited for a little only: the leaver is closing, and another lender may be reconnecting.
    let timer: NodeJS.Timeout | undefined;
    const moved = await Promise.race([
      this.ensure().then(
        () => true,
        () => false,
      ),
      new Promise<false>((r) => {
        timer = setTimeout(() => r(false), MOVE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!moved) this.recover();
    if (old?.active) await old.close().catch(() => {});
  }

  /** Starts consuming the reply queue (idempotent). */
  ensure(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError('rpc reply queue'));
    if (this.channel?.active) return Promise.resolve();
    this.starting ??= this.attach().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** The first lender whose connection is open, with it. */
  private connection(): { conn: Connection; lender: Lender } {
    let last: unknown = new ClosedError('rpc reply queue');
    for (const lender of this.lenders) {
      try {
        return { conn: lender(), lender };
      } catch (err) {
        last = err; // that sink or its borrowed transport is closed: try the next one
      }
    }
    throw last;
  }

  private async attach(): Promise<void> {
    const { conn, lender } = this.connection();
    const ch = await conn.acquire();
    try {
      await ch.queueDeclare({
        queue: this.queue,
        durable: false,
        autoDelete: true,
        arguments: { 'x-expires': this.queueExpiresMs },
      });
      await ch.basicConsume({ queue: this.queue, noAck: true }, (msg) => this.onMessage(msg));
      ch.on('close', () => this.onClosed(ch));
      if (this.closed) throw new ClosedError('rpc reply queue');
      this.channel = ch;
      this.channelLender = lender;
      this.recovering = undefined;
    } catch (err) {
      await ch.close().catch(() => {});
      throw err;
    }
  }

  private onClosed(ch: Channel): void {
    if (ch !== this.channel) return;
    this.channel = undefined;
    this.channelLender = undefined;
    this.recover();
  }

  /** Re-subscribes with backoff until it works, the hub closes, or no lender is left open. */
  private recover(): void {
    if (this.closed) return;
    this.recovering = `rpc reply queue '${this.queue}' consumer lost; re-subscribing`;
    void (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        // At once first: another lender's connection may be up (the reply queue is auto-delete).
        if (attempt > 0)
          await new Promise((r) => setTimeout(r, BACKOFF_MS[Math.min(attempt - 1, BACKOFF_MS.length - 1)]));
        try {
          await this.ensure();
          this.recovering = undefined;
          return;
        } catch (err) {
          if (err instanceof ClosedError) return; // every lender is closed: the next join starts it again
          this.recovering = `rpc reply queue '${this.queue}' consumer lost: ${String(err)}`;
        }
      }
    })();
  }

  private onMessage(msg: AsyncMessage): void {
    let body: unknown;
    try {
      body = Buffer.isBuffer(msg.body) ? loads(bodyText(msg.body)) : msg.body;
    } catch {
      return; // not a result: ignore, as Celery's consumer does
    }
    const meta = metaFromReply(body, msg.correlationId);
    if (meta) this.deliver(meta);
  }

  /** Caches a state and tells its listeners. */
  deliver(meta: ResultMeta): void {
    const ttl = this.expiries.get(meta.task_id) ?? this.queueExpiresMs;
    this.cache.delete(meta.task_id);
    this.cache.set(meta.task_id, { meta, expiresAt: ttl > 0 ? Date.now() + ttl : Number.POSITIVE_INFINITY });
    if (this.cache.size > MAX_CACHED) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    for (const l of [...(this.listeners.get(meta.task_id) ?? [])]) l(meta);
  }

  /** How long a state stored by this process for one of its own tasks stays readable. */
  expireAfter(taskId: string, expiresMs: number): void {
    this.expiries.set(taskId, expiresMs);
    if (this.expiries.size > MAX_CACHED) {
      const oldest = this.expiries.keys().next().value;
      if (oldest !== undefined) this.expiries.delete(oldest);
    }
  }

  get(taskId: string): ResultMeta | null {
    const entry = this.cache.get(taskId);
    if (!entry) return null;
    if (entry.expiresAt <= Date.now()) {
      this.cache.delete(taskId);
      return null;
    }
    return entry.meta;
  }

  forget(taskId: string): void {
    this.cache.delete(taskId);
    this.expiries.delete(taskId);
  }

  listen(taskId: string, listener: Listener): () => void {
    let set = this.listeners.get(taskId);
    if (!set) {
      set = new Set();
      this.listeners.set(taskId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(taskId);
    };
  }

  private async close(): Promise<void> {
    this.closed = true;
    this.recovering = undefined;
    if (hubs.get(this.key) === this) hubs.delete(this.key);
    const ch = this.channel;
    this.channel = undefined;
    this.channelLender = undefined;
    if (ch?.active) await ch.close().catch(() => {});
  }
}
