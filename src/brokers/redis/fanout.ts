import { randomUUID } from 'node:crypto';
import { fromKombuEnvelope, toKombuEnvelope, toKombuPriority } from '../../messages/kombu.js';
import type { WireMessage } from '../../messages/types.js';
import { topicMatches } from '../memory/fanout.js';
import type { Fanout } from '../transport.js';
import { ensureConnected, type RedisClient } from './clients.js';
import { SEP, stepOf } from './keys.js';
import type { RedisTransport } from './transport.js';

type OnMessage = (message: WireMessage, routingKey: string) => void;

interface Sub {
  exchange: string;
  binding: string;
  onMessage: OnMessage;
}

/**
 * kombu's pidbox reply exchanges (`reply.<namespace>.pidbox`) are direct; every other exchange
 * given to the fan-out port is a fanout exchange, as kombu's Redis transport treats `celery.pidbox`
 * and `celeryev`.
 */
export function isDirectExchange(exchange: string): boolean {
  return /^reply\..+\.pidbox$/.test(exchange);
}

/** Redis glob special characters, escaped so a name matches only itself. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Fan-out on Redis, as kombu's Redis transport does it (PROTOCOL.md 4.4), so Python Celery and
 * Celeriac share remote control and monitoring events:
 *
 * - **fanout exchanges** (`celery.pidbox`, `celeryev`): `PUBLISH <p>/<db>.<exchange>/<routing key>`
 *   (or `<p>/<db>.<exchange>` for an empty routing key) with kombu's envelope; subscribers
 *   `PSUBSCRIBE` the binding key with `#` → `*`. `<p>` is `global_keyprefix`, which kombu applies to
 *   channels too. A binding of `''` or `#` subscribes both `/<db>.<exchange>` and
 *   `/<db>.<exchange>/*`, so it receives every routing key (the port's meaning; kombu's `''`
 *   binding only gets the empty key, which is what Celery's pidbox requests use). AMQP topic
 *   semantics are then checked on the routing key. At-most-once: nobody listening, nothing kept.
 * - **direct exchanges** (`reply.celery.pidbox`): routed through kombu's binding set
 *   `<p>_kombu.binding.<exchange>` (members `routing_key\x06\x16\x06\x16queue`) to the queue lists,
 *   LPUSHed like task messages; a routing key with no binding drops the message (kombu 5.2.4 does).
 *   A subscription with binding key `k` declares the queue `k.<exchange>` (kombu's reply queue
 *   `<oid>.reply.celery.pidbox`), reads it with BRPOP, and on unsubscribe removes its binding and
 *   deletes the lists, as kombu's `after_reply_message_received`.
 *
 * Unlike kombu, the worker's own `<node>.celery.pidbox` binding is not written: nothing reads it
 * for a fanout exchange.
 */
export class RedisFanout implements Fanout {
  private subscriber: RedisClient | undefined;
  private readonly patterns = new Map<string, Set<Sub>>();

  constructor(private readonly t: RedisTransport) {}

  /** The channel kombu publishes on: `<p>/<db>.<exchange>[/<routing key>]`. */
  channel(exchange: string, routingKey: string): string {
    const base = `${this.t.keys.prefix}/${this.t.endpoint.db}.${exchange}`;
    return routingKey ? `${base}/${routingKey}` : base;
  }

  /** kombu's binding set of an exchange. */
  bindingKey(exchange: string): string {
    return `${this.t.keys.prefix}_kombu.binding.${exchange}`;
  }

