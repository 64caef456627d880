/**
 * What the AMQP transport declares, and how (PROTOCOL.md §8):
 *
 * | entity | declared as |
 * |---|---|
 * | task queue `q` | Celery's `Queue(q, Exchange(q, 'direct'), q)`: a durable direct exchange named as the queue, the durable queue, bound with routing key `q`. No arguments unless opted in per queue (`brokerOptions.queues`): Celery declares its queues without, and RabbitMQ refuses whichever side declares second with other arguments. Tasks are published, as Celery does, to the default exchange `''` with routing key `q`. |
 * | dead letters of `q` | durable queue `q.dead`, no arguments, unbound (written by `deadLetter`) |
 * | delay bucket `b` ms (b = 2^k) | fanout exchange `celeriac.delay.<b>` → durable queue `celeriac.delay.<b>` with `x-message-ttl` b and `x-dead-letter-exchange` `''`: an expired message keeps its routing key (the target queue) and the default exchange puts it back there. All messages of a bucket have the same TTL, so expiry at the head is expiry in order. |
 * | event subscriptions | topic exchange `celeriac.events`, each subscriber queue bound by event name; the registry of (task, queue) per event is the durable queue `celeriac.subscriptions.<event>` holding one message per subscription |
 */
import type { Channel, Connection } from 'rabbitmq-client';
import { ConnectionError } from '../../errors.js';
import { type AmqpSettings, queueOptionsFor } from './settings.js';

export const EVENTS_EXCHANGE = 'celeriac.events';
export const DELAY_PREFIX = 'celeriac.delay.';
export const SUBSCRIPTIONS_PREFIX = 'celeriac.subscriptions.';
/** Celery's `result_expires` default: the `x-expires` of an rpc reply queue. */
export const REPLY_EXPIRES_MS = 86_400_000;
/** Largest delay bucket (2^31 ms ≈ 24.8 days); longer delays hop through it several times. */
export const MAX_BUCKET_MS = 2 ** 31;

/** The dead-letter queue of a queue. */
export const deadQueue = (queue: string): string => `${queue}.dead`;

/** The bucket for a remaining delay: the largest power of two ≤ `remainingMs` (≥ 1 ms). */
export function bucketFor(remainingMs: number): number {
  if (remainingMs >= MAX_BUCKET_MS) return MAX_BUCKET_MS;
  return 2 ** Math.floor(Math.log2(Math.max(1, remainingMs)));
}

/** Is `error` RabbitMQ's 404 (NOT_FOUND), which also closes the channel it happened on? */
export function isNotFound(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === 'NOT_FOUND';
}

/**
 * One lazily (re)acquired channel. A channel closed by the server (a 404 from a passive declare, a
 * 406) or lost with its connection is replaced on the next `get()`.
 */
export class ChannelSlot {
  private channel: Channel | undefined;
  private pending: Promise<Channel> | undefined;

  constructor(
    private readonly connection: () => Connection,
    private readonly setup: (ch: Channel) => Promise<void> = async () => {},
  ) {}

