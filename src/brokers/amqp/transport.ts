import { randomUUID } from 'node:crypto';
import { type AsyncMessage, type Channel, Connection, type ReturnedMessage } from 'rabbitmq-client';
import { CeleriacError, ClosedError, ConfigError, ConnectionError, PayloadError } from '../../errors.js';
import type { HealthReport } from '../../health.js';
import { threadOid } from '../../messages/ids.js';
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
import { AckBatcher } from './acks.js';
import { AmqpConsumer, type ConsumerHost } from './consumer.js';
import { AmqpFanout } from './fanout.js';
import {
  cleanHeaders,
  H_DEAD_AT,
  H_DEAD_ID,
  H_DELIVERIES,
  H_NOT_BEFORE,
  H_REASON,
  type IncomingFrame,
  numberHeader,
  rawEnvelope,
  toEnvelope,
  toWireMessage,
} from './frames.js';
import { ConfirmPublisher, type Publication } from './publisher.js';
import { ReplyRoutes } from './replies.js';
import { AmqpRevocations } from './revocations.js';
import type { AmqpSettings } from './settings.js';
import { AmqpDeadLetters, AmqpSubscriptions } from './stores.js';
import { ackQuietly, bucketFor, DELAY_PREFIX, deadQueue, nackQuietly, Topology } from './topology.js';

type Log = NonNullable<TransportOptions['log']>;

/** A delivery handed out and not settled yet. */
interface Held {
  delivery: Delivery;
  consumer: AmqpConsumer;
  channel: Channel;
  deliveryTag: number;
  frame: IncomingFrame;
}

/**
 * The RabbitMQ transport (AMQP 0-9-1, through rabbitmq-client). See `topology.ts` for what it
 * declares, `frames.ts` for the wire mapping and the `x-celeriac-*` headers, `consumer.ts` for
 * prefetch and consumer recovery, `publisher.ts` for confirms and the backlog, `stores.ts` for dead
 * letters and subscriptions.
 *
 * Settling. `ack` acks the delivery. `requeue`, `defer` and `deadLetter` publish a copy (confirmed)
 * and then ack the delivery: the copy carries the delivery counter forward (`x-celeriac-deliveries`),
 * which RabbitMQ's nack-requeue cannot do. `requeue` therefore puts the message at the tail of its
 * queue, not back at its old place.
 *
 * Delivery counting. RabbitMQ's `redelivered` flag only says "delivered at least once before". A
 * message that arrives with it set (its consumer died or its channel closed before settling) is
 * not handed out: the transport publishes a copy with the counter + 1 and acks the original, and
 * the copy is delivered in its turn (at the tail). So `deliveryCount` counts every delivery,
 * crashes included, and `maxDeliveries` stops a message that kills its worker every time.
 *
 * At-least-once edges (documented, by design):
 * - a delivery tag dies with its channel: a task that finishes after a reconnect cannot be acked
 *   (`ack` rejects with ConnectionError) and the message, already requeued by RabbitMQ, runs again;
 *   because the redelivery is counted, this cannot loop forever (see above);
 * - a copy published by requeue/defer/deadLetter whose ack is then lost leaves the message twice;
 * - a publish not confirmed before a connection loss is sent again, possibly twice.
 *
 * @example
 * const transport = createTransport(new URL('amqp://guest:guest@127.0.0.1:5672//'), {});
 * await transport.publish([{ queue: 'celery', message }]);
 * await transport.consume(['celery'], (d) => void transport.ack(d), { prefetch: 16 });
 */
