import { ConfigError } from '../errors.js';
import type { HealthReport } from '../health.js';
import type { WireMessage } from '../messages/types.js';

/**
 * The broker port. Every broker adapter (memory, redis, amqp, …) implements this interface and passes
 * the transport contract suite in `test/contract/transport.contract.ts`.
 *
 * Semantics every adapter keeps:
 * - at-least-once: a delivery stays owned by its consumer until `ack`, `requeue`, `defer` or
 *   `deadLetter`; if the consumer dies or is cancelled first, the message is delivered again;
 * - `prefetch` bounds the deliveries a consumer holds unsettled at once (credit);
 * - delayed messages (`notBefore`) are kept in the broker, never in a worker's memory;
 * - dead letters are kept per queue with their reason, and can be listed, replayed and purged.
 */
export interface Transport {
  /** The URL scheme this adapter serves, e.g. `memory`, `redis`. */
  readonly kind: string;
  /** True when a message published here is visible to other processes (false for memory://). */
  readonly shared: boolean;
  /**
   * The API priority (0–9, 9 most urgent) of a message sent without one, chosen so that such a
   * message looks on the wire exactly like Python Celery's default (wire priority 0): 0 on AMQP and
   * memory, 9 on Redis (kombu serves wire 0 first). Default 0.
   */
  readonly defaultPriority?: number;

