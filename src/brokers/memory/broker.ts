import { CeleriacError } from '../../errors.js';
import type { WireMessage } from '../../messages/types.js';
import type { Delivery, OutgoingMessage } from '../transport.js';
import { DeadLetterBook } from './dead-letters.js';
import { DelayedMessages } from './delayed.js';
import { PriorityQueue, type StoredMessage } from './priority-queue.js';
import { SubscriptionBook } from './subscriptions.js';

/** A connection's identity: deliveries belong to the connection (transport) that received them. */
export interface Connection {
  readonly id: number;
  /** Where a consumer callback that throws is reported. */
  readonly report: (error: unknown, delivery: Delivery) => void;
}

/** A consumer as the broker sees it. */
export interface ConsumerState {
  readonly connection: Connection;
  readonly queues: readonly string[];
  readonly onDelivery: (delivery: Delivery) => void;
  prefetch: number;
  unsettled: number;
  /** Index of the queue to try first next time (fair rotation between queues). */
  rotation: number;
  active: boolean;
}

interface Unacked {
  readonly stored: StoredMessage;
  readonly consumer: ConsumerState;
}

/**
 * Deliveries handed out per macrotask before the dispatcher yields to I/O with setImmediate: a
 * consumer that settles synchronously could otherwise keep the microtask queue busy for a whole drain.
 */
const TICK_BUDGET = 1024;

/** Thrown when a delivery is settled a second time (or was never handed out on this connection). */
export function alreadySettled(delivery: Delivery): CeleriacError {
  return new CeleriacError(
    'ERR_SETTLED',
    `delivery '${delivery.tag}' of queue '${delivery.queue}' is not pending on this connection: it was already ` +
      'settled (ack, requeue, defer and deadLetter settle a delivery exactly once) or belongs to another connection',
  );
}

/**
 * The state of one in-process broker: ready queues, delayed messages, dead letters, subscriptions,
 * consumers and unsettled deliveries. Shared by every memory transport of the same name (see
 * `registry.ts`); each transport is one connection to it.
 *
 * @example
 * const broker = new MemoryBroker();
 * const conn = broker.connect((err) => console.error(err));
 * broker.publish([{ queue: 'celery', message }]);
 * broker.addConsumer(conn, ['celery'], 10, (d) => broker.ack(conn, d));
 */
export class MemoryBroker {
  readonly deadLetters = new DeadLetterBook((queue, message) =>
    this.enqueue(queue, { queue, message, deliveries: 0 }),
  );
  readonly subscriptions = new SubscriptionBook();
  private readonly queues = new Map<string, PriorityQueue>();
  private readonly delayed = new DelayedMessages((stored) => this.enqueue(stored.queue, stored));
  private readonly unacked = new Map<string, Unacked>();
  private consumers: ConsumerState[] = [];
  private nextConsumer = 0;
  private tagSeq = 0;
  private connectionSeq = 0;
  private scheduled = false;
  private tickDeliveries = 0;
  /** Pending setImmediate handles, cleared by destroy() so nothing outlives the broker. */
  private runImmediate: NodeJS.Immediate | undefined;
  private resetImmediate: NodeJS.Immediate | undefined;
  private destroyed = false;

  connect(report: Connection['report']): Connection {
    return { id: ++this.connectionSeq, report };
  }

  /** Makes every message visible in one synchronous step (all-or-nothing). Validate before calling. */
  publish(messages: readonly OutgoingMessage[]): void {
    const now = Date.now();
    for (const { queue, message, notBefore } of messages) {
      const stored: StoredMessage = { queue, message: copyMessage(message), deliveries: 0 };
      if (notBefore !== undefined && notBefore > now) this.delayed.add(stored, notBefore);
      else this.enqueue(queue, stored);
    }
  }

  addConsumer(
    connection: Connection,
    queues: readonly string[],
    prefetch: number,
    onDelivery: (delivery: Delivery) => void,
  ): ConsumerState {
    const consumer: ConsumerState = {
      connection,
      queues,
      onDelivery,
      prefetch,
      unsettled: 0,
      rotation: 0,
      active: true,
    };
    this.consumers.push(consumer);
    this.schedule();
    return consumer;
  }

  setPrefetch(consumer: ConsumerState, prefetch: number): void {
    consumer.prefetch = prefetch;
    this.schedule();
  }

  /** Stops deliveries to the consumer; what it holds stays owned by its connection until settled. */
  cancelConsumer(consumer: ConsumerState): void {
    consumer.active = false;
    this.consumers = this.consumers.filter((c) => c !== consumer);
  }

  ack(connection: Connection, delivery: Delivery): void {
    this.settle(connection, delivery);
  }

  /** Back to the tail of its queue; the next delivery counts as a redelivery. */
  requeue(connection: Connection, delivery: Delivery): void {
    const stored = this.settle(connection, delivery);
    this.enqueue(stored.queue, stored);
  }

  /** Parks the message until `notBefore`; the deferred delivery does not count. */
  defer(connection: Connection, delivery: Delivery, notBefore: number): void {
    const stored = this.settle(connection, delivery);
    stored.deliveries--;
    if (notBefore > Date.now()) this.delayed.add(stored, notBefore);
    else this.enqueue(stored.queue, stored);
  }

  deadLetter(connection: Connection, delivery: Delivery, reason: string): void {
    const stored = this.settle(connection, delivery);
    this.deadLetters.add(stored.queue, stored.message, reason);
  }