export class AmqpTransport implements Transport, ConsumerHost {
  readonly kind = 'amqp';
  readonly shared = true;
  readonly defaultPriority = 0;
  readonly deadLetters: DeadLetterStore;
  readonly subscriptions: SubscriptionRegistry;
  /** Celery's pidbox and celeryev exchanges (`fanout.ts`). */
  readonly fanout: AmqpFanout;
  /** Revoked ids in the queue `celeriac.revoked` (`revocations.ts`). */
  readonly revocations: AmqpRevocations;
  readonly topology: Topology;
  /** reply_to of the tasks this transport delivered, for an rpc:// result sink that borrows it (`replies.ts`). */
  readonly replies = new ReplyRoutes();
  readonly log: Log;
  closed = false;
  private connection: Connection | undefined;
  private publisher: ConfirmPublisher | undefined;
  private readonly held = new Map<string, Held>();
  /** Acks of one turn, coalesced per channel. */
  private readonly acks = new AckBatcher();
  private readonly lostChannels = new WeakSet<Channel>();
  private readonly consumers = new Set<AmqpConsumer>();
  private sequence = 0;
  private downSince: number | undefined;
  private lastError: string | undefined;
  private lastFailure: unknown;
  private blocked: string | undefined;
  private connecting: Promise<void> | undefined;
  private abortConnect: (() => void) | undefined;

  constructor(
    readonly settings: AmqpSettings,
    readonly label: string,
    options: TransportOptions,
  ) {
    this.log = options.log ?? (() => {});
    this.topology = new Topology(settings, () => this.conn());
    this.deadLetters = new AmqpDeadLetters(this);
    this.subscriptions = new AmqpSubscriptions(this);
    this.fanout = new AmqpFanout(this);
    this.revocations = new AmqpRevocations(this);
  }

  /** The connection (created on first use; rabbitmq-client connects and reconnects by itself). */
  conn(): Connection {
    if (this.closed) throw new ClosedError(`amqp transport '${this.label}'`);
    if (!this.connection) {
      const s = this.settings;
      const conn = new Connection({
        hostname: s.hostname,
        port: s.port,
        username: s.username,
        password: s.password,
        vhost: s.vhost,
        tls: s.tls ? s.tlsOptions : false,
        ...(s.hosts.length ? { hosts: [`${s.hostname}:${s.port}`, ...s.hosts] } : {}),
        heartbeat: s.heartbeatS,
        connectionName: s.connectionName,
        retryLow: s.retryLowMs,
        retryHigh: s.retryHighMs,
        connectionTimeout: 10_000,
        acquireTimeout: s.publishTimeoutMs,
        noDelay: true,
      });
      this.downSince = Date.now();
      conn.on('connection', () => {
        if (this.lastError) this.log('info', 'amqp: connected again', { broker: this.label });
        this.downSince = undefined;
        this.lastError = undefined;
        this.lastFailure = undefined;
        this.topology.reset();
      });
      conn.on('error', (err: unknown) => {
        this.lastError = errorText(err);
        this.lastFailure = err;
        if (!conn.ready) this.downSince ??= Date.now();
        this.log('warn', 'amqp: connection error', { broker: this.label, error: this.lastError });
      });
      conn.on('connection.blocked', (reason: string) => {
        this.blocked = reason;
      });
      conn.on('connection.unblocked', () => {
        this.blocked = undefined;
      });
      this.connection = conn;
      this.publisher = new ConfirmPublisher(
        () => this.conn(),
        { maxBacklog: s.maxBacklog, publishTimeoutMs: s.publishTimeoutMs, label: this.label },
        (msg) => this.onReturn(msg),
      );
    }
    return this.connection;
  }

