import { randomUUID } from 'node:crypto';
import { loads } from '../../messages/json.js';
import { markRedelivered, redeliveredText } from './envelope.js';
import { SEP, stepOf } from './keys.js';
import type { Held, RedisTransport } from './transport.js';

/** kombu's Mutex expiry for `unacked_mutex` (unacked_mutex_expire, 300 s). */
const MUTEX_MS = 300_000;
/** At most this many expired deliveries are restored per pass (kombu restores 10). */
const RESTORE_BATCH = 100;

/**
 * The transport's background work, all of it safe with any number of workers (Celeriac or Python):
 *
 * - **Lease refresh.** Every lease/3, the `unacked_index` score of every delivery still held is set
 *   to `lease end − visibility_timeout` (ZADD XX: a delivery restored meanwhile is not re-added).
 *   kombu restores a tag when its score < now − visibility_timeout, i.e. when the lease has ended, so
 *   no restore, Python's included, hands a running Celeriac task to a second worker.
 * - **Restore.** Every min(lease/2, 10 s), under kombu's `unacked_mutex`, messages whose lease ended
 *   (a Celeriac worker lost, or a Python worker's delivery older than visibility_timeout, exactly
 *   kombu's rule) go back to the front of their queue with kombu's redelivered flags (restore.lua).
 * - **Mover.** Parked messages (defer, notBefore) of the consumed queues are put back when due
 *   (move_due.lua), timed by the next due score, at least once a second.
 */
export class Maintenance {
  private refreshTimer: NodeJS.Timeout | undefined;
  private restoreTimer: NodeJS.Timeout | undefined;
  private readonly movers = new Map<
    string,
    { timer: NodeJS.Timeout | undefined; at: number; running: boolean }
  >();
  private refreshing = false;
  private restoring = false;
  private stopped = false;
  private readonly lockId = randomUUID();

  constructor(private readonly t: RedisTransport) {}

