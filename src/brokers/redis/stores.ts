import type { DeadLetter, DeadLetterStore, Subscription, SubscriptionRegistry } from '../transport.js';
import { decodeEnvelope } from './envelope.js';
import { SEP } from './keys.js';
import type { RedisTransport } from './transport.js';

interface Record_ {
  id: string;
  reason: string;
  at: number;
  step: string;
  raw: string;
}

/**
 * Dead letters of a queue: a list of JSON records `{"id", "reason", "at", "step", "raw"}`, oldest
 * first (`celeriac.dead.<q>`, or `{q}.dead` on Cluster). `raw` is the envelope exactly as it was
 * received, so a replay puts back the very message (same delivery tag, same bytes).
 */
export class RedisDeadLetters implements DeadLetterStore {
  constructor(private readonly t: RedisTransport) {}

  async list(queue: string, options?: { limit?: number }): Promise<DeadLetter[]> {
    const limit = options?.limit;
    const records = await this.t
      .redis()
      .lrange(this.t.keys.dead(queue), 0, limit === undefined ? -1 : Math.max(0, limit - 1));
    const out: DeadLetter[] = [];
    for (const text of records) {
      let r: Record_;
      try {
        r = JSON.parse(text) as Record_;
      } catch {
        continue;
      }
      let message = null;
      try {
        message = decodeEnvelope(r.raw).message;
      } catch {
        // undecodable: keep raw
      }
      out.push(
        message
          ? { id: r.id, queue, reason: r.reason, at: r.at, message }
          : { id: r.id, queue, reason: r.reason, at: r.at, message, raw: r.raw },
      );
    }
    return out;
  }

  async replay(queue: string, options?: { ids?: readonly string[] }): Promise<number> {
    if (options?.ids && options.ids.length === 0) return 0;
    const k = this.t.keys;
    return this.t
      .redis()
      .celeriacReplayDead(6, k.dead(queue), ...k.lists(queue), k.wake(queue), ...(options?.ids ?? []));
  }

  async purge(queue: string): Promise<number> {
    const key = this.t.keys.dead(queue);
    const reply = await this.t.redis().multi().llen(key).del(key).exec();
    const first = reply?.[0];
    if (!first || first[0]) throw first?.[0] ?? new Error('purge of dead letters failed');
    return Number(first[1]);
  }
}

/**
 * Subscribers of an event registered in Redis by any service: a set per event
 * (`celeriac.subscriptions.<event>`), members `task\x06\x16queue` (kombu's separator).
 */
export class RedisSubscriptions implements SubscriptionRegistry {
  constructor(private readonly t: RedisTransport) {}

  async add(event: string, s: Subscription): Promise<void> {
    await this.t.redis().sadd(this.t.keys.subscriptions(event), `${s.task}${SEP}${s.queue}`);
  }

  async remove(event: string, s: Subscription): Promise<void> {
    await this.t.redis().srem(this.t.keys.subscriptions(event), `${s.task}${SEP}${s.queue}`);
  }

  async list(event: string): Promise<Subscription[]> {
    const members = await this.t.redis().smembers(this.t.keys.subscriptions(event));
    return members
      .map((m) => m.split(SEP))
      .filter((p): p is [string, string] => p.length === 2)
      .map(([task, queue]) => ({ task, queue }))
      .sort((a, b) => (a.task === b.task ? a.queue.localeCompare(b.queue) : a.task.localeCompare(b.task)));
  }
}
