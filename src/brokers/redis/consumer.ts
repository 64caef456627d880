import type { Delivery } from '../transport.js';
import type { RedisClient } from './clients.js';
import { decodeEnvelope } from './envelope.js';
import { stepOf } from './keys.js';
import type { RedisTransport } from './transport.js';

/**
 * One `consume()`: a loop that takes messages while it has credit and waits when the queues are empty.
 *
 * Taking is one script (fetch.lua) that pops up to N messages in kombu's order AND records them in
 * `unacked`/`unacked_index` atomically, so there is no instant at which a killed worker holds a
 * message that Redis does not know it holds (BRPOP then HSET, as kombu does, has such a window).
 *
 * Waiting: a blocking BRPOP on the queue lists would pop a message outside the script (that same
 * window), and Redis has no blocking "peek" over several keys. So an idle consumer blocks with BLPOP
 * on the queues' *wake lists*, which Celeriac publishers (with every publish), the mover, restores and the
 * fetch script itself ("pass the baton" when it leaves messages behind) push a token onto; the BLPOP
 * times out after `pollInterval`, after which the consumer looks at its queues anyway, so messages
 * that Python publishers LPUSH (no token) are taken within that interval. Tokens are bounded (below
 * 96 per queue: publishers trim, a consumer that finds its queues empty deletes them) and harmless
 * when stale: a woken consumer that finds nothing waits again.
 */
export class RedisConsumer {
  cancelled = false;
  private prefetch: number;
  /** Fetch at least this many at once while that many credits are not free (ConsumeOptions.batch). */
  private batch: number;
  private unsettled = 0;
  private rotation = 0;
  private creditWaiter: (() => void) | undefined;
  private blockers = new Map<string, { client: RedisClient; pending: Promise<unknown> | undefined }>();
  private loop: Promise<void> | undefined;
  private resolveClosed!: () => void;
  /** Resolves when the loop has stopped for good. */
  readonly closed = new Promise<void>((r) => {
    this.resolveClosed = r;
  });

  constructor(
    private readonly transport: RedisTransport,
    readonly queues: string[],
    private readonly onDelivery: (delivery: Delivery) => void,
    prefetch: number,
    batch = 1,
  ) {
    this.prefetch = prefetch;
    this.batch = batch;
  }

  start(): void {
    this.loop = this.run().finally(() => this.resolveClosed());
  }

  setPrefetch(prefetch: number, batch?: number): void {
    this.prefetch = prefetch;
    if (batch !== undefined) this.batch = batch;
    this.wakeCredit();
  }

  /** A delivery of this consumer was settled: one more credit. */
  settled(): void {
    this.unsettled -= 1;
    this.wakeCredit();
  }

  async cancel(): Promise<void> {
    if (this.cancelled) return this.closed;
    this.cancelled = true;
    this.wakeCredit();
    for (const b of this.blockers.values()) b.client.disconnect();
    await this.loop;
  }

  private wakeCredit(): void {
    const w = this.creditWaiter;
    this.creditWaiter = undefined;
    w?.();
  }

