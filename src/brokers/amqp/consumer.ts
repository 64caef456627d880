import type { AsyncMessage, Channel } from 'rabbitmq-client';
import type { Consumer, Delivery } from '../transport.js';
import { nackQuietly } from './topology.js';

/** What a consumer needs from its transport. */
export interface ConsumerHost {
  acquire(): Promise<Channel>;
  declareQueue(queue: string): Promise<void>;
  forgetQueue(queue: string): void;
  isQuorum(queue: string): boolean;
  /** A delivery arrived on `ch` for `queue`. */
  receive(consumer: AmqpConsumer, ch: Channel, queue: string, msg: AsyncMessage): void;
  /** The channel is gone: its unsettled deliveries can no longer be settled (RabbitMQ requeues them). */
  lose(ch: Channel): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
  readonly closed: boolean;
}

const BACKOFF_MS = [100, 200, 500, 1000, 2000, 5000];

/**
 * One `consume()` call: its own channel, one AMQP consumer per queue on it.
 *
 * Prefetch. One queue: `basic.qos(prefetch, global = true)` on the channel, exact. Several queues:
 * RabbitMQ's channel-wide limit alone is not fair (the queue that just delivered tends to win the
 * freed credit), so each queue's consumer gets `basic.qos(prefetch)` per consumer, the channel a
 * limit of `prefetch + queues - 1`, and the consumer hands out at most `prefetch` at once, taking
 * the next one round-robin from what each queue sent: at most `queues - 1` messages wait fetched but
 * not handed out. RabbitMQ 3.10 quorum queues refuse global QoS: with a quorum queue among the
 * queues only the per-consumer limits apply, so up to `(queues - 1) × prefetch` may wait. The bound
 * on what the handler holds is `prefetch` in every case. `setPrefetch` re-issues `basic.qos` (and,
 * for per-consumer QoS, which only applies to new consumers, re-subscribes each queue; deliveries
 * held stay held), one change at a time with the latest value.
 *
 * Recovery, so that a consumer that stays connected but no longer consumes cannot happen: a channel
 * closed by the server (a 406, a lost connection, a missed heartbeat) is replaced and every queue
 * subscribed again; a consumer cancelled by the server (its queue deleted) re-declares its queue and
 * subscribes again. Both retry with backoff (100 ms … 5 s) until they succeed or the consumer is
 * cancelled, and `recovering` says so meanwhile (the transport reports it as degraded health).
 */
