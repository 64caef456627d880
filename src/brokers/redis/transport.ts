import { randomUUID } from 'node:crypto';
import { CeleriacError, ClosedError, ConfigError, ConnectionError, PayloadError } from '../../errors.js';
import type { HealthReport } from '../../health.js';
import { toKombuEnvelope, toKombuPriority } from '../../messages/kombu.js';
import type {
  ConsumeOptions,
  Consumer,
  DeadLetterStore,
  Delivery,
  OutgoingMessage,
  SubscriptionRegistry,
  Transport,
  TransportOptions,
} from '../transport.js';
import { checkPrefetch } from '../transport.js';
import { ConnectionWatch, corked, createClient, ensureConnected, type RedisClient } from './clients.js';
import { RedisConsumer } from './consumer.js';
import { redeliveredText } from './envelope.js';
import { RedisFanout } from './fanout.js';
import { clusterLayout, type KeyLayout, kombuLayout, SEP, stepOf } from './keys.js';
import { Maintenance } from './maintenance.js';
import { RedisRevocations } from './revocations.js';
import { transportScripts } from './scripts.js';
import { type RedisSettings, resolveSettings } from './settings.js';
import { RedisDeadLetters, RedisSubscriptions } from './stores.js';
import type { RedisEndpoint } from './url.js';

/** Most wake-up tokens kept on a queue's wake list. */
export const WAKE_CAP = 64;
/** Most tags per settle script call (Lua's unpack limit is a few thousand). */
const SETTLE_CHUNK = 1000;
/** How long an ack waits for a fetch to ride along with before it goes on its own. */
const SETTLE_DELAY_MS = 4;

/** An ack waiting for its script: the kombu tag, and the ack() promise's callbacks. */
export interface PendingSettle {
  tag: string;
  done: () => void;
  fail: (e: unknown) => void;
}
/** Most envelopes per LPUSH command. */
const PUSH_CHUNK = 1000;

type Log = NonNullable<TransportOptions['log']>;

/** What the transport remembers about a delivery it handed out and that is not settled yet. */
export interface Held {
  delivery: Delivery;
  /** kombu's delivery_tag (the key in `unacked`); `delivery.tag` adds a sequence number to it. */
  kombuTag: string;
  /** kombu priority step of the message (0, 3, 6, 9): which sub-queue it goes back to. */
  step: number;
  /** The envelope as received. */
  raw: string;
  consumer: RedisConsumer;
}

/** The commands a publish issues, on a client (each returns its reply) or on a MULTI (chained). */
interface Writer {
  lpush(key: string, ...values: string[]): unknown;
  zadd(key: string, ...args: Array<string | number>): unknown;
  ltrim(key: string, start: number, stop: number): unknown;
  sadd(key: string, member: string): unknown;
}

/** One message of a publish, ready to write. */
interface Write {
  group: string;
  queue: string;
  /** The list (ready) or the delayed zset (notBefore in the future). */
  key: string;
  /** notBefore (epoch ms) for a delayed message, else null. */
  score: number | null;
  /** The envelope (ready) or step char + envelope (delayed). */
  payload: string;
}

