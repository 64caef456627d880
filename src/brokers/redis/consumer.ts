import type { Delivery } from '../transport.js';
import { corked, isCluster, type RedisClient } from './clients.js';
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
 * when stale: a woken consumer that finds nothing waits again. The fetch script is queued right
 * behind the BLPOP on the blocking connection (see waitForWork), so Redis runs the take the moment
 * the wait returns: one round trip from wake to take.
 */
export class RedisConsumer {
  cancelled = false;
  private prefetch: number;
  /** Fetch at least this many at once while that many credits are not free (ConsumeOptions.batch). */
  private batch: number;
  private unsettled = 0;
  private rotation = 0;
  private creditWaiter: (() => void) | undefined;
  private blockers = new Map<string, Blocker>();
  /** The queues' wake lists, per key group (computed once). */
  private wakeGroups: Map<string, string[]> | undefined;
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
    await this.unblock();
    for (const b of this.blockers.values()) b.client.disconnect();
    await this.loop;
  }

  /**
   * Ends a blocking wait with CLIENT UNBLOCK rather than by dropping its connection: the fetch
   * pipelined behind the BLPOP then runs and answers, and what it took is given back (deliver()
   * after cancel), instead of sitting in `unacked` until its lease ends. Bounded: a server that
   * refuses CLIENT UNBLOCK or does not answer falls back to the disconnect.
   */
  private async unblock(): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const b of this.blockers.values()) {
      if (!b.pending || b.id === undefined || b.client.status !== 'ready') continue;
      waits.push(
        this.transport
          .redis()
          .client('UNBLOCK', b.id)
          .then(() => b.pending)
          .catch(() => {}),
      );
    }
    if (waits.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(waits),
      new Promise<void>((r) => {
        timer = setTimeout(r, 1000);
      }),
    ]);
    clearTimeout(timer);
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
        // Blocks, then (one group, the usual case) takes up to `want` in the same round trip.
        const want = Math.min(credit, settings.fetchBatch);
        const got = await this.waitForWork(want);
        empty = got !== null && got < want;
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

  /**
   * The fetch script's lease offset: it adds this to the server's clock when it runs (a fetch
   * queued behind a wait, or re-sent after a reconnect, still gets a lease from when it takes).
   */
  private score(): string {
    const s = this.transport.settings;
    return (s.leaseMs / 1000 - s.visibilityTimeoutS).toFixed(3);
  }

  /** Hands out the messages of a fetch script reply; returns how many. */
  private deliverReply(queues: string[], reply: Array<string | number>): number {
    let n = 0;
    for (let i = 1; i + 3 < reply.length; i += 4) {
      const queue = queues[Number(reply[i]) - 1] as string;
      this.deliver(queue, String(reply[i + 1]), String(reply[i + 2]), Number(reply[i + 3]));
      n += 1;
    }
    return n;
  }

  /** Takes up to `want` messages (one script per key group) and hands them out. */
  private async fetch(want: number): Promise<number> {
    const t = this.transport;
    const client = t.redis();
    const score = this.score();
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
      total += this.deliverReply(queues, await pending);
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

  /**
   * Blocks until a wake token arrives on one of the queues' wake lists, or `pollInterval` passes.
   *
   * With one key group (always outside Cluster; on Cluster, a consumer of one queue), the fetch script is pipelined behind the BLPOP on
   * the blocking connection: Redis runs it the moment the BLPOP returns, so an idle worker gets its
   * message in one round trip (wake and take), not two (a BLPOP reply, then a fetch). The script
   * still pops and records in `unacked` atomically. It also runs when the BLPOP times out, which is
   * the look at the queues after `pollInterval` (messages that Python publishers pushed without a
   * token). Its lease is counted from the end of the longest wait. Returns how many messages that
   * fetch took and handed out, or null when no fetch ran (several key groups, or a failure).
   */
  private async waitForWork(want: number): Promise<number | null> {
    const t = this.transport;
    if (!this.wakeGroups) {
      this.wakeGroups = new Map();
      for (const q of this.queues) {
        const g = t.keys.group(q);
        this.wakeGroups.set(g, [...(this.wakeGroups.get(g) ?? []), t.keys.wake(q)]);
      }
    }
    const groups = this.wakeGroups;
    const seconds = t.settings.pollIntervalMs / 1000;
    const pipelined = groups.size === 1 && want > 0;
    const waits: Promise<number | null>[] = [];
    for (const [group, wakeKeys] of groups) {
      let b = this.blockers.get(group);
      if (!b) {
        const blocker: Blocker = { client: t.blockingClient(true), pending: undefined, id: undefined };
        blocker.client.on('error', () => {});
        blocker.client.on('close', () => {
          blocker.id = undefined;
        });
        this.blockers.set(group, blocker);
        b = blocker;
      }
      if (!b.pending && pipelined && this.unsettled > 0) {
        // Let the handlers just handed out finish their synchronous part, so their acks go
        // out ahead of the BLPOP below (on the same connection, answered at once) rather than
        // alone on a timer.
        await new Promise<void>((r) => setImmediate(r));
        if (this.cancelled) return null;
      }
      if (!b.pending) {
        const blocker = b;
        // Not on Cluster: CLIENT ID and CLIENT UNBLOCK name no key, so they could reach another node.
        if (blocker.id === undefined && blocker.client.status === 'ready' && !isCluster(blocker.client)) {
          // For cancel() (CLIENT UNBLOCK); answered before the BLPOP blocks.
          void blocker.client.client('ID').then(
            (id) => {
              blocker.id = Number(id);
            },
            () => {},
          );
        }
        if (pipelined) {
          this.rotation = (this.rotation + 1) % this.queues.length;
          const plan = this.plan(this.rotation)[0] as { queues: string[]; keys: string[]; names: string[] };
          const k = plan.keys;
          const acks = t.takeSettles(group);
          // Two commands back to back on the blocking connection (no MULTI, no Pipeline object):
          // Redis runs the second the moment the first returns. With the acks ahead of them, all
          // leave in one write.
          const { client } = blocker;
          const [wait, fetched] = corked(client, () => {
            if (acks.length > 0)
              t.settling(acks, client.celeriacSettle(3, ...k.slice(0, 3), ...acks.map((a) => a.tag)));
            return [
              client.blpop(...wakeKeys, seconds),
              client.celeriacFetch(
                k.length,
                ...k,
                this.score(),
                want,
                plan.queues.length,
                'celeriac-unreadable-',
                ...plan.names,
                0,
              ),
            ] as const;
          });
          wait.catch(() => {});
          blocker.pending = fetched
            .then((reply) => this.deliverReply(plan.queues, reply))
            .finally(() => {
              blocker.pending = undefined;
            });
        } else {
          blocker.pending = blocker.client
            .blpop(...wakeKeys, seconds)
            .then(() => null)
            .finally(() => {
              blocker.pending = undefined;
            });
        }
      }
      waits.push(b.pending as Promise<number | null>);
    }
    // A watchdog on top of BLPOP's own timeout: a reply that never comes (a half-open TCP
    // connection) must not leave the consumer idle, connected to nothing.
    const limit = t.settings.pollIntervalMs + 5000;
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<'stuck'>((r) => {
      timer = setTimeout(() => r('stuck'), limit);
    });
    const first = await Promise.race([Promise.any(waits).catch(() => 'failed' as const), watchdog]);
    clearTimeout(timer);
    if (this.cancelled) return null;
    if (first === 'failed') {
      if (!this.cancelled) await sleep(Math.min(t.settings.pollIntervalMs, 500));
      return null;
    }
    if (first === 'stuck') {
      const ready = t.redis().status === 'ready';
      if (ready) {
        t.log('warn', 'redis broker: blocking read got no reply in time; reconnecting it', {
          queues: this.queues,
        });
        for (const b of this.blockers.values()) b.client.disconnect(true);
      }
      return null;
    }
    return first;
  }
}

/** A blocking connection of a consumer (one per key group), its wait in flight, its CLIENT ID. */
interface Blocker {
  client: RedisClient;
  pending: Promise<number | null> | undefined;
  id: number | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}