  /**
   * Waits for the connection, up to `publishTimeout`. Rejects with ConnectionError naming the broker
   * (credentials redacted) and the last connection error; at once, without waiting, when the
   * server's TLS certificate does not verify and there is no other host to try (rabbitmq-client
   * would retry it forever).
   */
  async connect(): Promise<void> {
    const conn = this.conn();
    if (conn.ready) return;
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const ms = this.settings.publishTimeoutMs;
      const fatal = (err: unknown): boolean => isCertificateError(err) && this.settings.hosts.length === 0;
      const done = (err?: unknown): void => {
        clearTimeout(timer);
        conn.off('connection', onConnection);
        conn.off('error', onError);
        this.abortConnect = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      const onConnection = (): void => done();
      const onError = (err: unknown): void => {
        if (fatal(err)) done(err);
      };
      const timer = setTimeout(() => {
        const last = this.lastFailure;
        done(new Error(`no connection within ${ms} ms${last ? `: ${errorText(last)}` : ''}`));
      }, ms);
      this.abortConnect = () => done(new ClosedError(`amqp transport '${this.label}'`));
      conn.on('connection', onConnection);
      conn.on('error', onError);
      // rabbitmq-client reports only the first failure of a series: it may have come before this call.
      if (fatal(this.lastFailure)) done(this.lastFailure);
    }).finally(() => {
      this.connecting = undefined;
    });
    try {
      await this.connecting;
    } catch (err) {
      if (err instanceof ClosedError) throw err;
      const why = isCertificateError(err)
        ? `TLS: the server's certificate was not verified (${errorText(err)}); give the CA that signed it with ` +
          '?ssl_ca_certs=<PEM file> or brokerOptions.tls.ca'
        : errorText(err);
      throw new ConnectionError(`cannot connect to RabbitMQ at ${this.label}: ${why}`, { cause: err });
    }
  }

  // ------------------------------------------------------------------------------------------
  // publish

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    this.conn();
    messages.forEach((m, i) => {
      if (typeof m.queue !== 'string' || m.queue === '')
        throw new PayloadError(
          `messages[${i}].queue`,
          `expected a non-empty queue name, got '${String(m.queue)}'`,
        );
      if (m.notBefore !== undefined && !Number.isFinite(m.notBefore))
        throw new PayloadError(`messages[${i}].notBefore`, `expected epoch milliseconds, got ${m.notBefore}`);
    });
    if (messages.length === 0) return;
    // Counted in the backlog from here: a declaration waiting for the connection is bounded too.
    await this.pub().admit(messages.length, this.connection?.ready ?? false, async (deadline) => {
      const now = Date.now();
      const items: Publication[] = [];
      const declarations = new Map<string, Promise<void>>();
      const ownReplyTo = this.settings.replyQueue ? threadOid() : undefined;
      for (const m of messages) {
        if (!declarations.has(m.queue)) declarations.set(m.queue, this.topology.taskQueue(m.queue));
        if (
          ownReplyTo !== undefined &&
          m.message.properties.reply_to === ownReplyTo &&
          !declarations.has(ownReplyTo)
        )
          declarations.set(ownReplyTo, this.topology.replyQueue(ownReplyTo));
        if (m.notBefore !== undefined && m.notBefore - now >= 1) {
          items.push(this.delayed(toEnvelope(m.message, '', m.queue), m.notBefore, now, declarations));
        } else {
          items.push(toEnvelope(m.message, '', m.queue));
        }
      }
      await this.declare(declarations);
      await this.pub().deliver(items, deadline);
    });
  }

  /** Publishes ready-made publications (confirmed, one batch). Used by the dead-letter and subscription stores. */
  async publishRaw(items: readonly Publication[]): Promise<void> {
    await this.pub().send(items, this.connection?.ready ?? false);
  }

  private pub(): ConfirmPublisher {
    this.conn();
    return this.publisher as ConfirmPublisher;
  }

  private async declare(declarations: Map<string, Promise<void>>): Promise<void> {
    try {
      await Promise.all(declarations.values());
    } catch (err) {
      if (err instanceof CeleriacError) throw err;
      throw new ConnectionError(`could not declare AMQP queues: ${String(err)}`, { cause: err });
    }
  }

  /**
   * Routes a publication through the delay bucket for the time left (see topology.ts): it comes
   * back to its queue when the bucket's TTL expires, and the consumer sends it through the next
   * bucket until `notBefore`. The per-message `expiration` is dropped on the way (it would expire it
   * inside a bucket); the worker still honours the `expires` header.
   */
  private delayed(
    p: Publication,
    notBefore: number,
    now: number,
    declarations: Map<string, Promise<void>>,
  ): Publication {
    const bucket = bucketFor(notBefore - now);
    const exchange = `${DELAY_PREFIX}${bucket}`;
    if (!declarations.has(exchange)) declarations.set(exchange, this.topology.delayBucket(bucket));
    const { expiration: _dropped, ...envelope } = p.envelope;
    return {
      envelope: {
        ...envelope,
        exchange,
        headers: { ...p.envelope.headers, [H_NOT_BEFORE]: notBefore },
      },
      body: p.body,
    };
  }

  private onReturn(msg: ReturnedMessage): void {
    // Unroutable: the queue was deleted under us. Declare it again and send the message again.
    const queue = msg.routingKey;
    this.log('warn', 'amqp: message returned unroutable; re-declaring its queue and re-sending', {
      queue,
      exchange: msg.exchange,
      reason: msg.replyText,
    });
    if (msg.exchange !== '' || this.closed) return;
    this.topology.forget(queue);
    const frame = msg as unknown as IncomingFrame;
    void this.topology
      .taskQueue(queue)
      .then(() => this.pub().send([rawEnvelope(frame, '', queue, frame.headers ?? {})], true))
      .catch((err) =>
        this.log('error', 'amqp: could not re-send a returned message', { queue, error: String(err) }),
      );
  }

  // ------------------------------------------------------------------------------------------
  // consume

  async consume(
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    this.conn();
    if (queues.length === 0 || queues.some((q) => typeof q !== 'string' || q === ''))
      throw new ConfigError(
        'queues',
        `expected one or more non-empty queue names, got ${JSON.stringify(queues)}`,
      );
    checkPrefetch(options.prefetch);
    const consumer = new AmqpConsumer(this, [...new Set(queues)], options.prefetch, onDelivery);
    try {
      await consumer.start();
    } catch (err) {
      if (err instanceof CeleriacError) throw err;
      throw new ConnectionError(`could not consume from ${queues.join(', ')}: ${String(err)}`, {
        cause: err,
      });
    }
    this.consumers.add(consumer);
    return {
      setPrefetch: (prefetch) => {
        checkPrefetch(prefetch);
        consumer.setPrefetch(prefetch);
      },
      // A cancelled consumer stays listed until close(): its channel lives while it holds deliveries.
      cancel: () => consumer.cancel(),
    };
  }

  // ConsumerHost ------------------------------------------------------------------------------

  acquire(): Promise<Channel> {
    return this.conn().acquire();
  }

  declareQueue(queue: string): Promise<void> {
    return this.topology.taskQueue(queue);
  }

  forgetQueue(queue: string): void {
    this.topology.forget(queue);
  }

  isQuorum(queue: string): boolean {
    return this.topology.isQuorum(queue);
  }

  lose(ch: Channel): void {
    this.lostChannels.add(ch);
  }

  receive(consumer: AmqpConsumer, ch: Channel, queue: string, msg: AsyncMessage): void {
    if (consumer.cancelled) {
      // Sent before the server saw our cancel: give it back, it was never handed out.
      nackQuietly(ch, msg.deliveryTag);
      this.acks.settled(ch, msg.deliveryTag);
      return;
    }
    const frame = msg as IncomingFrame;
    const before = numberHeader(frame, H_DELIVERIES, 0);
    if (msg.redelivered) {
      // Count the lost delivery in the message itself, then deliver the copy in its turn.
      void this.relay(
        ch,
        msg,
        rawEnvelope(frame, '', queue, { ...frame.headers, [H_DELIVERIES]: before + 1 }),
      );
      return;
    }
    const notBefore = numberHeader(frame, H_NOT_BEFORE, 0);
    const now = Date.now();
    if (notBefore - now >= 1) {
      const bucket = bucketFor(notBefore - now);
      const exchange = `${DELAY_PREFIX}${bucket}`;
      const { expiration: _dropped, ...envelope } = rawEnvelope(
        frame,
        exchange,
        queue,
        cleanForHop(frame),
      ).envelope;
      void this.topology
        .delayBucket(bucket)
        .then(() => this.relay(ch, msg, { envelope, body: rawEnvelope(frame, '', queue, {}).body }))
        .catch((err) => {
          this.log('warn', 'amqp: could not declare a delay bucket; message left in its queue', {
            error: String(err),
          });
          nackQuietly(ch, msg.deliveryTag);
          this.acks.settled(ch, msg.deliveryTag);
        });
      return;
    }
    const message = toWireMessage(frame);
    const id = message.headers.id;
    const replyTo = message.properties.reply_to;
    if (typeof id === 'string' && typeof replyTo === 'string' && replyTo !== '')
      this.replies.remember(id, replyTo);
    this.sequence += 1;
    const delivery: Delivery = {
      tag: `${this.sequence}`,
      queue,
      message,
      deliveryCount: before + 1,
      redelivered: before > 0,
    };
    consumer.offer(queue, msg.deliveryTag, () => {
      this.held.set(delivery.tag, { delivery, consumer, channel: ch, deliveryTag: msg.deliveryTag, frame });
      try {
        consumer.onDelivery(delivery);
      } catch (err) {
        this.log('error', 'amqp: consumer callback threw', { queue, error: String(err) });
      }
    });
  }

  /** Publishes a replacement of a delivery that is not handed out, then acks it (nack on failure). */
  private async relay(ch: Channel, msg: AsyncMessage, p: Publication): Promise<void> {
    try {
      await this.pub().send([p], true);
      ackQuietly(ch, msg.deliveryTag);
    } catch (err) {
      this.log('warn', 'amqp: could not relay a message; it stays in its queue', { error: String(err) });
      nackQuietly(ch, msg.deliveryTag);
    }
    this.acks.settled(ch, msg.deliveryTag);
  }

  // ------------------------------------------------------------------------------------------
  // settle

  private take(delivery: Delivery, what: string): Held {
    if (this.closed) throw new ClosedError(`amqp transport '${this.label}'`);
    const held = this.held.get(delivery.tag);
    if (!held || held.delivery !== delivery) {
      throw new CeleriacError(
        'ERR_SETTLED',
        `${what}: delivery '${delivery.tag}' of queue '${delivery.queue}' is not pending on this connection: it was ` +
          'already settled (ack, requeue, defer and deadLetter settle a delivery exactly once) or belongs to another connection',
      );
    }
    this.held.delete(delivery.tag);
    if (!held.channel.active || this.lostChannels.has(held.channel)) {
      held.consumer.settled(held.channel);
      throw new ConnectionError(
        `${what}: the channel of delivery '${delivery.tag}' (queue '${delivery.queue}') was lost; RabbitMQ has requeued the message and it will be delivered again`,
      );
    }
    return held;
  }

  /** Acks go out with the others of this turn (acks.ts); the credit comes back once it is written. */
  async ack(delivery: Delivery): Promise<void> {
    const held = this.take(delivery, 'ack');
    const acked = await this.acks.ack(held.channel, held.deliveryTag);
    held.consumer.settled(held.channel);
    if (!acked) {
      throw new ConnectionError(
        `ack: the channel of delivery '${delivery.tag}' (queue '${delivery.queue}') was lost; RabbitMQ has requeued the message and it will be delivered again`,
      );
    }
  }

  async requeue(delivery: Delivery): Promise<void> {
    const held = this.take(delivery, 'requeue');
    const headers = { ...cleanHeaders(held.frame), [H_DELIVERIES]: delivery.deliveryCount };
    await this.replace(held, rawEnvelope(held.frame, '', delivery.queue, headers));
  }

  async defer(delivery: Delivery, notBefore: number): Promise<void> {
    if (!Number.isFinite(notBefore))
      throw new PayloadError('notBefore', `expected epoch milliseconds, got ${notBefore}`);
    const held = this.take(delivery, 'defer');
    const headers = { ...cleanHeaders(held.frame), [H_DELIVERIES]: delivery.deliveryCount - 1 };
    const p = rawEnvelope(held.frame, '', delivery.queue, headers);
    const now = Date.now();
    const declarations = new Map<string, Promise<void>>();
    const out = notBefore - now >= 1 ? this.delayed(p, notBefore, now, declarations) : p;
    await this.declare(declarations);
    await this.replace(held, out);
  }

  async deadLetter(delivery: Delivery, reason: string): Promise<void> {
    const held = this.take(delivery, 'deadLetter');
    const headers = {
      ...cleanHeaders(held.frame),
      [H_REASON]: reason,
      [H_DEAD_AT]: Date.now(),
      [H_DEAD_ID]: randomUUID(),
      [H_DELIVERIES]: delivery.deliveryCount,
    };
    await this.declare(new Map([['dead', this.topology.deadQueue(delivery.queue)]]));
    const p = rawEnvelope(held.frame, '', deadQueue(delivery.queue), headers);
    const { expiration: _noTtl, ...envelope } = p.envelope;
    await this.replace(held, { envelope: { ...envelope, deliveryMode: 2 }, body: p.body });
  }

  /** Publishes the replacement (confirmed), then acks; if the publish fails the message is nacked back. */
  private async replace(held: Held, p: Publication): Promise<void> {
    try {
      await this.pub().send([p], true);
    } catch (err) {
      nackQuietly(held.channel, held.deliveryTag);
      this.acks.settled(held.channel, held.deliveryTag);
      held.consumer.settled(held.channel);
      throw err;
    }
    const acked = ackQuietly(held.channel, held.deliveryTag);
    this.acks.settled(held.channel, held.deliveryTag);
    held.consumer.settled(held.channel);
    if (!acked) {
      throw new ConnectionError(
        `the channel of delivery '${held.delivery.tag}' was lost after its replacement was published: the message may be there twice`,
      );
    }
  }

  // ------------------------------------------------------------------------------------------
  // queues

  async depth(queue: string): Promise<number> {
    this.conn();
    return (await this.topology.messageCount(queue)) ?? 0;
  }

  async purge(queue: string): Promise<number> {
    this.conn();
    if ((await this.topology.messageCount(queue)) === null) return 0;
    return (await this.topology.run((ch) => ch.queuePurge({ queue }))).messageCount;
  }

  // ------------------------------------------------------------------------------------------
  // health and lifecycle

  health(): HealthReport {
    if (this.closed) return { status: 'unhealthy', reason: 'closed' };
    const conn = this.connection;
    if (conn && !conn.ready && !this.blocked) {
      this.downSince ??= Date.now();
      const down = Date.now() - this.downSince;
      const why = this.lastError ? `: ${this.lastError}` : '';
      const backlog = this.publisher?.backlog ?? 0;
      const waiting = backlog > 0 ? `; ${backlog} messages waiting to be published` : '';
      if (down > this.settings.unhealthyAfterMs)
        return {
          status: 'unhealthy',
          reason: `RabbitMQ unreachable for ${Math.round(down / 1000)}s${why}${waiting}`,
        };
      return { status: 'degraded', reason: `reconnecting to RabbitMQ${why}${waiting}` };
    }
    if (this.blocked)
      return { status: 'degraded', reason: `connection blocked by RabbitMQ: ${this.blocked}` };
    const recovering = [...this.consumers].map((c) => c.recovering).filter((r) => r !== undefined);
    if (recovering.length) return { status: 'degraded', reason: recovering.join('; ') };
    return { status: 'healthy' };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abortConnect?.();
    this.acks.flush();
    for (const c of this.consumers) await c.close();
    this.consumers.clear();
    this.held.clear();
    await this.fanout.close();
    await this.publisher?.close();
    await this.topology.close();
    const conn = this.connection;
    this.connection = undefined;
    if (conn) {
      // close() waits for every channel; a channel stuck on a dead socket must not hang us.
      const timer = setTimeout(() => conn.unsafeDestroy(), 2000);
      await conn.close().catch(() => conn.unsafeDestroy());
      clearTimeout(timer);
    }
  }

  /** For fault tests: the channels consumers currently consume on (not part of the Transport port). */
  consumerChannels(): Channel[] {
    return [...this.consumers].map((c) => c.currentChannel).filter((ch): ch is Channel => ch !== undefined);
  }
}

/** Node's codes for a server certificate that does not verify (retrying cannot help until the configuration changes). */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CERTIFICATE_CODES.has(code);
}

/** An error as one line: its code (when it has one) and message. */
function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}

/** Headers for the next hop of a delayed message: RabbitMQ's x-death history dropped, ours kept. */
function cleanForHop(frame: IncomingFrame): Record<string, unknown> {
  const out = cleanHeaders(frame);
  for (const k of [H_DELIVERIES, H_NOT_BEFORE])
    if (frame.headers?.[k] !== undefined) out[k] = frame.headers[k];
  return out;
}