interface PendingPublish {
  writes: Write[];
  count: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The kombu-compatible Redis transport. See `keys.ts` for the layout, `scripts/*.lua` for every
 * atomic step, `consumer.ts` for consuming, and `maintenance.ts` for lease refresh, restore of lost
 * messages and the delayed-message mover.
 *
 * Delivery counts: `celeriac.deliveries` (a hash keyed by kombu delivery tag, which a message keeps
 * for life) holds how many deliveries a message had before the current one. Nothing is written on
 * the happy path: a restore of a lost lease and a requeue add 1 (restore.lua, requeue.lua), a defer
 * does not, an ack or a dead-letter deletes the entry. kombu's own restore does not count but marks
 * the message `redelivered`, which reads as at least the second delivery. `deliveryCount` is that
 * number + 1, which the worker compares with `maxDeliveries` to dead-letter poison messages. An entry
 * can outlive its message only when a Python worker acks a message we had restored (kombu does not
 * know the hash); it is a few bytes.
 *
 * Publisher backlog: while Redis is unreachable, `publish()` keeps messages in memory, at most
 * `maxBacklog` (default 10,000), and rejects more with a ConnectionError that names the bound; they
 * go out, in order, as soon as the connection is ready again. Commands of settled deliveries and the
 * maintenance loops wait in ioredis's offline queue, bounded by the prefetch of the consumers.
 *
 * @example
 * const transport = createTransport(new URL('redis://127.0.0.1:6379/0'), {});
 * await transport.publish([{ queue: 'celery', message }]);
 * const consumer = await transport.consume(['celery'], (d) => void transport.ack(d), { prefetch: 50 });
 */
export class RedisTransport implements Transport {
  readonly kind = 'redis';
  readonly shared = true;
  /** A message sent without a priority goes where Python's default goes: wire 0, the main list. */
  readonly defaultPriority = 9;
  readonly deadLetters: DeadLetterStore;
  readonly subscriptions: SubscriptionRegistry;
  readonly fanout = new RedisFanout(this);
  readonly revocations = new RedisRevocations(this);
  readonly keys: KeyLayout;
  readonly settings: RedisSettings;
  readonly log: Log;
  /** Deliveries handed out and not settled, by `Delivery.tag`. */
  readonly held = new Map<string, Held>();
  /** The delivery currently holding each kombu tag (a restored message may come back to us). */
  readonly holder = new Map<string, string>();
  private sequence = 0;
  /** Flushes per queue since its wake list was last trimmed. */
  private readonly wakeCount = new Map<string, number>();
  private readonly consumers = new Set<RedisConsumer>();
  private readonly declared = new Set<string>();
  private client: RedisClient | undefined;
  private watch: ConnectionWatch | undefined;
  private maintenance: Maintenance | undefined;
  private pending: PendingPublish[] = [];
  private backlog = 0;
  private flushScheduled = false;
  private inflight = new Set<Promise<void>>();
  private settleBatch = new Map<string, PendingSettle[]>();
  /** Set while acks wait for a fetch to ride along with (flushSettles clears it). */
  private settleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly endpoint: RedisEndpoint,
    readonly label: string,
    options: TransportOptions,
  ) {
    this.settings = resolveSettings(endpoint, options.options);
    this.keys =
      endpoint.mode === 'cluster' ? clusterLayout(endpoint.keyPrefix) : kombuLayout(endpoint.keyPrefix);
    this.log = options.log ?? (() => {});
    this.deadLetters = new RedisDeadLetters(this);
    this.subscriptions = new RedisSubscriptions(this);
  }

  /** The command connection (created on first use, connecting in the background). */
  redis(): RedisClient {
    if (this.closed) throw new ClosedError(`redis transport '${this.label}'`);
    if (!this.client) {
      this.client = createClient(this.endpoint, 'celeriac-broker', transportScripts());
      this.watch = new ConnectionWatch(this.client, `redis broker ${this.label}`, this.log);
      this.client.on('ready', () => this.scheduleFlush());
      this.maintenance = new Maintenance(this);
      this.client.connect().catch(() => {
        // ioredis keeps retrying; health() reports it and publishes wait in the bounded backlog.
      });
    }
    return this.client;
  }

  /** A new connection for blocking reads (one per consumer key group); with the scripts when it pipelines a fetch behind its BLPOP. */
  blockingClient(scripts = false): RedisClient {
    return createClient(this.endpoint, 'celeriac-consumer', scripts ? transportScripts() : {});
  }

  async connect(): Promise<void> {
    const client = this.redis();
    try {
      await ensureConnected(client);
    } catch (cause) {
      throw new ConnectionError(`cannot connect to redis broker ${this.label}: ${String(cause)}`, { cause });
    }
  }