  get(): Promise<Channel> {
    if (this.channel?.active) return Promise.resolve(this.channel);
    this.pending ??= (async () => {
      try {
        const ch = await this.connection().acquire();
        await this.setup(ch);
        this.channel = ch;
        return ch;
      } catch (err) {
        throw new ConnectionError(`could not open an AMQP channel: ${String(err)}`, { cause: err });
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  async close(): Promise<void> {
    const ch = this.channel;
    this.channel = undefined;
    if (ch?.active) await ch.close().catch(() => {});
  }
}

/**
 * Declares what publishing and consuming need, once per name and connection lifetime. `forget`
 * drops a name from the cache (its queue was deleted under us: a returned message or a consumer
 * cancelled by the server).
 */
export class Topology {
  private readonly declared = new Map<string, Promise<void>>();
  private readonly admin: ChannelSlot;
  /** Passive declares only (a 404 closes the channel). */
  private readonly probe: ChannelSlot;

  constructor(
    private readonly settings: AmqpSettings,
    connection: () => Connection,
  ) {
    this.admin = new ChannelSlot(connection);
    this.probe = new ChannelSlot(connection);
  }

  /** A task queue, as Celery declares it (plus the opt-in arguments of `brokerOptions.queues`). */
  taskQueue(queue: string): Promise<void> {
    return this.once(`q:${queue}`, async (ch) => {
      const o = queueOptionsFor(this.settings, queue);
      const args: Record<string, unknown> = {};
      if (o.quorum) args['x-queue-type'] = 'quorum';
      if (o.maxPriority !== undefined) args['x-max-priority'] = o.maxPriority;
      if (o.deliveryLimit !== undefined) args['x-delivery-limit'] = o.deliveryLimit;
      if (o.deadLetter) {
        args['x-dead-letter-exchange'] = '';
        args['x-dead-letter-routing-key'] = deadQueue(queue);
        await this.deadQueue(queue);
      }
      await ch.exchangeDeclare({ exchange: queue, type: 'direct', durable: true });
      await ch.queueDeclare({
        queue,
        durable: true,
        ...(Object.keys(args).length ? { arguments: args } : {}),
      });
      await ch.queueBind({ queue, exchange: queue, routingKey: queue });
    });
  }

  /** Is the queue a quorum queue (by configuration; it refuses global QoS)? */
  isQuorum(queue: string): boolean {
    return queueOptionsFor(this.settings, queue).quorum === true;
  }

  deadQueue(queue: string): Promise<void> {
    const name = deadQueue(queue);
    return this.once(`q:${name}`, async (ch) => {
      await ch.queueDeclare({ queue: name, durable: true });
    });
  }

  delayBucket(bucketMs: number): Promise<void> {
    const name = `${DELAY_PREFIX}${bucketMs}`;
    return this.once(`d:${name}`, async (ch) => {
      await ch.exchangeDeclare({ exchange: name, type: 'fanout', durable: true });
      await ch.queueDeclare({
        queue: name,
        durable: true,
        arguments: { 'x-message-ttl': bucketMs, 'x-dead-letter-exchange': '' },
      });
      await ch.queueBind({ queue: name, exchange: name, routingKey: '' });
    });
  }

  /**
   * The rpc reply queue of this process, as Celery's rpc backend declares it (non-durable,
   * auto-delete, `x-expires` one day). Declared when this process publishes a task whose `reply_to`
   * is its own, as Celery's client does on send, so that a result published before the process
   * starts reading results is kept, not dropped as unroutable.
   */
  replyQueue(queue: string): Promise<void> {
    return this.once(`r:${queue}`, async (ch) => {
      await ch.queueDeclare({
        queue,
        durable: false,
        autoDelete: true,
        arguments: { 'x-expires': REPLY_EXPIRES_MS },
      });
    });
  }

  eventsExchange(): Promise<void> {
    return this.once(`x:${EVENTS_EXCHANGE}`, async (ch) => {
      await ch.exchangeDeclare({ exchange: EVENTS_EXCHANGE, type: 'topic', durable: true });
    });
  }

  registryQueue(event: string): Promise<void> {
    const name = `${SUBSCRIPTIONS_PREFIX}${event}`;
    return this.once(`q:${name}`, async (ch) => {
      await ch.queueDeclare({ queue: name, durable: true });
    });
  }

  /**
   * Ready messages of a queue, or null when it does not exist (passive declare; no side effect).
   * A 404 closes the channel it happened on, so probes have a channel of their own (declarations
   * on the admin channel are not disturbed), and a probe whose channel another probe's 404 closed
   * is tried again on a new one.
   */
  async messageCount(queue: string): Promise<number | null> {
    for (let attempt = 0; ; attempt++) {
      const ch = await this.probe.get();
      try {
        return (await ch.queueDeclare({ queue, passive: true })).messageCount;
      } catch (err) {
        if (isNotFound(err)) return null;
        if (ch.active || attempt >= 5) throw err;
      }
    }
  }

  /** Runs `fn` on the admin channel (declarations, binds, purges). */
  async run<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    return fn(await this.admin.get());
  }

  forget(queue: string): void {
    this.declared.delete(`q:${queue}`);
  }

  /** After a reconnect nothing is assumed: a restarted RabbitMQ may have lost transient entities. */
  reset(): void {
    this.declared.clear();
  }

  async close(): Promise<void> {
    await Promise.all([this.admin.close(), this.probe.close()]);
  }

  private once(key: string, declare: (ch: Channel) => Promise<void>): Promise<void> {
    let p = this.declared.get(key);
    if (!p) {
      p = this.admin.get().then(declare);
      this.declared.set(key, p);
      p.catch(() => this.declared.delete(key));
    }
    return p;
  }
}

/** basic.ack that does nothing on a closed channel (its deliveries went back to their queues). */
export function ackQuietly(ch: Channel, deliveryTag: number): boolean {
  if (!ch.active) return false;
  try {
    ch.basicAck({ deliveryTag });
    return true;
  } catch {
    return false;
  }
}

/** basic.nack(requeue) that does nothing on a closed channel. */
export function nackQuietly(ch: Channel, deliveryTag: number): void {
  if (!ch.active) return;
  try {
    ch.basicNack({ deliveryTag, requeue: true });
  } catch {
    // the channel closed meanwhile: RabbitMQ requeues the message anyway
  }
}
