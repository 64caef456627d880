/**
 * Fan-out on RabbitMQ: Celery's own exchanges and queues (PROTOCOL.md §6–§8, fixtures
 * `amqp-pidbox.json`, `amqp-events.json`), so Python Celery and Celeriac share remote control and
 * monitoring events over AMQP.
 *
 * | exchange given to the port | declared as | a subscription's queue |
 * |---|---|---|
 * | `reply.<ns>.pidbox` (pidbox replies) | direct, non-durable | `<binding key>.reply.<ns>.pidbox`, non-durable, auto-delete, `x-expires` 10000, `x-message-ttl` 300000, bound with the binding key (the client oid) |
 * | `<ns>.pidbox` (`celery.pidbox`, requests) | fanout, non-durable | `<node>.<ns>.pidbox` (node: `options.queue`, else `celeriac.<uuid>`), same arguments, bound with `''` |
 * | anything else (`celeryev`) | topic, durable | `<exchange>.<uuid>` (`celeryev.<uuid>`), non-durable, auto-delete, `x-message-ttl` 5000, `x-expires` 60000, bound with the binding key (`''` → `#`) |
 *
 * Messages are published as Celery publishes them: the raw JSON body (no base64), content type
 * and encoding, application headers, `delivery_mode` from the message (1 for events and replies, 2
 * for requests), not mandatory and without publisher confirms (a fan-out message nobody listens to
 * is dropped, as kombu's). Subscribers consume with no-ack, as Celery's pidbox and event receivers.
 *
 * Reconnects: each subscription is a rabbitmq-client `Consumer` on the transport's connection,
 * which re-declares its exchange, queue and binding and consumes again on a new channel whenever the
 * channel or connection is lost or the server cancels it (queue deleted, `x-expires` passed during an
 * outage). At-most-once: what is published while a subscriber is away is lost, unless its queue
 * outlived the outage (`x-expires`) and kept it.
 *
 * Queue names are unique per subscription within a process: two subscriptions of the same reply
 * oid (two apps of one process share `threadOid()`) get two queues bound with the same key, so each
 * receives every reply, as the port promises (one shared queue would split them between its
 * consumers).
 */
import { randomUUID } from 'node:crypto';
import type { AsyncMessage, Connection, Consumer as RabbitConsumer } from 'rabbitmq-client';
import { ConnectionError } from '../../errors.js';
import type { WireMessage } from '../../messages/types.js';
import type { Fanout } from '../transport.js';
import { type IncomingFrame, toEnvelope, toWireMessage } from './frames.js';
import { ChannelSlot } from './topology.js';
import type { AmqpTransport } from './transport.js';

type OnMessage = (message: WireMessage, routingKey: string) => void;

/** kombu's pidbox queue arguments (worker mailbox and client reply queues). */
export const PIDBOX_QUEUE_ARGS = { 'x-expires': 10_000, 'x-message-ttl': 300_000 } as const;
/** Celery's event receiver queue arguments (`celeryev.<uuid>`). */
export const EVENT_QUEUE_ARGS = { 'x-message-ttl': 5_000, 'x-expires': 60_000 } as const;

export type ExchangeKind = 'direct' | 'fanout' | 'topic';

/**
 * How Celery declares an exchange given to the fan-out port: `reply.<ns>.pidbox` direct (the same
 * rule as the Redis fan-out's `isDirectExchange`), `<ns>.pidbox` fanout, both non-durable; every
 * other one (the events exchange `celeryev`) topic and durable.
 */
export function exchangeKind(exchange: string): { type: ExchangeKind; durable: boolean } {
  if (/^reply\..+\.pidbox$/.test(exchange)) return { type: 'direct', durable: false };
  if (/\.pidbox$/.test(exchange)) return { type: 'fanout', durable: false };
  return { type: 'topic', durable: true };
}

/** Queue names in use by subscriptions of this process, per broker (see the module doc). */
const inUse = new Set<string>();

/** Options of an AMQP subscription beyond the port's. */
export interface AmqpSubscribeOptions {
  /** The node part of a pidbox mailbox queue (`<node>.celery.pidbox`), e.g. the worker's node name. */
  node?: string;
}

/**
 * The fan-out port of the AMQP transport: publishes on its own channel of the transport's connection
 * and subscribes with one self-recovering consumer per subscription (see the module doc).
 *
 * @example
 * const off = await transport.fanout.subscribe('celeryev', '#', (m, rk) => console.log(rk, m.body));
 * await transport.fanout.publish('celery.pidbox', '', request);
 * await off();
 */
export class AmqpFanout implements Fanout {
  private readonly slot: ChannelSlot;
  /** Exchanges declared on the current connection (cleared when it reconnects). */
  private readonly declared = new Map<string, Promise<void>>();
  private readonly consumers = new Set<RabbitConsumer>();
  private watched: Connection | undefined;

  constructor(private readonly t: AmqpTransport) {
    this.slot = new ChannelSlot(() => this.conn());
  }