  // ------------------------------------------------------------------------------------------
  // publish: encoded at once (errors reach the caller), sent in coalesced pipelines.

  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(`redis transport '${this.label}'`));
    if (messages.length === 0) return Promise.resolve();
    let entry: PendingPublish;
    try {
      this.redis();
      entry = this.prepare(messages);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.backlog + entry.count > this.settings.maxBacklog && !this.watch?.ready) {
      return Promise.reject(
        new ConnectionError(
          `redis broker ${this.label} is unreachable and the publish backlog is full (${this.backlog} of ${this.settings.maxBacklog} messages; brokerOptions.maxBacklog)`,
        ),
      );
    }
    this.backlog += entry.count;
    const done = new Promise<void>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.pending.push(entry);
    this.scheduleFlush();
    return done.finally(() => {
      this.backlog -= entry.count;
    });
  }

  private prepare(messages: readonly OutgoingMessage[]): PendingPublish {
    const now = Date.now();
    const writes: Write[] = [];
    messages.forEach((m, i) => {
      if (typeof m.queue !== 'string' || m.queue === '') {
        throw new PayloadError(
          `messages[${i}].queue`,
          `expected a non-empty queue name, got '${String(m.queue)}'`,
        );
      }
      if (m.notBefore !== undefined && !Number.isFinite(m.notBefore)) {
        throw new PayloadError(`messages[${i}].notBefore`, `expected epoch milliseconds, got ${m.notBefore}`);
      }
    });
    for (const m of messages) {
      const step = stepOf(toKombuPriority(m.message.priority));
      const envelope = toKombuEnvelope(m.message, {
        exchange: '',
        routingKey: m.queue,
        deliveryTag: randomUUID(),
      });
      const group = this.keys.group(m.queue);
      if (m.notBefore !== undefined && m.notBefore > now) {
        const notBefore = Math.round(m.notBefore);
        writes.push({
          group,
          queue: m.queue,
          key: this.keys.delayed(m.queue),
          score: notBefore,
          payload: `${step}${envelope}`,
        });
        this.maintenance?.dueAt(m.queue, notBefore);
      } else {
        writes.push({
          group,
          queue: m.queue,
          key: this.keys.list(m.queue, step),
          score: null,
          payload: envelope,
        });
      }
    }
    return { writes, count: messages.length, resolve: () => {}, reject: () => {} };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.pending.length === 0) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.client?.status !== 'ready') return; // flushed again on 'ready'
      const batch = this.pending;
      this.pending = [];
      const job = this.send(batch).finally(() => this.inflight.delete(job));
      this.inflight.add(job);
    });
  }

  /**
   * Sends every publish of a tick in one MULTI/EXEC per key group (one group outside Cluster; a plain
   * pipeline when the batch writes a single list or set, which one command makes atomic): one
   * variadic LPUSH per list (publish order kept: kombu's consumer pops from the right), one ZADD per
   * delayed set, a wake-up token per queue (LPUSH + LTRIM to 64), and the kombu binding of queues not
   * declared yet. The transaction makes each publish call all-or-nothing, several calls at once too;
   * on Cluster, a call whose messages span slots is atomic per slot.
   */
  private async send(batch: PendingPublish[]): Promise<void> {
    const client = this.redis();
    const groups = new Map<
      string,
      {
        lists: Map<string, string[]>;
        zsets: Map<string, Array<string | number>>;
        queues: Set<string>;
        wake: Set<string>;
      }
    >();
    const touched: Array<Set<string>> = [];
    for (const entry of batch) {
      const mine = new Set<string>();
      for (const w of entry.writes) {
        let g = groups.get(w.group);
        if (!g) {
          g = { lists: new Map(), zsets: new Map(), queues: new Set(), wake: new Set() };
          groups.set(w.group, g);
        }
        mine.add(w.group);
        g.queues.add(w.queue);
        if (w.score === null) {
          g.wake.add(w.queue);
          const list = g.lists.get(w.key);
          if (list) list.push(w.payload);
          else g.lists.set(w.key, [w.payload]);
        } else {
          const zset = g.zsets.get(w.key);
          if (zset) zset.push(w.score, w.payload);
          else g.zsets.set(w.key, [w.score, w.payload]);
        }
      }
      touched.push(mine);
    }
    const failed = new Map<string, Error>();
    const declared: string[] = [];
    await Promise.all(
      [...groups].map(async ([group, g]) => {
        // One data key written by one command: a single LPUSH/ZADD is atomic by itself, so the
        // commands go as they are, in one write (no Pipeline object). More keys, or a list written
        // in several chunks, need MULTI/EXEC.
        let single = g.lists.size + g.zsets.size === 1;
        for (const payloads of g.lists.values()) if (payloads.length > PUSH_CHUNK) single = false;
        const issue = (w: Writer): unknown[] => {
          const out: unknown[] = [];
          for (const [key, payloads] of g.lists) {
            for (let i = 0; i < payloads.length; i += PUSH_CHUNK)
              out.push(w.lpush(key, ...payloads.slice(i, i + PUSH_CHUNK)));
          }
          for (const [key, args] of g.zsets) out.push(w.zadd(key, ...args));
          for (const q of g.wake) {
            // A token per flush; the list is trimmed to the cap on every 32nd flush of a queue (and
            // emptied by consumers that find the queue empty), so it stays below cap + 32 tokens.
            const wake = this.keys.wake(q);
            out.push(w.lpush(wake, '1'));
            const n = (this.wakeCount.get(q) ?? 0) + 1;
            this.wakeCount.set(q, n % 32);
            if (n % 32 === 1) out.push(w.ltrim(wake, 0, WAKE_CAP - 1));
          }
          for (const q of g.queues) {
            const binding = this.keys.binding(q);
            if (binding && !this.declared.has(q)) {
              out.push(w.sadd(binding, `${q}${SEP}${SEP}${q}`));
              declared.push(q);
            }
          }
          return out;
        };
        try {
          if (single) {
            const replies = await Promise.allSettled(
              corked(client, () => issue(client as unknown as Writer)) as Promise<unknown>[],
            );
            const bad = replies.find((r) => r.status === 'rejected');
            if (bad) throw bad.reason;
          } else {
            const tx = client.multi();
            issue(tx as unknown as Writer);
            const replies = await tx.exec();
            const err = replies === null ? new Error('transaction aborted') : replies.find(([e]) => e)?.[0];
            if (err) failed.set(group, err);
          }
        } catch (err) {
          failed.set(group, err instanceof Error ? err : new Error(String(err)));
        }
      }),
    );
    for (const q of declared) this.declared.add(q);
    batch.forEach((entry, i) => {
      for (const group of touched[i] ?? []) {
        const err = failed.get(group);
        if (err) {
          entry.reject(
            new ConnectionError(`redis broker ${this.label}: publish failed: ${err.message}`, { cause: err }),
          );
          return;
        }
      }
      entry.resolve();
    });
  }

  /** Writes `_kombu.binding.<q>` for queues not declared by this transport yet (as kombu's declare). */
  async declare(queues: readonly string[]): Promise<void> {
    const client = this.redis();
    const undeclared = queues.filter((q) => !this.declared.has(q) && this.keys.binding(q) !== null);
    await Promise.all(
      undeclared.map((q) => client.sadd(this.keys.binding(q) as string, `${q}${SEP}${SEP}${q}`)),
    );
    for (const q of undeclared) this.declared.add(q);
  }

  // ------------------------------------------------------------------------------------------
  // consume

  async consume(
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    if (this.closed) throw new ClosedError(`redis transport '${this.label}'`);
    if (queues.length === 0 || queues.some((q) => typeof q !== 'string' || q === '')) {
      throw new ConfigError(
        'queues',
        `expected one or more non-empty queue names, got ${JSON.stringify(queues)}`,
      );
    }
    checkPrefetch(options.prefetch);
    this.redis();
    const consumer = new RedisConsumer(
      this,
      [...new Set(queues)],
      onDelivery,
      options.prefetch,
      options.batch,
    );
    this.consumers.add(consumer);
    consumer.closed.finally(() => this.consumers.delete(consumer));
    void this.declare(consumer.queues).catch(() => {});
    this.maintenance?.watchQueues(consumer.queues);
    consumer.start();
    return {
      setPrefetch: (prefetch, batch) => {
        checkPrefetch(prefetch);
        consumer.setPrefetch(prefetch, batch);
      },
      cancel: () => consumer.cancel(),
    };
  }

  /** Queues any live consumer reads (for the maintenance loops). */
  consumedQueues(): Set<string> {
    const out = new Set<string>();
    for (const c of this.consumers) if (!c.cancelled) for (const q of c.queues) out.add(q);
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // settle

  /** A unique `Delivery.tag` for a kombu tag handed out now. */
  nextTag(kombuTag: string): string {
    this.sequence += 1;
    return `${kombuTag}#${this.sequence}`;
  }

  /** Records a delivery handed out. */
  hold(held: Held): void {
    this.held.set(held.delivery.tag, held);
    this.holder.set(held.kombuTag, held.delivery.tag);
  }

  /** Puts back a message fetched after its consumer was cancelled (never handed out: not counted). */
  async giveBack(held: Held): Promise<void> {
    try {
      await this.maintenance?.restoreHeld([held], false);
    } catch (err) {
      this.log(
        'warn',
        'redis broker: could not give back a message fetched after cancel (it comes back after its lease)',
        {
          error: String(err),
        },
      );
    }
  }

  /**
   * Ends our ownership of a delivery. `current` is false when a newer delivery of the same message
   * (restored after a lost lease, then taken again by us) holds its kombu tag now: then only the
   * local state is settled, Redis belongs to the newer one.
   */
  private take(delivery: Delivery, what: string): { held: Held; current: boolean } {
    if (this.closed) throw new ClosedError(`redis transport '${this.label}'`);
    const held = this.held.get(delivery.tag);
    if (!held || held.delivery !== delivery) {
      throw new CeleriacError(
        'ERR_SETTLED',
        `${what}: delivery '${delivery.tag}' of queue '${delivery.queue}' is not pending on this connection: it was ` +
          'already settled (ack, requeue, defer and deadLetter settle a delivery exactly once) or belongs to another connection',
      );
    }
    this.held.delete(delivery.tag);
    const current = this.holder.get(held.kombuTag) === delivery.tag;
    if (current) this.holder.delete(held.kombuTag);
    held.consumer.settled();
    return { held, current };
  }

  /**
   * Acks are batched: the acks of one event-loop turn go out in one script call per key group, or
   * ride along with a fetch the consumer issues in the same turn (fetch.lua settles them first).
   */
  ack(delivery: Delivery): Promise<void> {
    let taken: { held: Held; current: boolean };
    try {
      taken = this.take(delivery, 'ack');
    } catch (err) {
      return Promise.reject(err);
    }
    const { held, current } = taken;
    if (!current) return Promise.resolve();
    const group = this.keys.group(held.delivery.queue);
    return new Promise<void>((done, fail) => {
      let list = this.settleBatch.get(group);
      if (!list) {
        list = [];
        this.settleBatch.set(group, list);
      }
      list.push({ tag: held.kombuTag, done, fail });
      if (this.settleTimer === undefined) {
        // A few ms later: the acks of that time go in one script, or ride along with a fetch the
        // consumer issues meanwhile (takeSettles), which on a busy or a trickle-fed worker is the
        // usual case: one command per task instead of two.
        this.settleTimer = setTimeout(() => this.flushSettles(), SETTLE_DELAY_MS);
      }
    });
  }

  private flushSettles(): void {
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    const batches = this.settleBatch;
    this.settleBatch = new Map();
    const client = this.redis();
    for (const [group, list] of batches) {
      const keys = [this.keys.unacked(group), this.keys.unackedIndex(group), this.keys.deliveries(group)];
      for (let i = 0; i < list.length; i += SETTLE_CHUNK) {
        const chunk = list.slice(i, i + SETTLE_CHUNK);
        this.settling(chunk, client.celeriacSettle(3, ...keys, ...chunk.map((c) => c.tag)));
      }
    }
  }

  /**
   * Hands the acks of this moment for `group` to a fetch about to run (fetch.lua settles them
   * first, in the same round trip); at most SETTLE_CHUNK. The fetch reports the outcome through
   * `settling()`.
   */
  takeSettles(group: string): PendingSettle[] {
    const list = this.settleBatch.get(group);
    if (!list) return [];
    if (list.length <= SETTLE_CHUNK) {
      this.settleBatch.delete(group);
      return list;
    }
    return list.splice(0, SETTLE_CHUNK);
  }

  /** Resolves or fails a chunk of acks when the script that settles them (`held`: how many were still held) answers. */
  settling(chunk: PendingSettle[], reply: Promise<number>): void {
    if (chunk.length === 0) return;
    const job = reply
      .then((held) => {
        if (held < chunk.length) {
          this.log(
            'warn',
            'redis broker: acked deliveries whose lease had run out (they were restored and may run again)',
            { lost: chunk.length - held },
          );
        }
        for (const c of chunk) c.done();
      })
      .catch((err: unknown) => {
        for (const c of chunk)
          c.fail(
            new ConnectionError(`redis broker ${this.label}: ack failed: ${String(err)}`, { cause: err }),
          );
      });
    const tracked = job.finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  async requeue(delivery: Delivery): Promise<void> {
    const { held, current } = this.take(delivery, 'requeue');
    if (!current) return;
    const q = held.delivery.queue;
    const payload = redeliveredText(held.raw);
    await this.redis().celeriacRequeue(
      5,
      this.keys.unacked(q),
      this.keys.unackedIndex(q),
      this.keys.deliveries(q),
      this.keys.list(q, held.step),
      this.keys.wake(q),
      held.kombuTag,
      payload,
    );
  }

  async defer(delivery: Delivery, notBefore: number): Promise<void> {
    if (!Number.isFinite(notBefore))
      throw new PayloadError('notBefore', `expected epoch milliseconds, got ${notBefore}`);
    const { held, current } = this.take(delivery, 'defer');
    if (!current) return;
    const q = held.delivery.queue;
    await this.redis().celeriacDefer(
      3,
      this.keys.unacked(q),
      this.keys.unackedIndex(q),
      this.keys.delayed(q),
      held.kombuTag,
      Math.round(notBefore),
      `${held.step}${held.raw}`,
    );
    this.maintenance?.dueAt(q, notBefore);
  }

  async deadLetter(delivery: Delivery, reason: string): Promise<void> {
    const { held, current } = this.take(delivery, 'deadLetter');
    if (!current) return;
    const q = held.delivery.queue;
    const record = JSON.stringify({
      id: held.kombuTag,
      reason: String(reason),
      at: Date.now(),
      step: String(held.step),
      raw: held.raw,
    });
    await this.redis().celeriacDeadLetter(
      4,
      this.keys.unacked(q),
      this.keys.unackedIndex(q),
      this.keys.deliveries(q),
      this.keys.dead(q),
      held.kombuTag,
      record,
    );
  }

  // ------------------------------------------------------------------------------------------
  // queues

  async depth(queue: string): Promise<number> {
    const lengths = await Promise.all(this.keys.lists(queue).map((k) => this.redis().llen(k)));
    return lengths.reduce((a, b) => a + b, 0);
  }

  async purge(queue: string): Promise<number> {
    const lists = this.keys.lists(queue);
    return this.redis().celeriacPurge(lists.length, ...lists);
  }

  health(): HealthReport {
    if (this.closed) return { status: 'unhealthy', reason: 'closed' };
    const report = this.watch?.report() ?? { status: 'healthy' };
    if (report.status === 'healthy' && this.backlog >= this.settings.maxBacklog) {
      return { status: 'degraded', reason: `publish backlog full (${this.backlog} messages)` };
    }
    if (report.status !== 'healthy' && this.backlog > 0) {
      return { ...report, reason: `${report.reason}; ${this.backlog} messages waiting to be published` };
    }
    return report;
  }

  /**
   * Stops consumers, gives unsettled deliveries back to the front of their queues (kombu's
   * restore at shutdown), waits for publishes and acks in flight, and closes the connections.
   * Publishes still waiting for a connection are rejected.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.consumers].map((c) => c.cancel()));
    this.maintenance?.stop();
    if (this.client?.status === 'ready') {
      this.flushSettles();
      await Promise.allSettled([...this.inflight]);
      await this.maintenance
        ?.restoreHeld([...this.held.values()].filter((h) => this.holder.get(h.kombuTag) === h.delivery.tag))
        .catch((err: unknown) => {
          this.log(
            'warn',
            'redis broker: could not give back unsettled deliveries at close (they come back after their lease)',
            {
              error: String(err),
            },
          );
        });
    }
    this.closed = true;
    this.held.clear();
    this.holder.clear();
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) p.reject(new ClosedError(`redis transport '${this.label}'`));
    if (this.client) {
      const client = this.client;
      this.client = undefined;
      await client.quit().catch(() => client.disconnect());
    }
  }
}
