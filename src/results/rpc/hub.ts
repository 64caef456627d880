import type { AsyncMessage, Channel, Connection } from 'rabbitmq-client';
import { bodyText } from '../../brokers/amqp/frames.js';
import { ClosedError } from '../../errors.js';
import { loads } from '../../messages/json.js';
import type { ResultMeta } from '../meta.js';

type Listener = (meta: ResultMeta) => void;

/** Most task states kept in the reply cache (the oldest go first). */
const MAX_CACHED = 10_000;
const BACKOFF_MS = [100, 200, 500, 1000, 2000, 5000];

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

/**
 * The reply queue of this process (Celery's rpc result consumer): declared as Celery declares it
 * (non-durable, auto-delete, `x-expires` = result expiry), consumed without acks, every state that
 * arrives cached (latest per task) and passed to the listeners of its task. Shared by every rpc
 * sink of the process on the same broker, since they share one reply queue (`threadOid()`).
 * The consumer is re-established (queue re-declared) whenever its channel closes.
 */
export class ReplyHub {
  refs = 0;
  recovering: string | undefined;
  private readonly cache = new Map<string, { meta: ResultMeta; expiresAt: number }>();
  private readonly expiries = new Map<string, number>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private channel: Channel | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;

  constructor(
    readonly connection: () => Connection,
    readonly queue: string,
    private readonly queueExpiresMs: number,
  ) {}

  /** Starts consuming the reply queue (idempotent). */
  ensure(): Promise<void> {
    if (this.channel?.active) return Promise.resolve();
    this.starting ??= this.attach().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async attach(): Promise<void> {
    const ch = await this.connection().acquire();
    try {
      await ch.queueDeclare({
        queue: this.queue,
        durable: false,
        autoDelete: true,
        arguments: { 'x-expires': this.queueExpiresMs },
      });
      await ch.basicConsume({ queue: this.queue, noAck: true }, (msg) => this.onMessage(msg));
      ch.on('close', () => this.onClosed(ch));
      this.channel = ch;
    } catch (err) {
      await ch.close().catch(() => {});
      throw err;
    }
  }

  private onClosed(ch: Channel): void {
    if (ch !== this.channel) return;
    this.channel = undefined;
    if (this.closed) return;
    this.recovering = `rpc reply queue '${this.queue}' consumer lost; re-subscribing`;
    void (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        await new Promise((r) => setTimeout(r, BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]));
        try {
          await this.ensure();
          this.recovering = undefined;
          return;
        } catch (err) {
          if (err instanceof ClosedError) return; // the broker transport we borrowed is closed
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

  async close(): Promise<void> {
    this.closed = true;
    const ch = this.channel;
    this.channel = undefined;
    if (ch?.active) await ch.close().catch(() => {});
  }
}