  depth(queue: string): number {
    return this.queues.get(queue)?.length ?? 0;
  }

  purge(queue: string): number {
    return this.queues.get(queue)?.clear() ?? 0;
  }

  /**
   * A connection is lost: its consumers stop and its unsettled deliveries go back to the head of
   * their queues, in the order they were delivered, as a broker does on connection loss.
   */
  disconnect(connection: Connection): void {
    for (const consumer of this.consumers) if (consumer.connection === connection) consumer.active = false;
    this.consumers = this.consumers.filter((c) => c.active);
    const returned: StoredMessage[] = [];
    for (const [tag, entry] of this.unacked) {
      if (entry.consumer.connection !== connection) continue;
      this.unacked.delete(tag);
      returned.push(entry.stored);
    }
    for (let i = returned.length - 1; i >= 0; i--) {
      const stored = returned[i] as StoredMessage;
      this.queue(stored.queue).unshift(stored);
    }
    if (returned.length > 0) this.schedule();
  }

  /** Drops all state and timers (the last connection closed). */
  destroy(): void {
    this.destroyed = true;
    if (this.runImmediate) clearImmediate(this.runImmediate);
    if (this.resetImmediate) clearImmediate(this.resetImmediate);
    this.runImmediate = undefined;
    this.resetImmediate = undefined;
    this.delayed.clear();
    this.queues.clear();
    this.unacked.clear();
    this.consumers = [];
    this.deadLetters.clear();
    this.subscriptions.clear();
  }

  private settle(connection: Connection, delivery: Delivery): StoredMessage {
    const entry = this.unacked.get(delivery.tag);
    if (!entry || entry.consumer.connection !== connection) throw alreadySettled(delivery);
    this.unacked.delete(delivery.tag);
    entry.consumer.unsettled--;
    if (entry.consumer.active) this.schedule();
    return entry.stored;
  }

  private enqueue(queue: string, stored: StoredMessage): void {
    if (this.destroyed) return;
    this.queue(queue).push(stored);
    this.schedule();
  }

  private queue(name: string): PriorityQueue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new PriorityQueue();
      this.queues.set(name, queue);
    }
    return queue;
  }

  private schedule(): void {
    if (this.scheduled || this.destroyed || this.consumers.length === 0) return;
    this.scheduled = true;
    // Low latency while under budget; once a macrotask has delivered its share, yield to I/O.
    if (this.tickDeliveries < TICK_BUDGET) queueMicrotask(this.run);
    else this.runImmediate = setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    this.runImmediate = undefined;
    if (this.destroyed) return;
    const budget = TICK_BUDGET - this.tickDeliveries;
    if (budget <= 0) {
      this.scheduled = true;
      this.runImmediate = setImmediate(this.run);
      return;
    }
    const delivered = this.dispatch(budget);
    if (delivered > 0) {
      // The budget is per macrotask: it refills when the event loop next reaches its check phase.
      if (this.tickDeliveries === 0) this.resetImmediate = setImmediate(this.resetTick);
      this.tickDeliveries += delivered;
    }
    if (delivered === budget) this.schedule();
  };

  private readonly resetTick = (): void => {
    this.resetImmediate = undefined;
    this.tickDeliveries = 0;
  };

  /** Hands out up to `budget` messages, one per consumer with credit per round (round-robin). */
  private dispatch(budget: number): number {
    let delivered = 0;
    let progress = true;
    while (progress && delivered < budget) {
      progress = false;
      const consumers = this.consumers;
      const n = consumers.length;
      if (n === 0) break;
      const start = this.nextConsumer % n;
      for (let i = 0; i < n && delivered < budget; i++) {
        const consumer = consumers[(start + i) % n] as ConsumerState;
        if (!consumer.active || consumer.unsettled >= consumer.prefetch) continue;
        const stored = this.take(consumer);
        if (!stored) continue;
        this.deliver(consumer, stored);
        delivered++;
        progress = true;
      }
      this.nextConsumer = (start + 1) % n;
    }
    return delivered;
  }

  /** The next message for a consumer, starting from the queue after the one it was last served from. */
  private take(consumer: ConsumerState): StoredMessage | undefined {
    const queues = consumer.queues;
    for (let k = 0; k < queues.length; k++) {
      const index = (consumer.rotation + k) % queues.length;
      const stored = this.queues.get(queues[index] as string)?.shift();
      if (stored) {
        consumer.rotation = index + 1;
        return stored;
      }
    }
    return undefined;
  }

  private deliver(consumer: ConsumerState, stored: StoredMessage): void {
    stored.deliveries++;
    const delivery: Delivery = {
      tag: `m${++this.tagSeq}`,
      queue: stored.queue,
      message: copyMessage(stored.message),
      deliveryCount: stored.deliveries,
      redelivered: stored.deliveries > 1,
    };
    this.unacked.set(delivery.tag, { stored, consumer });
    consumer.unsettled++;
    try {
      consumer.onDelivery(delivery);
    } catch (error) {
      // The delivery stays owned by the consumer's connection (returned on close), like any other.
      consumer.connection.report(error, delivery);
    }
  }
}

/**
 * A copy of the message envelope (top-level fields, headers, properties), so neither the publisher
 * nor a consumer can change what the broker holds. Nested header values are shared: treat as read-only.
 */
function copyMessage(message: WireMessage): WireMessage {
  return { ...message, headers: { ...message.headers }, properties: { ...message.properties } };
}