  async publish(exchange: string, routingKey: string, message: WireMessage): Promise<void> {
    const envelope = toKombuEnvelope(message, { exchange, routingKey, deliveryTag: randomUUID() });
    const client = this.t.redis();
    if (!isDirectExchange(exchange)) {
      await client.publish(this.channel(exchange, routingKey), envelope);
      return;
    }
    const members = await client.smembers(this.bindingKey(exchange));
    const queues = new Set<string>();
    for (const member of members) {
      const [key, , queue] = member.split(SEP);
      if (key === routingKey && queue) queues.add(queue);
    }
    if (!queues.size) return;
    const step = stepOf(toKombuPriority(message.priority));
    const pipe = client.pipeline();
    for (const queue of queues) pipe.lpush(this.t.keys.list(queue, step), envelope);
    const results = (await pipe.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  async subscribe(exchange: string, bindingKey: string, onMessage: OnMessage): Promise<() => Promise<void>> {
    if (isDirectExchange(exchange)) return this.subscribeDirect(exchange, bindingKey, onMessage);
    const sub: Sub = { exchange, binding: bindingKey, onMessage };
    const base = escapeGlob(this.channel(exchange, ''));
    const patterns =
      bindingKey === '' || bindingKey === '#'
        ? [base, `${base}/*`]
        : [
            `${base}/${bindingKey
              .split(/([#*])/)
              .map((part) => (part === '#' || part === '*' ? '*' : escapeGlob(part)))
              .join('')}`,
          ];
    const client = await this.subscriberClient();
    const fresh: string[] = [];
    for (const p of patterns) {
      let set = this.patterns.get(p);
      if (!set) {
        set = new Set();
        this.patterns.set(p, set);
        fresh.push(p);
      }
      set.add(sub);
    }
    try {
      if (fresh.length) await client.psubscribe(...fresh);
    } catch (err) {
      await this.drop(sub, patterns);
      throw err;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      await this.drop(sub, patterns);
    };
  }

  private async drop(sub: Sub, patterns: string[]): Promise<void> {
    const gone: string[] = [];
    for (const p of patterns) {
      const set = this.patterns.get(p);
      if (!set) continue;
      set.delete(sub);
      if (set.size === 0) {
        this.patterns.delete(p);
        gone.push(p);
      }
    }
    // The connection stays (subscribers come and go: a worker's mailbox, event receivers); it closes
    // with the transport, so a subscribe racing the last unsubscribe never meets a closing client.
    const client = this.subscriber;
    if (!client) return;
    if (gone.length) await client.punsubscribe(...gone).catch(() => {});
  }

  private async subscriberClient(): Promise<RedisClient> {
    if (this.subscriber) return this.subscriber;
    const client = this.t.blockingClient();
    this.subscriber = client;
    client.on('error', () => {
      // reconnects by itself (and re-subscribes); the transport's health reports the broker
    });
    client.on('pmessage', (pattern: string, channel: string, data: string) =>
      this.deliver(pattern, channel, data),
    );
    // Closed with the transport: its command connection ends only at close().
    this.t.redis().once('end', () => {
      if (this.subscriber === client) this.subscriber = undefined;
      this.patterns.clear();
      client.disconnect();
    });
    await ensureConnected(client);
    return client;
  }

  private deliver(pattern: string, channel: string, data: string): void {
    const subs = this.patterns.get(pattern);
    if (!subs?.size) return;
    for (const sub of subs) {
      const base = this.channel(sub.exchange, '');
      if (channel !== base && !channel.startsWith(`${base}/`)) continue;
      const routingKey = channel === base ? '' : channel.slice(base.length + 1);
      if (!topicMatches(sub.binding, routingKey)) continue;
      let message: WireMessage;
      try {
        message = fromKombuEnvelope(data).wire;
      } catch (err) {
        this.t.log('warn', 'redis fanout: undecodable message ignored', { channel, error: String(err) });
        return;
      }
      try {
        sub.onMessage(message, routingKey);
      } catch (err) {
        this.t.log('error', 'redis fanout: subscriber threw', { channel, error: String(err) });
      }
    }
  }

  private async subscribeDirect(
    exchange: string,
    bindingKey: string,
    onMessage: OnMessage,
  ): Promise<() => Promise<void>> {
    const queue = `${bindingKey}.${exchange}`;
    const member = `${bindingKey}${SEP}${SEP}${queue}`;
    const lists = this.t.keys.lists(queue);
    await this.t.redis().sadd(this.bindingKey(exchange), member);
    const reader = this.t.blockingClient();
    reader.on('error', () => {});
    await ensureConnected(reader);
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        let popped: [string, string] | null;
        try {
          popped = await reader.brpop(...lists, 1);
        } catch (err) {
          if (stopped) return;
          this.t.log('warn', 'redis fanout: reading a reply queue failed', { queue, error: String(err) });
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        if (!popped) continue;
        let message: WireMessage;
        try {
          message = fromKombuEnvelope(popped[1]).wire;
        } catch (err) {
          this.t.log('warn', 'redis fanout: undecodable message ignored', { queue, error: String(err) });
          continue;
        }
        try {
          onMessage(message, bindingKey);
        } catch (err) {
          this.t.log('error', 'redis fanout: subscriber threw', { queue, error: String(err) });
        }
      }
    })();
    // Closed with the transport too, so a forgotten subscription cannot keep the process alive.
    const onEnd = (): void => {
      stopped = true;
      reader.disconnect();
    };
    this.t.redis().once('end', onEnd);
    return async () => {
      if (stopped) return;
      stopped = true;
      reader.disconnect();
      try {
        this.t.redis().off('end', onEnd);
      } catch {
        // the transport is closing
      }
      await loop;
      try {
        const client = this.t.redis();
        await client
          .multi()
          .srem(this.bindingKey(exchange), member)
          .del(...lists)
          .exec();
      } catch {
        // transport closed: the binding stays, as kombu leaves it when a client dies
      }
    };
  }
}