  /** Opens connections. Idempotent. Publishing or consuming connects on first use too. */
  connect(): Promise<void>;
  /**
   * Publishes messages, in order. The whole batch is validated before anything is sent. All-or-nothing where the broker allows it (one script on Redis,
   * one confirmed batch on AMQP): this is how an event reaches all of its subscribers or none.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  /** Starts delivering messages from `queues` to `onDelivery`, at most `prefetch` unsettled at once. */
  consume(
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Consumer>;

  /** The message is done: remove it for good. */
  ack(delivery: Delivery): Promise<void>;
  /** Give the message back to its queue, for this or another consumer (counts as a delivery). */
  requeue(delivery: Delivery): Promise<void>;
  /**
   * Atomically settle the delivery and park the message until `notBefore` (epoch ms), then put it
   * back on its queue. Used for eta/countdown; not counted as a failed delivery.
   */
  defer(delivery: Delivery, notBefore: number): Promise<void>;
  /** Atomically settle the delivery and move the message to the queue's dead letters with `reason`. */
  deadLetter(delivery: Delivery, reason: string): Promise<void>;

  /** Messages waiting in a queue (ready ones; delayed and dead ones not counted). */
  depth(queue: string): Promise<number>;
  /** Removes every ready message of a queue; returns how many. */
  purge(queue: string): Promise<number>;
  /** The dead letters of a queue. */
  readonly deadLetters: DeadLetterStore;
  /** Event subscriptions registered in the broker by any service (see DESIGN.md §2, Events). */
  readonly subscriptions: SubscriptionRegistry;
  /**
   * Fan-out channels, as Celery's fanout exchanges (`celery.pidbox` for remote control, `celeryev`
   * for monitoring events): at-most-once, delivered to live subscribers only. Optional while an
   * adapter does not have it; remote control and monitoring events need it.
   */
  readonly fanout?: Fanout;
  /** Revoked task ids, kept in the broker's store with an expiry, so workers that start later see them too. */
  readonly revocations?: RevocationStore;

  health(): HealthReport;
  /** Closes every connection. Unsettled deliveries go back to their queues (broker-side). */
  close(): Promise<void>;
}

/** One message to publish. */
export interface OutgoingMessage {
  queue: string;
  message: WireMessage;
  /** Epoch ms before which the message must not be delivered (kept in the broker). */
  notBefore?: number;
}

export interface ConsumeOptions {
  /** Upper bound on unsettled deliveries held by this consumer (≥ 1). */
  prefetch: number;
  /**
   * A hint for transports that fetch (pull) rather than receive pushed messages: while fewer than
   * this many credits are free, wait for more and fetch them in one round trip. The worker sets it
   * to half its reserve beyond the running tasks, so waiting never leaves a pool slot idle. Default 1.
   */
  batch?: number;
}

/** A running consumer. */
export interface Consumer {
  /** Changes the prefetch credit (for autoscaling / pool grow-shrink / automatic prefetch), and the batch hint. */
  setPrefetch(prefetch: number, batch?: number): void;
  /**
   * Stops delivering new messages. Deliveries already handed out stay owned by the caller until it
   * settles them; anything fetched but not yet handed out goes back to its queue.
   */
  cancel(): Promise<void>;
}

/** A message handed to a consumer. */
export interface Delivery {
  /** Adapter-specific id of this delivery: unique per delivery, so a stale one cannot settle a later delivery. */
  readonly tag: string;
  readonly queue: string;
  /**
   * The decoded message, or null when the broker's framing could not be decoded; then `raw` holds
   * what was received and `error` says what was wrong, so the worker can dead-letter it with reason.
   */
  readonly message: WireMessage | null;
  readonly raw?: string;
  readonly error?: string;
  /** 1 on first delivery; counts redeliveries after a lost consumer or `requeue` (not `defer`). */
  readonly deliveryCount: number;
  readonly redelivered: boolean;
}

/** A dead-lettered message with the reason it was dead-lettered. */
export interface DeadLetter {
  /** Stable id within the queue's dead letters (for replay of one). */
  id: string;
  queue: string;
  reason: string;
  /** Epoch ms when it was dead-lettered. */
  at: number;
  /** The message, when it could be decoded; otherwise `raw`. */
  message: WireMessage | null;
  raw?: string;
}

export interface DeadLetterStore {
  list(queue: string, options?: { limit?: number }): Promise<DeadLetter[]>;
  /** Puts dead letters back on their queue (all, or those in `ids`); returns how many. */
  replay(queue: string, options?: { ids?: readonly string[] }): Promise<number>;
  /** Deletes the queue's dead letters; returns how many. */
  purge(queue: string): Promise<number>;
}

/** A subscriber of an event registered in the broker: a task name and the queue it is consumed from. */
export interface Subscription {
  task: string;
  queue: string;
}

export interface SubscriptionRegistry {
  add(event: string, subscription: Subscription): Promise<void>;
  remove(event: string, subscription: Subscription): Promise<void>;
  list(event: string): Promise<Subscription[]>;
}

/**
 * Fan-out messaging (Celery's fanout exchanges). On Redis: PUBLISH on `/<db>.<exchange>/<routing key>`
 * with kombu's envelope, as kombu does; on AMQP: a fanout/topic exchange; in memory: in-process.
 */
export interface Fanout {
  /** Sends a message to every live subscriber of `exchange` whose binding matches `routingKey`. */
  publish(exchange: string, routingKey: string, message: WireMessage): Promise<void>;
  /**
   * Receives messages published on `exchange` whose routing key matches `bindingKey` (AMQP topic
   * syntax: `#` any words, `*` one word; `''` or `#` everything). Returns an unsubscribe function.
   */
  subscribe(
    exchange: string,
    bindingKey: string,
    onMessage: (message: WireMessage, routingKey: string) => void,
    options?: {
      /** A worker's node name, for brokers that name a mailbox queue after it (`<node>.celery.pidbox` on AMQP). */
      node?: string;
    },
  ): Promise<() => Promise<void>>;
}

/** Revoked task ids with an expiry (Celery keeps them in worker memory only; we keep them in the broker). */
export interface RevocationStore {
  /** Records ids as revoked until `expiresAt` (epoch ms). */
  add(ids: readonly string[], expiresAt: number): Promise<void>;
  /** Ids revoked and not yet expired. */
  list(): Promise<string[]>;
}

/** Builds a transport from a parsed URL. Adapters register one per scheme. */
export type TransportFactory = (url: URL, options: TransportOptions) => Transport;

export interface TransportOptions {
  /** Logger for connection-level events; credentials are already redacted from URLs passed here. */
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Adapter-specific options from config (`brokerOptions`). */
  options?: Record<string, unknown>;
}

/** Checks a prefetch value (`consume` options, `Consumer.setPrefetch`): every adapter refuses the same way. */
export function checkPrefetch(prefetch: number): void {
  if (!Number.isInteger(prefetch) || prefetch < 1) {
    throw new ConfigError('prefetch', `expected an integer ≥ 1, got ${prefetch}`);
  }
}