  /** The transport's connection; a reconnect makes every exchange be declared again before use. */
  private conn(): Connection {
    const conn = this.t.conn();
    if (this.watched !== conn) {
      this.watched = conn;
      conn.on('connection', () => this.declared.clear());
    }
    return conn;
  }

  private declareExchange(exchange: string): Promise<void> {
    let p = this.declared.get(exchange);
    if (!p) {
      const { type, durable } = exchangeKind(exchange);
      p = this.slot.get().then(async (ch) => {
        await ch.exchangeDeclare({ exchange, type, durable });
      });
      this.declared.set(exchange, p);
      p.catch(() => this.declared.delete(exchange));
    }
    return p;
  }

  async publish(exchange: string, routingKey: string, message: WireMessage): Promise<void> {
    this.conn();
    const { envelope, body } = toEnvelope(message, exchange, routingKey);
    let lastError: unknown;
    // A channel closed under us (a lost connection, an exchange deleted → 404) is replaced once.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.declareExchange(exchange);
        const ch = await this.slot.get();
        await ch.basicPublish(envelope, body);
        return;
      } catch (err) {
        lastError = err;
        this.declared.delete(exchange);
      }
    }
    throw new ConnectionError(`could not publish on the AMQP exchange '${exchange}': ${String(lastError)}`, {
      cause: lastError,
    });
  }

  async subscribe(
    exchange: string,
    bindingKey: string,
    onMessage: OnMessage,
    options: AmqpSubscribeOptions = {},
  ): Promise<() => Promise<void>> {
    const conn = this.conn();
    const { type, durable } = exchangeKind(exchange);
    const scope = `${this.t.label}|`;
    let queue: string;
    let binding: string;
    let args: Record<string, number>;
    if (type === 'direct') {
      queue = unique(scope, `${bindingKey}.${exchange}`, () => `${bindingKey}.${shortId()}.${exchange}`);
      binding = bindingKey;
      args = { ...PIDBOX_QUEUE_ARGS };
    } else if (type === 'fanout') {
      queue = unique(
        scope,
        `${options.node ?? `celeriac.${randomUUID()}`}.${exchange}`,
        () => `${options.node ?? 'celeriac'}.${randomUUID()}.${exchange}`,
      );
      binding = bindingKey;
      args = { ...PIDBOX_QUEUE_ARGS };
    } else {
      queue = unique(scope, `${exchange}.${randomUUID()}`, () => `${exchange}.${randomUUID()}`);
      binding = bindingKey === '' ? '#' : bindingKey;
      args = { ...EVENT_QUEUE_ARGS };
    }
    const deliver = (msg: AsyncMessage): void => {
      let message: WireMessage;
      try {
        message = toWireMessage(msg as IncomingFrame);
      } catch (err) {
        this.t.log('warn', 'amqp fanout: undecodable message ignored', { queue, error: String(err) });
        return;
      }
      try {
        onMessage(message, msg.routingKey);
      } catch (err) {
        this.t.log('error', 'amqp fanout: subscriber threw', { queue, error: String(err) });
      }
    };
    const consumer = conn.createConsumer(
      {
        queue,
        noAck: true,
        queueOptions: { durable: false, autoDelete: true, exclusive: false, arguments: args },
        exchanges: [{ exchange, type, durable }],
        queueBindings: [{ queue, exchange, routingKey: binding }],
      },
      deliver,
    );
    this.consumers.add(consumer);
    inUse.add(scope + queue);
    let pending: ((err: unknown) => void) | undefined;
    consumer.on('error', (err: unknown) => {
      if (pending) pending(err);
      else
        this.t.log('warn', 'amqp fanout: subscription interrupted, re-subscribing', {
          queue,
          error: String((err as Error)?.message ?? err),
        });
    });
    const release = async (): Promise<void> => {
      this.consumers.delete(consumer);
      inUse.delete(scope + queue);
      await consumer.close().catch(() => {});
    };
    try {
      await new Promise<void>((resolve, reject) => {
        pending = reject;
        consumer.once('ready', () => resolve());
      });
    } catch (err) {
      await release();
      throw new ConnectionError(`could not subscribe to the AMQP exchange '${exchange}': ${String(err)}`, {
        cause: err,
      });
    } finally {
      pending = undefined;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      await release();
    };
  }

  /** Stops every subscription and the publishing channel (before the transport closes its connection). */
  async close(): Promise<void> {
    const consumers = [...this.consumers];
    this.consumers.clear();
    await Promise.all(consumers.map((c) => c.close().catch(() => {})));
    await this.slot.close();
  }
}

/** `preferred`, unless a subscription of this process already uses it; then `fallback()`. */
function unique(scope: string, preferred: string, fallback: () => string): string {
  return inUse.has(scope + preferred) ? fallback() : preferred;
}

function shortId(): string {
  return randomUUID().slice(0, 8);
}