export class AmqpConsumer implements Consumer {
  /** Why this consumer is not consuming everything it should right now, or undefined. */
  recovering: string | undefined;
  cancelled = false;
  private channel: Channel | undefined;
  private readonly tags = new Map<string, string>();
  private unsettled = 0;
  private readonly quorum: boolean;
  /** Fetched, not handed out yet (several queues only), per queue in arrival order. */
  private readonly waiting = new Map<string, Array<{ deliveryTag: number; handOut: () => void }>>();
  private turn = 0;
  /** The prefetch the channel's QoS and consumers were set up with; `applying`: the change in progress. */
  private applied = -1;
  private applying: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: ConsumerHost,
    readonly queues: readonly string[],
    private prefetch: number,
    readonly onDelivery: (delivery: Delivery) => void,
  ) {
    this.quorum = queues.some((q) => host.isQuorum(q));
  }

  get currentChannel(): Channel | undefined {
    return this.channel?.active ? this.channel : undefined;
  }

  async start(): Promise<void> {
    await this.attach();
  }

  /** A delivery of this consumer was settled (or lost with its channel). */
  settled(ch: Channel): void {
    if (ch !== this.channel) return;
    this.unsettled = Math.max(0, this.unsettled - 1);
    this.drain();
    if (this.cancelled && this.unsettled === 0) void this.closeChannel();
  }

  /** A message to hand out: now if the credit allows, else when a delivery is settled. */
  offer(queue: string, deliveryTag: number, handOut: () => void): void {
    if (this.unsettled < this.prefetch && !this.hasWaiting()) {
      this.unsettled += 1;
      handOut();
      return;
    }
    let list = this.waiting.get(queue);
    if (!list) {
      list = [];
      this.waiting.set(queue, list);
    }
    list.push({ deliveryTag, handOut });
  }

  private hasWaiting(): boolean {
    for (const l of this.waiting.values()) if (l.length) return true;
    return false;
  }

  /** Hands out waiting messages while credit allows, taking the queues in turn. */
  private drain(): void {
    while (this.unsettled < this.prefetch && !this.cancelled && this.hasWaiting()) {
      for (let i = 0; i < this.queues.length; i++) {
        const queue = this.queues[(this.turn + i) % this.queues.length] as string;
        const next = this.waiting.get(queue)?.shift();
        if (next) {
          this.turn = (this.turn + i + 1) % this.queues.length;
          this.unsettled += 1;
          next.handOut();
          break;
        }
      }
    }
  }

  /** basic.qos for the current prefetch (see the class comment). */
  private async qos(ch: Channel): Promise<void> {
    if (this.queues.length === 1 && !this.quorum) {
      await ch.basicQos({ prefetchCount: this.prefetch, global: true });
      return;
    }
    await ch.basicQos({ prefetchCount: this.prefetch, global: false });
    if (!this.quorum)
      await ch.basicQos({ prefetchCount: this.prefetch + this.queues.length - 1, global: true });
  }

  private get perConsumerQos(): boolean {
    return this.queues.length > 1 || this.quorum;
  }

  setPrefetch(prefetch: number): void {
    this.prefetch = prefetch;
    this.drain();
    const ch = this.channel;
    if (!ch?.active || this.cancelled) return;
    // One re-subscription at a time, with the latest value: a burst of changes (prefetch 'auto',
    // autoscaling) must not run several loops over the same tags, each adding a consumer.
    this.applying = this.applying
      .then(() => this.applyPrefetch(ch))
      .catch((err) => this.host.log('warn', 'amqp: setPrefetch failed', { error: String(err) }));
  }

  private async applyPrefetch(ch: Channel): Promise<void> {
    const prefetch = this.prefetch;
    if (prefetch === this.applied || ch !== this.channel || !ch.active || this.cancelled) return;
    await this.qos(ch);
    // A per-consumer limit is fixed at basic.consume, so changing it means re-subscribing. Done
    // only when the limit at least doubles or halves: in between, the credit check in offer()
    // holds this consumer to the exact value, and prefetch 'auto' may move it every 25 ms.
    const resubscribe = this.perConsumerQos && (prefetch >= 2 * this.applied || 2 * prefetch <= this.applied);
    if (resubscribe) {
      for (const [tag, queue] of [...this.tags]) {
        if (ch !== this.channel || this.cancelled) return;
        await ch.basicCancel(tag);
        this.tags.delete(tag);
        await this.subscribe(ch, queue);
      }
    }
    if (resubscribe || !this.perConsumerQos) this.applied = prefetch;
  }

  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    this.recovering = undefined;
    const ch = this.channel;
    if (!ch?.active) return;
    for (const tag of [...this.tags.keys()]) await ch.basicCancel(tag).catch(() => {});
    this.tags.clear();
    // Fetched but never handed out: back to the queue.
    for (const list of this.waiting.values()) for (const w of list) nackQuietly(ch, w.deliveryTag);
    this.waiting.clear();
    // Deliveries handed out stay owned (their tags live on this channel) until settled.
    if (this.unsettled === 0) await this.closeChannel();
  }

  /** Closes the channel for good (transport close): unsettled deliveries go back to their queues. */
  async close(): Promise<void> {
    this.cancelled = true;
    this.recovering = undefined;
    await this.closeChannel();
  }

  private async closeChannel(): Promise<void> {
    const ch = this.channel;
    this.channel = undefined;
    if (ch) this.host.lose(ch);
    if (ch?.active) await ch.close().catch(() => {});
  }

  private async attach(): Promise<void> {
    const ch = await this.host.acquire();
    try {
      ch.on('close', () => this.onChannelClosed(ch));
      ch.on('basic.cancel', (tag: string) => this.onServerCancel(ch, tag));
      const prefetch = this.prefetch;
      await this.qos(ch);
      this.channel = ch;
      this.applied = prefetch;
      this.unsettled = 0;
      this.waiting.clear();
      for (const queue of this.queues) {
        await this.host.declareQueue(queue);
        await this.subscribe(ch, queue);
      }
    } catch (err) {
      if (this.channel === ch) this.channel = undefined;
      await ch.close().catch(() => {});
      throw err;
    }
  }

  private async subscribe(ch: Channel, queue: string): Promise<void> {
    const { consumerTag } = await ch.basicConsume({ queue }, (msg) =>
      this.host.receive(this, ch, queue, msg),
    );
    if (this.cancelled || ch !== this.channel) {
      // cancel() (or a channel replacement) ran while this consumer was being set up: it would
      // otherwise stay subscribed, and every delivery to it would be nacked back.
      await ch.basicCancel(consumerTag).catch(() => {});
      return;
    }
    this.tags.set(consumerTag, queue);
  }

  private onChannelClosed(ch: Channel): void {
    this.host.lose(ch);
    if (ch !== this.channel) return;
    this.channel = undefined;
    this.tags.clear();
    this.waiting.clear(); // RabbitMQ requeues them with the channel
    if (this.cancelled || this.host.closed) return;
    this.recovering = `channel of consumer on ${this.queues.join(', ')} closed; re-subscribing`;
    this.host.log('warn', 'amqp: consumer channel closed, recovering', { queues: this.queues });
    void this.retry(async () => this.attach(), 'resubscribed after its channel closed');
  }

  private onServerCancel(ch: Channel, tag: string): void {
    const queue = this.tags.get(tag);
    this.tags.delete(tag);
    if (queue === undefined || this.cancelled || ch !== this.channel) return;
    this.host.forgetQueue(queue);
    this.recovering = `consumer on '${queue}' cancelled by the server (queue deleted?); re-declaring`;
    this.host.log('warn', 'amqp: consumer cancelled by the server, recovering', { queue });
    void this.retry(async () => {
      if (ch !== this.channel || !ch.active) return; // the channel recovery re-subscribes everything
      await this.host.declareQueue(queue);
      await this.subscribe(ch, queue);
    }, `re-subscribed to '${queue}' after a server cancel`);
  }

  private async retry(step: () => Promise<void>, what: string): Promise<void> {
    for (let attempt = 0; !this.cancelled && !this.host.closed; attempt++) {
      await new Promise((r) => setTimeout(r, BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]));
      if (this.cancelled || this.host.closed) return;
      try {
        await step();
        this.recovering = undefined;
        this.host.log('info', `amqp: consumer ${what}`, { queues: this.queues, attempts: attempt + 1 });
        return;
      } catch (err) {
        this.recovering = `${this.recovering ?? 'recovering'} (attempt ${attempt + 1}: ${String(err)})`.slice(
          0,
          500,
        );
      }
    }
  }
}
