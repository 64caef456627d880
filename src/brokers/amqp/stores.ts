/**
 * Dead letters and event subscriptions on RabbitMQ, kept in plain durable queues.
 *
 * AMQP 0-9-1 cannot browse a queue, so listing reads it on a throwaway channel with `basic.get`
 * (no ack) and then closes the channel: RabbitMQ puts every message back at its place. While a
 * listing runs (one round trip per message) the messages it holds are invisible to another
 * listing, which may then see fewer: dead-letter listing is an operator's tool, and subscription
 * lists are read by publishers of events, so a subscription registered by another service may be
 * missed by an event published during a concurrent listing. Replay acks what it re-published and
 * lets the rest go back.
 */
import type { Channel, SyncMessage } from 'rabbitmq-client';
import { ConnectionError } from '../../errors.js';
import type { DeadLetter, DeadLetterStore, Subscription, SubscriptionRegistry } from '../transport.js';
import {
  bodyText,
  cleanHeaders,
  H_DEAD_AT,
  H_DEAD_ID,
  H_REASON,
  type IncomingFrame,
  rawEnvelope,
  toWireMessage,
} from './frames.js';
import { ackQuietly, deadQueue, EVENTS_EXCHANGE, SUBSCRIPTIONS_PREFIX } from './topology.js';
import type { AmqpTransport } from './transport.js';

/** Reads up to `limit` ready messages of `queue` without acking; `fn` decides, then the channel closes. */
async function browse<T>(
  transport: AmqpTransport,
  queue: string,
  limit: number,
  fn: (ch: Channel, messages: SyncMessage[]) => Promise<T>,
): Promise<T | null> {
  const count = await transport.topology.messageCount(queue);
  if (count === null) return null;
  let ch: Channel;
  try {
    ch = await transport.conn().acquire();
  } catch (err) {
    throw new ConnectionError(`could not open an AMQP channel: ${String(err)}`, { cause: err });
  }
  try {
    const messages: SyncMessage[] = [];
    while (messages.length < Math.min(limit, count)) {
      const m = await ch.basicGet({ queue, noAck: false });
      if (!m) break;
      messages.push(m);
    }
    return await fn(ch, messages);
  } finally {
    await ch.close().catch(() => {});
  }
}

function header(m: IncomingFrame, name: string): unknown {
  return m.headers?.[name];
}

function toDeadLetter(queue: string, m: SyncMessage): DeadLetter {
  const frame = m as IncomingFrame;
  const firstDeath = header(frame, 'x-first-death-reason');
  const reason =
    header(frame, H_REASON) ?? (firstDeath !== undefined ? `broker: ${String(firstDeath)}` : 'unknown');
  const at = Number(header(frame, H_DEAD_AT) ?? 0);
  const id = header(frame, H_DEAD_ID);
  let message = null;
  try {
    message = toWireMessage(frame);
  } catch {
    message = null;
  }
  return {
    id: typeof id === 'string' ? id : `tag-${m.deliveryTag}`,
    queue,
    reason: String(reason),
    at: Number.isFinite(at) ? at : 0,
    message,
    ...(message === null ? { raw: bodyText(m.body) } : {}),
  };
}

export class AmqpDeadLetters implements DeadLetterStore {
  constructor(private readonly transport: AmqpTransport) {}

  async list(queue: string, options: { limit?: number } = {}): Promise<DeadLetter[]> {
    this.transport.conn();
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    return (
      (await browse(this.transport, deadQueue(queue), limit, async (_ch, ms) =>
        ms.map((m) => toDeadLetter(queue, m)),
      )) ?? []
    );
  }

  async replay(queue: string, options: { ids?: readonly string[] } = {}): Promise<number> {
    this.transport.conn();
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const n = await browse(this.transport, deadQueue(queue), Number.POSITIVE_INFINITY, async (ch, ms) => {
      const chosen = ms.filter((m) => !wanted || wanted.has(toDeadLetter(queue, m).id));
      if (chosen.length === 0) return 0;
      await this.transport.topology.taskQueue(queue);
      // A replayed message starts afresh: no reason, no delivery count.
      await this.transport.publishRaw(
        chosen.map((m) => rawEnvelope(m as IncomingFrame, '', queue, cleanHeaders(m as IncomingFrame))),
      );
      for (const m of chosen) ackQuietly(ch, m.deliveryTag);
      return chosen.length;
    });
    return n ?? 0;
  }

  async purge(queue: string): Promise<number> {
    return this.transport.purge(deadQueue(queue));
  }
}

function parseSubscription(m: SyncMessage): Subscription | null {
  try {
    const v = JSON.parse(bodyText(m.body)) as { task?: unknown; queue?: unknown };
    return typeof v.task === 'string' && typeof v.queue === 'string'
      ? { task: v.task, queue: v.queue }
      : null;
  } catch {
    return null;
  }
}

const same = (a: Subscription, b: Subscription): boolean => a.task === b.task && a.queue === b.queue;

/**
 * Subscriptions registered in the broker: each is one message `{"task","queue"}` in the durable
 * queue `celeriac.subscriptions.<event>` (so `list(event)` works for any publisher), and its queue
 * is bound to the topic exchange `celeriac.events` with the event name (so a publisher that only
 * knows the exchange reaches it too).
 */
export class AmqpSubscriptions implements SubscriptionRegistry {
  constructor(private readonly transport: AmqpTransport) {}

  async add(event: string, subscription: Subscription): Promise<void> {
    const t = this.transport;
    t.conn();
    await t.topology.registryQueue(event);
    await t.topology.taskQueue(subscription.queue);
    await t.topology.eventsExchange();
    await t.topology.run((ch) =>
      ch.queueBind({ queue: subscription.queue, exchange: EVENTS_EXCHANGE, routingKey: event }),
    );
    if ((await this.list(event)).some((s) => same(s, subscription))) return;
    const body = JSON.stringify({ task: subscription.task, queue: subscription.queue });
    await t.publishRaw([
      {
        envelope: {
          exchange: '',
          routingKey: `${SUBSCRIPTIONS_PREFIX}${event}`,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          headers: {},
          deliveryMode: 2,
          priority: 0,
          timestamp: undefined,
        },
        body: Buffer.from(body, 'utf8'),
      },
    ]);
  }

  async remove(event: string, subscription: Subscription): Promise<void> {
    const t = this.transport;
    t.conn();
    const left = await browse(
      t,
      `${SUBSCRIPTIONS_PREFIX}${event}`,
      Number.POSITIVE_INFINITY,
      async (ch, ms) => {
        const rest: Subscription[] = [];
        for (const m of ms) {
          const s = parseSubscription(m);
          if (s === null || same(s, subscription)) ackQuietly(ch, m.deliveryTag);
          else rest.push(s);
        }
        return rest;
      },
    );
    if (left && !left.some((s) => s.queue === subscription.queue)) {
      await t.topology
        .run((ch) =>
          ch.queueUnbind({ queue: subscription.queue, exchange: EVENTS_EXCHANGE, routingKey: event }),
        )
        .catch(() => {});
    }
  }

  async list(event: string): Promise<Subscription[]> {
    this.transport.conn();
    const found =
      (await browse(
        this.transport,
        `${SUBSCRIPTIONS_PREFIX}${event}`,
        Number.POSITIVE_INFINITY,
        async (_ch, ms) => ms.map(parseSubscription).filter((s): s is Subscription => s !== null),
      )) ?? [];
    const out: Subscription[] = [];
    for (const s of found) if (!out.some((o) => same(o, s))) out.push(s);
    return out;
  }
}
