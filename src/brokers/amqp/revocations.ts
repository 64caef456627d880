/**
 * Revoked task ids on RabbitMQ, which has no key-value store: the durable queue `celeriac.revoked`
 * (no arguments) holds one persistent message per `add()`, body `{"ids": [...], "expires_at": <epoch
 * ms>}`, with a per-message `expiration` of the time left (so RabbitMQ drops it once it reaches the
 * head of the queue after expiring; revokes mostly share Celery's 3 h expiry, so they expire in
 * order).
 *
 * `list()` reads every message with `basic.get` (no ack) on a throwaway channel and closes it, so
 * RabbitMQ puts them back in place; expired or unreadable ones are acked (removed) on the way.
 * AMQP 0-9-1 cannot browse, and a message held by one reader is invisible to another, so every
 * reader holds the lock `celeriac.revoked.lock` (an exclusive, auto-delete queue: RabbitMQ refuses a
 * second declarer and deletes it if its holder dies; readers sharing a connection queue up in
 * process first, since an exclusive queue belongs to its connection) and waits until what it held
 * is back, as the dead-letter and subscription stores do (`stores.ts`). Readers are serialised across the fleet
 * (each a few round trips plus one per live revoke; workers re-read every `revocationRefresh`).
 * `add()` needs no lock: a message published while a reader holds the others joins the queue's tail
 * and is seen by the next read.
 *
 * Celeriac's own: Python workers keep revokes in memory only and never read this queue.
 *
 * @example
 * await transport.revocations.add([id], Date.now() + 3 * 3600_000);
 * await transport.revocations.list(); // [id]
 */
import type { Channel, SyncMessage } from 'rabbitmq-client';
import { ConnectionError } from '../../errors.js';
import type { RevocationStore } from '../transport.js';
import { bodyText } from './frames.js';
import { ackQuietly } from './topology.js';
import type { AmqpTransport } from './transport.js';

export const REVOKED_QUEUE = 'celeriac.revoked';
/** Largest per-message TTL we set (RabbitMQ's limit is 2^32-1 ms); longer revokes expire by their body. */
const MAX_TTL_MS = 2 ** 31 - 1;
/** How long a reader waits for the lock before it gives up. */
const LOCK_TIMEOUT_MS = 10_000;

interface Entry {
  ids: string[];
  expiresAt: number;
}

function parse(m: SyncMessage): Entry | null {
  try {
    const v = JSON.parse(bodyText(m.body)) as { ids?: unknown; expires_at?: unknown };
    if (!Array.isArray(v.ids) || typeof v.expires_at !== 'number') return null;
    return { ids: v.ids.filter((id): id is string => typeof id === 'string'), expiresAt: v.expires_at };
  } catch {
    return null;
  }
}

export class AmqpRevocations implements RevocationStore {
  /** Readers of this transport, one after the other (the broker lock only excludes other connections). */
  private readers: Promise<unknown> = Promise.resolve();

  constructor(private readonly t: AmqpTransport) {}

  async add(ids: readonly string[], expiresAt: number): Promise<void> {
    if (!ids.length) return;
    const left = Math.round(expiresAt - Date.now());
    if (left < 1) return; // already expired: nothing to keep
    await this.declare();
    const body = JSON.stringify({ ids: [...ids], expires_at: Math.round(expiresAt) });
    await this.t.publishRaw([
      {
        envelope: {
          exchange: '',
          routingKey: REVOKED_QUEUE,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          headers: {},
          deliveryMode: 2,
          priority: 0,
          ...(left <= MAX_TTL_MS ? { expiration: String(left) } : {}),
          timestamp: undefined,
        },
        body: Buffer.from(body, 'utf8'),
      },
    ]);
  }

  async list(): Promise<string[]> {
    this.t.conn();
    if ((await this.t.topology.messageCount(REVOKED_QUEUE)) === null) return [];
    return this.locked(async () => {
      const now = Date.now();
      const ids = new Set<string>();
      const ch = await this.channel();
      let read = 0;
      let acked = 0;
      try {
        for (;;) {
          const m = await ch.basicGet({ queue: REVOKED_QUEUE, noAck: false });
          if (!m) break;
          read += 1;
          const entry = parse(m);
          if (entry === null || entry.expiresAt <= now) {
            if (ackQuietly(ch, m.deliveryTag)) acked += 1;
            continue;
          }
          for (const id of entry.ids) ids.add(id);
        }
      } finally {
        // Closing the channel gives every unacked message back, in place.
        await ch.close().catch(() => {});
      }
      const expected = read - acked;
      const until = Date.now() + 2000;
      for (;;) {
        const n = (await this.t.topology.messageCount(REVOKED_QUEUE)) ?? 0;
        if (n >= expected || Date.now() > until) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      return [...ids];
    });
  }

  /** The queue, durable and without arguments (the transport's re-declare of a returned message agrees). */
  private declare(): Promise<void> {
    return this.t.topology.run(async (ch) => {
      await ch.queueDeclare({ queue: REVOKED_QUEUE, durable: true });
    });
  }

  private async channel(): Promise<Channel> {
    try {
      return await this.t.conn().acquire();
    } catch (err) {
      throw new ConnectionError(`could not open an AMQP channel: ${String(err)}`, { cause: err });
    }
  }

  /**
   * Runs `fn` holding `celeriac.revoked.lock` (see the module doc). An exclusive queue belongs to its
   * connection, so a second reader on the same connection would declare it again without waiting:
   * readers of this transport queue up here first.
   */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.readers.then(
      () => this.brokerLocked(fn),
      () => this.brokerLocked(fn),
    );
    this.readers = run.catch(() => {});
    return run;
  }

  private async brokerLocked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = `${REVOKED_QUEUE}.lock`;
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (;;) {
      const ch = await this.channel();
      try {
        await ch.queueDeclare({ queue: lock, exclusive: true, autoDelete: true, durable: false });
      } catch (err) {
        await ch.close().catch(() => {});
        if ((err as { code?: string }).code !== 'RESOURCE_LOCKED' || Date.now() > deadline)
          throw new ConnectionError(`could not lock '${REVOKED_QUEUE}' for reading: ${String(err)}`, {
            cause: err,
          });
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
}
