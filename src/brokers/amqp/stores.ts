/**
 * Dead letters and event subscriptions on RabbitMQ, kept in plain durable queues.
 *
 * AMQP 0-9-1 cannot browse a queue, so listing reads it on a throwaway channel with `basic.get`
 * (no ack) and then closes the channel: RabbitMQ puts every message back at its place. So that a
 * concurrent listing never sees messages missing (held by another listing, or not yet put back),
 * every listing, replay and removal holds the queue's lock (`<queue>.lock`, an exclusive queue, see
 * `withLock`) and waits until what it held is back. Listings of one queue are therefore serialised
 * across the fleet (a few round trips each). Replay acks what it re-published and lets the rest go
 * back; removal acks the removed subscriptions.
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

/** How long a listing waits for the lock of a queue before it gives up. */
const LOCK_TIMEOUT_MS = 10_000;

/**
 * Runs `fn` while holding the lock of `queue`: an exclusive, auto-delete queue `<queue>.lock`
 * declared by this connection (RabbitMQ refuses a second declarer with 405 RESOURCE_LOCKED, and
 * deletes the lock if its holder's connection dies).
 */
/** Holders of each queue's lock in this process, per transport, one after the other. */
const turns = new WeakMap<AmqpTransport, Map<string, Promise<unknown>>>();

/**
 * An exclusive queue belongs to its connection: a second holder on the same connection would
 * declare it again without waiting. So holders on one transport take turns here first.
 */
function withLock<T>(transport: AmqpTransport, queue: string, fn: () => Promise<T>): Promise<T> {
  let byQueue = turns.get(transport);
  if (!byQueue) {
    byQueue = new Map();
    turns.set(transport, byQueue);
  }
  const previous = byQueue.get(queue) ?? Promise.resolve();
  const run = previous.then(
    () => withBrokerLock(transport, queue, fn),
    () => withBrokerLock(transport, queue, fn),
  );
  const settled = run.catch(() => {});
  byQueue.set(queue, settled);
  void settled.then(() => {
    if (byQueue.get(queue) === settled) byQueue.delete(queue);
  });
  return run;
}

async function withBrokerLock<T>(transport: AmqpTransport, queue: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${queue}.lock`;
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    const ch = await acquire(transport);
    try {
      await ch.queueDeclare({ queue: lock, exclusive: true, autoDelete: true, durable: false });
    } catch (err) {
      await ch.close().catch(() => {});
      if ((err as { code?: string }).code !== 'RESOURCE_LOCKED' || Date.now() > deadline)
        throw new ConnectionError(`could not lock '${queue}' for reading: ${String(err)}`, { cause: err });
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      continue;
    }
    try {
      return await fn();
    } finally {
      await ch.queueDelete({ queue: lock }).catch(() => {});
      await ch.close().catch(() => {});
    }
  }
}

async function acquire(transport: AmqpTransport): Promise<Channel> {
  try {
    return await transport.conn().acquire();
  } catch (err) {
    throw new ConnectionError(`could not open an AMQP channel: ${String(err)}`, { cause: err });
  }
}

/**
 * Reads up to `limit` ready messages of `queue` without acking, lets `fn` ack some, then closes the
 * channel so that RabbitMQ puts the rest back in place, and waits until they are back (the requeue
 * happens after the close returns), all under the queue's lock: a listing never sees another's
 * messages missing. Returns null when the queue does not exist.
 */
async function browse<T>(
  transport: AmqpTransport,
  queue: string,
  limit: number,
  fn: (ch: Channel, messages: SyncMessage[]) => Promise<{ value: T; acked: number }>,
): Promise<T | null> {
  if ((await transport.topology.messageCount(queue)) === null) return null;
  return withLock(transport, queue, async () => {
    const ch = await acquire(transport);
    let result: { value: T; acked: number };
    let read = 0;
    try {
      const messages: SyncMessage[] = [];
      while (messages.length < limit) {
        const m = await ch.basicGet({ queue, noAck: false });
        if (!m) break;
        messages.push(m);
      }
      read = messages.length;
      result = await fn(ch, messages);
    } finally {
      await ch.close().catch(() => {});
    }
    const expected = read - result.acked;
    const until = Date.now() + 2000;
    for (;;) {
      const n = (await transport.topology.messageCount(queue)) ?? 0;
      if (n >= expected || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    return result.value;
  });
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
      (await browse(this.transport, deadQueue(queue), limit, async (_ch, ms) => ({
        value: ms.map((m) => toDeadLetter(queue, m)),
        acked: 0,
      }))) ?? []
    );
  }

  async replay(queue: string, options: { ids?: readonly string[] } = {}): Promise<number> {
    this.transport.conn();
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const n = await browse(this.transport, deadQueue(queue), Number.POSITIVE_INFINITY, async (ch, ms) => {
      const chosen = ms.filter((m) => !wanted || wanted.has(toDeadLetter(queue, m).id));
      if (chosen.length === 0) return { value: 0, acked: 0 };
      await this.transport.topology.taskQueue(queue);
      // A replayed message starts afresh: no reason, no delivery count.
      await this.transport.publishRaw(
        chosen.map((m) => rawEnvelope(m as IncomingFrame, '', queue, cleanHeaders(m as IncomingFrame))),
      );
      for (const m of chosen) ackQuietly(ch, m.deliveryTag);
      return { value: chosen.length, acked: chosen.length };
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
        return { value: rest, acked: ms.length - rest.length };
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
        async (_ch, ms) => ({
          value: ms.map(parseSubscription).filter((s): s is Subscription => s !== null),
          acked: 0,
        }),
      )) ?? [];
    const out: Subscription[] = [];
    for (const s of found) if (!out.some((o) => same(o, s))) out.push(s);
    return out;
  }
}