  /** Starts the loops for newly consumed queues. */
  watchQueues(queues: readonly string[]): void {
    if (this.stopped) return;
    const { leaseMs, restoreIntervalMs } = this.t.settings;
    if (!this.refreshTimer) {
      this.refreshTimer = setInterval(() => void this.refresh(), Math.max(100, Math.floor(leaseMs / 3)));
      this.restoreTimer = setInterval(() => void this.restoreExpired(), restoreIntervalMs);
      this.refreshTimer.unref();
      this.restoreTimer.unref();
      void this.restoreExpired();
    }
    for (const q of queues) this.dueAt(q, Date.now());
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.refreshTimer);
    clearInterval(this.restoreTimer);
    for (const m of this.movers.values()) clearTimeout(m.timer);
    this.movers.clear();
  }

  /** Schedules the mover of a consumed queue no later than `at` (epoch ms). */
  dueAt(queue: string, at: number): void {
    if (this.stopped || !this.t.consumedQueues().has(queue)) return;
    let m = this.movers.get(queue);
    if (!m) {
      m = { timer: undefined, at: Number.POSITIVE_INFINITY, running: false };
      this.movers.set(queue, m);
    }
    const when = Math.min(at, Date.now() + 1000);
    if (m.timer && m.at <= when) return;
    clearTimeout(m.timer);
    m.at = when;
    const mover = m;
    m.timer = setTimeout(() => void this.move(queue, mover), Math.max(0, when - Date.now()));
    m.timer.unref();
  }

  private async move(
    queue: string,
    m: { timer: NodeJS.Timeout | undefined; at: number; running: boolean },
  ): Promise<void> {
    m.timer = undefined;
    m.at = Number.POSITIVE_INFINITY;
    if (this.stopped) return;
    if (!this.t.consumedQueues().has(queue)) {
      this.movers.delete(queue);
      return;
    }
    let next = Date.now() + 1000;
    if (!m.running) {
      m.running = true;
      try {
        const k = this.t.keys;
        const [moved, nextScore] = await this.t
          .redis()
          .celeriacMoveDue(6, k.delayed(queue), ...k.lists(queue), k.wake(queue), Date.now(), 500);
        if (moved >= 500) next = Date.now();
        else if (Number(nextScore) >= 0) next = Math.min(next, Number(nextScore));
      } catch (err) {
        this.t.log('debug', 'redis broker: mover failed (will retry)', { queue, error: String(err) });
      } finally {
        m.running = false;
      }
    }
    this.dueAt(queue, next);
  }

  /** Pushes the lease of every held delivery forward. */
  async refresh(): Promise<void> {
    if (this.refreshing || this.t.held.size === 0) return;
    this.refreshing = true;
    try {
      const { leaseMs, visibilityTimeoutS } = this.t.settings;
      const score = ((Date.now() + leaseMs) / 1000 - visibilityTimeoutS).toFixed(3);
      const byGroup = new Map<string, string[]>();
      for (const h of this.t.held.values()) {
        const g = this.t.keys.group(h.delivery.queue);
        const args = byGroup.get(g) ?? [];
        args.push(score, h.kombuTag);
        byGroup.set(g, args);
      }
      const client = this.t.redis();
      await Promise.all(
        [...byGroup].map(([g, args]) => client.zadd(this.t.keys.unackedIndex(g), 'XX', ...args)),
      );
    } catch (err) {
      this.t.log('warn', 'redis broker: lease refresh failed', { error: String(err) });
    } finally {
      this.refreshing = false;
    }
  }

  /** Restores deliveries whose lease ended (kombu's restore_visible, for every consumed key group). */
  async restoreExpired(): Promise<void> {
    if (this.restoring || this.stopped) return;
    this.restoring = true;
    try {
      const groups = new Set([...this.t.consumedQueues()].map((q) => this.t.keys.group(q)));
      for (const g of groups) await this.restoreGroup(g);
    } catch (err) {
      this.t.log('debug', 'redis broker: restore pass failed (will retry)', { error: String(err) });
    } finally {
      this.restoring = false;
    }
  }

  private async restoreGroup(group: string): Promise<void> {
    const client = this.t.redis();
    const k = this.t.keys;
    const ceiling = Date.now() / 1000 - this.t.settings.visibilityTimeoutS;
    // Cheap check before taking the lock.
    const tags = await client.zrangebyscore(k.unackedIndex(group), 0, ceiling, 'LIMIT', 0, RESTORE_BATCH);
    if (tags.length === 0) return;
    const mutex = k.unackedMutex(group);
    const locked = await client.set(mutex, this.lockId, 'PX', MUTEX_MS, 'NX');
    if (locked !== 'OK') return;
    try {
      const values = await client.hmget(k.unacked(group), ...tags);
      let restored = 0;
      for (let i = 0; i < tags.length; i++) {
        const tag = tags[i] as string;
        const value = values[i] ?? null;
        const plan = await this.plan(group, value);
        if (value !== null && plan.targets.length === 0) {
          this.t.log(
            'error',
            'redis broker: cannot restore an unacked message (unreadable, or no queue bound for it); left in place',
            { tag },
          );
          continue;
        }
        const n = await client.celeriacRestore(
          3 + plan.targets.length * 2,
          k.unacked(group),
          k.unackedIndex(group),
          k.deliveries(group),
          ...plan.targets,
          ...plan.wakes,
          tag,
          ceiling.toFixed(3),
          plan.payload,
          plan.targets.length,
          1,
        );
        restored += n;
      }
      if (restored > 0)
        this.t.log('info', 'redis broker: restored messages whose lease ran out', { restored });
    } finally {
      await client.celeriacReleaseMutex(1, mutex, this.lockId).catch(() => 0);
    }
  }

  /**
   * Where an unacked value `[envelope, exchange, routing_key]` goes back to, as kombu's
   * `_do_restore_message` does: the routing key itself for the default exchange, else the queues
   * bound in `_kombu.binding.<exchange>` with that routing key. The priority sub-queue follows the
   * message's priority (kombu uses the base list; any consumer reads both).
   */
  private async plan(
    group: string,
    value: string | null,
  ): Promise<{ targets: string[]; wakes: string[]; payload: string }> {
    const none = { targets: [], wakes: [], payload: '' };
    if (value === null) return none;
    let parsed: unknown;
    try {
      parsed = loads(value);
    } catch {
      return none;
    }
    if (!Array.isArray(parsed)) return none;
    const [m, ex, rk] = parsed as [unknown, unknown, unknown];
    const exchange = typeof ex === 'string' ? ex : '';
    const routingKey = typeof rk === 'string' ? rk : '';
    let payload: string;
    let step = 0;
    if (typeof m === 'string') payload = m;
    else if (typeof m === 'object' && m !== null && !Array.isArray(m)) {
      const env = m as Record<string, unknown>;
      const props = env.properties as Record<string, unknown> | undefined;
      step = stepOf(typeof props?.priority === 'number' ? props.priority : 0);
      payload = markRedelivered(env);
    } else return none;
    let queues: string[];
    if (this.t.keys.cluster) queues = [group];
    else if (exchange === '') queues = routingKey ? [routingKey] : [];
    else {
      const binding = this.t.keys.binding(exchange) as string;
      const members = await this.t.redis().smembers(binding);
      queues = members
        .map((mem) => mem.split(SEP))
        .filter(([key]) => key === routingKey)
        .map(([, , queue]) => queue as string);
    }
    return {
      targets: queues.map((q) => this.t.keys.list(q, step)),
      wakes: queues.map((q) => this.t.keys.wake(q)),
      payload,
    };
  }

  /**
   * Gives held deliveries back at once (close): the front of their queue, marked redelivered and
   * counted as a delivery; with `counted` false (fetched but never handed out), exactly as they were.
   */
  async restoreHeld(held: Held[], counted = true): Promise<void> {
    const client = this.t.redis();
    const k = this.t.keys;
    await Promise.all(
      held.map((h) => {
        const q = h.delivery.queue;
        const payload = counted ? redeliveredText(h.raw) : h.raw;
        return client.celeriacRestore(
          5,
          k.unacked(q),
          k.unackedIndex(q),
          k.deliveries(q),
          k.list(q, h.step),
          k.wake(q),
          h.kombuTag,
          '1e300',
          payload,
          1,
          counted ? 1 : 0,
        );
      }),
    );
  }
}