  /**
   * The loop. Up to two fetches are in flight at once, each reserving the credit it asks for, so a
   * busy worker never waits a round trip between batches. When only a little credit came back while
   * deliveries are still out, it yields once (setImmediate) so that the settles of the same moment
   * add up into one larger fetch instead of many one-message fetches.
   */
  private async run(): Promise<void> {
    const { settings, log } = this.transport;
    let failures = 0;
    let yielded = false;
    let empty = false;
    let inflight = 0;
    let reserved = 0;
    while (!this.cancelled) {
      const credit = this.prefetch - this.unsettled - reserved;
      if (credit <= 0 || inflight >= 2) {
        await this.waitCredit();
        continue;
      }
      if (empty) {
        if (inflight > 0) {
          await this.waitCredit();
          continue;
        }
        await this.waitForWork();
        empty = false;
        continue;
      }
      if (failures > 0) {
        await sleep(Math.min(100 * 2 ** Math.min(failures, 5), 2000));
        if (this.cancelled) break;
      }
      // Enough in hand: let the credit add up into one larger fetch.
      if (credit < Math.min(this.batch, settings.fetchBatch, this.prefetch)) {
        await this.waitCredit();
        continue;
      }
      const lowWater = Math.min(settings.fetchBatch, Math.ceil(this.prefetch / 4));
      if (!yielded && this.unsettled > 0 && credit < lowWater) {
        yielded = true;
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      yielded = false;
      const want = Math.min(credit, settings.fetchBatch);
      reserved += want;
      inflight += 1;
      this.fetch(want)
        .then(
          (got) => {
            failures = 0;
            if (got < want) empty = true;
          },
          (err: unknown) => {
            if (this.cancelled) return;
            failures += 1;
            if (failures === 1)
              log('warn', 'redis broker: fetch failed, retrying', {
                error: String(err),
                queues: this.queues,
              });
          },
        )
        .finally(() => {
          reserved -= want;
          inflight -= 1;
          this.wakeCredit();
        });
    }
    while (inflight > 0) await this.waitCredit();
  }

  private waitCredit(): Promise<void> {
    return new Promise<void>((r) => {
      const previous = this.creditWaiter;
      this.creditWaiter = () => {
        previous?.();
        r();
      };
    });
  }

  /**
   * The fetch script's keys and queue names per key group, for each rotation of the queue order
   * (kombu's round-robin cycle, for fairness). Computed once: a fetch runs per batch, or per task
   * on an idle worker.
   */
  private plans: Array<Array<{ group: string; queues: string[]; keys: string[]; names: string[] }>> = [];

  private plan(
    rotation: number,
  ): Array<{ group: string; queues: string[]; keys: string[]; names: string[] }> {
    let plan = this.plans[rotation];
    if (!plan) {
      const keys = this.transport.keys;
      const ordered = [...this.queues.slice(rotation), ...this.queues.slice(0, rotation)];
      const groups = new Map<string, string[]>();
      for (const q of ordered) {
        const g = keys.group(q);
        const list = groups.get(g) ?? [];
        list.push(q);
        groups.set(g, list);
      }
      plan = [...groups].map(([group, queues]) => {
        const k = [keys.unacked(group), keys.unackedIndex(group), keys.deliveries(group)];
        for (const q of queues) k.push(...keys.lists(q), keys.wake(q));
        return { group, queues, keys: k, names: queues.map((q) => JSON.stringify(q)) };
      });
      this.plans[rotation] = plan;
    }
    return plan;
  }

  /** Takes up to `want` messages (one script per key group) and hands them out. */
  private async fetch(want: number): Promise<number> {
    const t = this.transport;
    const client = t.redis();
    const score = ((Date.now() + t.settings.leaseMs) / 1000 - t.settings.visibilityTimeoutS).toFixed(3);
    this.rotation = (this.rotation + 1) % this.queues.length;
    let total = 0;
    for (const { group, queues, keys: k, names } of this.plan(this.rotation)) {
      if (total >= want || this.cancelled) break;
      const acks = t.takeSettles(group);
      const pending = client.celeriacFetch(
        k.length,
        ...k,
        score,
        want - total,
        queues.length,
        'celeriac-unreadable-',
        ...names,
        acks.length,
        ...acks.map((a) => a.tag),
      );
      t.settling(
        acks,
        pending.then((r) => Number(r[0])),
      );
      const reply = await pending;
      for (let i = 1; i + 3 < reply.length; i += 4) {
        const queue = queues[Number(reply[i]) - 1] as string;
        this.deliver(queue, String(reply[i + 1]), String(reply[i + 2]), Number(reply[i + 3]));
        total += 1;
      }
    }
    return total;
  }

  private deliver(queue: string, raw: string, kombuTag: string, before: number): void {
    const t = this.transport;
    let delivery: Delivery;
    let step = 0;
    const tag = t.nextTag(kombuTag);
    try {
      const decoded = decodeEnvelope(raw);
      step = stepOf(decoded.wirePriority);
      // kombu's own restore does not count deliveries but marks the message redelivered.
      const count = decoded.redelivered ? Math.max(before + 1, 2) : before + 1;
      delivery = { tag, queue, message: decoded.message, raw, deliveryCount: count, redelivered: count > 1 };
    } catch (err) {
      const count = before + 1;
      const error = err instanceof Error ? err.message : String(err);
      delivery = { tag, queue, message: null, raw, error, deliveryCount: count, redelivered: count > 1 };
    }
    if (this.cancelled) {
      // Fetched after cancel(): never handed out, so it goes straight back (front of its queue,
      // not counted as a delivery).
      void t.giveBack({ delivery, kombuTag, step, raw, consumer: this });
      return;
    }
    this.unsettled += 1;
    t.hold({ delivery, kombuTag, step, raw, consumer: this });
    try {
      this.onDelivery(delivery);
    } catch (err) {
      t.log('error', 'redis broker: consumer callback threw', { queue, tag, error: String(err) });
    }
  }

  /** Blocks until a wake token arrives on one of the queues' wake lists, or `pollInterval` passes. */
  private async waitForWork(): Promise<void> {
    const t = this.transport;
    const groups = new Map<string, string[]>();
    for (const q of this.queues) {
      const g = t.keys.group(q);
      groups.set(g, [...(groups.get(g) ?? []), t.keys.wake(q)]);
    }
    const seconds = t.settings.pollIntervalMs / 1000;
    const waits: Promise<unknown>[] = [];
    for (const [group, wakeKeys] of groups) {
      let b = this.blockers.get(group);
      if (!b) {
        b = { client: t.blockingClient(), pending: undefined };
        b.client.on('error', () => {});
        this.blockers.set(group, b);
      }
      if (!b.pending) {
        const blocker = b;
        blocker.pending = blocker.client.blpop(...wakeKeys, seconds).finally(() => {
          blocker.pending = undefined;
        });
      }
      waits.push(b.pending as Promise<unknown>);
    }
    // A watchdog on top of BLPOP's own timeout: a reply that never comes (a half-open TCP
    // connection) must not leave the consumer idle, connected to nothing.
    const limit = t.settings.pollIntervalMs + 5000;
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<'stuck'>((r) => {
      timer = setTimeout(() => r('stuck'), limit);
    });
    const first = await Promise.race([Promise.any(waits).catch(() => 'failed'), watchdog]);
    clearTimeout(timer);
    if (this.cancelled) return;
    if (first === 'failed') {
      if (!this.cancelled) await sleep(Math.min(t.settings.pollIntervalMs, 500));
    } else if (first === 'stuck') {
      const ready = t.redis().status === 'ready';
      if (ready) {
        t.log('warn', 'redis broker: blocking read got no reply in time; reconnecting it', {
          queues: this.queues,
        });
        for (const b of this.blockers.values()) b.client.disconnect(true);
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}
