import { ClosedError, ConfigError, PayloadError } from '../../errors.js';
import type { HealthReport } from '../../health.js';
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
import type { Connection, MemoryBroker } from './broker.js';
import { MemoryFanout } from './fanout.js';
import { acquireBroker, releaseBroker } from './registry.js';
import { MemoryRevocations } from './revocations.js';

/**
 * One connection to an in-process memory broker (see `index.ts` for how brokers are named and shared).
 * Deliveries belong to the transport that received them: `close()` gives its unsettled ones back.
 *
 * @example
 * const transport = new MemoryTransport('', {});
 * await transport.publish([{ queue: 'celery', message }]);
 * await transport.consume(['celery'], (d) => void transport.ack(d), { prefetch: 10 });
 */
export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly shared = false;
  readonly deadLetters: DeadLetterStore;
  readonly subscriptions: SubscriptionRegistry;
  readonly fanout = new MemoryFanout(() => this.open().broker);
  readonly revocations = new MemoryRevocations(() => this.open().broker);
  private broker: MemoryBroker | undefined;
  private connection: Connection | undefined;
  private closed = false;

  /** `name` is the URL host; no broker is touched until first use (no I/O in constructors). */
  constructor(
    private readonly name: string,
    private readonly options: TransportOptions,
  ) {
    this.deadLetters = {
      list: async (queue, opts) => this.open().broker.deadLetters.list(queue, opts?.limit),
      replay: async (queue, opts) => this.open().broker.deadLetters.replay(queue, opts?.ids),
      purge: async (queue) => this.open().broker.deadLetters.purge(queue),
    } satisfies DeadLetterStore;
    this.subscriptions = {
      add: async (event, sub) => this.open().broker.subscriptions.add(event, sub),
      remove: async (event, sub) => this.open().broker.subscriptions.remove(event, sub),
      list: async (event) => this.open().broker.subscriptions.list(event),
    } satisfies SubscriptionRegistry;
  }

  async connect(): Promise<void> {
    this.open();
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    const { broker } = this.open();
    // Validate the whole batch first: a bad entry must not leave the others half-published.
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
    broker.publish(messages);
  }

  async consume(
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    const { broker, connection } = this.open();
    if (queues.length === 0 || queues.some((q) => typeof q !== 'string' || q === '')) {
      throw new ConfigError(
        'queues',
        `expected one or more non-empty queue names, got ${JSON.stringify(queues)}`,
      );
    }
    checkPrefetch(options.prefetch);
    const state = broker.addConsumer(connection, [...new Set(queues)], options.prefetch, onDelivery);
    return {
      setPrefetch: (prefetch) => {
        checkPrefetch(prefetch);
        if (state.active) broker.setPrefetch(state, prefetch);
      },
      cancel: async () => {
        broker.cancelConsumer(state);
      },
    };
  }

  async ack(delivery: Delivery): Promise<void> {
    const { broker, connection } = this.open();
    broker.ack(connection, delivery);
  }

  async requeue(delivery: Delivery): Promise<void> {
    const { broker, connection } = this.open();
    broker.requeue(connection, delivery);
  }

  async defer(delivery: Delivery, notBefore: number): Promise<void> {
    const { broker, connection } = this.open();
    if (!Number.isFinite(notBefore))
      throw new PayloadError('notBefore', `expected epoch milliseconds, got ${notBefore}`);
    broker.defer(connection, delivery, notBefore);
  }

  async deadLetter(delivery: Delivery, reason: string): Promise<void> {
    const { broker, connection } = this.open();
    broker.deadLetter(connection, delivery, reason);
  }

  async depth(queue: string): Promise<number> {
    return this.open().broker.depth(queue);
  }

  async purge(queue: string): Promise<number> {
    return this.open().broker.purge(queue);
  }

  health(): HealthReport {
    return this.closed ? { status: 'unhealthy', reason: 'closed' } : { status: 'healthy' };
  }

  /** Idempotent. Unsettled deliveries go back to the head of their queues; the last close frees the broker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.broker && this.connection) {
      this.broker.disconnect(this.connection);
      releaseBroker(this.name, this.broker);
    }
    this.broker = undefined;
    this.connection = undefined;
  }

  private open(): { broker: MemoryBroker; connection: Connection } {
    if (this.closed) throw new ClosedError(`memory transport 'memory://${this.name}'`);
    if (!this.broker || !this.connection) {
      this.broker = acquireBroker(this.name);
      this.connection = this.broker.connect((error, delivery) => this.report(error, delivery));
    }
    return { broker: this.broker, connection: this.connection };
  }

  private report(error: unknown, delivery: Delivery): void {
    const fields = { queue: delivery.queue, tag: delivery.tag, error: String(error) };
    if (this.options.log) this.options.log('error', 'memory transport: consumer callback threw', fields);
    else
      process.emitWarning(`memory transport: consumer callback threw on ${delivery.queue}: ${String(error)}`);
  }
}
