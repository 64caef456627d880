/**
 * The app's transport and result sink inside a pool thread or child: each call is forwarded to the
 * main worker, which makes it on the broker connections it already holds (DESIGN.md §2: tasks in
 * pools publish, retry and report state through the main worker). A thread or child never opens a
 * broker connection of its own, so this works for memory:// too.
 */
import type {
  Consumer,
  DeadLetterStore,
  Delivery,
  Fanout,
  OutgoingMessage,
  RevocationStore,
  SubscriptionRegistry,
  Transport,
} from '../../brokers/transport.js';
import { ConfigError } from '../../errors.js';
import type { HealthReport } from '../../health.js';
import type { ResultMeta } from '../../results/meta.js';
import type { ResultSink } from '../../results/sink.js';
import type { HostClient } from './host-client.js';
import type { BootInfo } from './protocol.js';

function notHere(what: string): never {
  throw new ConfigError(
    'pool',
    `${what} is not available inside a threads/process pool task: tasks there publish and read results through the main worker only`,
  );
}

/** Transport proxy: publishing and the broker's stores work; consuming and settling belong to the main worker. */
export class ProxyTransport implements Transport {
  readonly kind: string;
  readonly shared: boolean;
  readonly defaultPriority: number;
  readonly deadLetters: DeadLetterStore;
  readonly subscriptions: SubscriptionRegistry;
  readonly fanout?: Fanout;
  readonly revocations?: RevocationStore;
  readonly #host: HostClient;

  constructor(host: HostClient, info: BootInfo['transport']) {
    this.#host = host;
    this.kind = info.kind;
    this.shared = info.shared;
    this.defaultPriority = info.defaultPriority;
    this.deadLetters = {
      list: (queue, options) => host.call('deadLetters.list', [queue, options]),
      replay: (queue, options) => host.call('deadLetters.replay', [queue, options]),
      purge: (queue) => host.call('deadLetters.purge', [queue]),
    };
    this.subscriptions = {
      add: (event, sub) => host.call('subscriptions.add', [event, sub]),
      remove: (event, sub) => host.call('subscriptions.remove', [event, sub]),
      list: (event) => host.call('subscriptions.list', [event]),
    };
    if (info.fanout)
      this.fanout = {
        publish: (exchange, routingKey, message) =>
          host.call('fanout.publish', [exchange, routingKey, message]),
        subscribe: (exchange, bindingKey, onMessage) =>
          host.subscribe('fanout.subscribe', [exchange, bindingKey], ([message, key]) =>
            onMessage(message, key),
          ),
      };
    if (info.revocations)
      this.revocations = {
        add: (ids, expiresAt) => host.call('revocations.add', [[...ids], expiresAt]),
        list: () => host.call('revocations.list', []),
      };
  }

  async connect(): Promise<void> {}

  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    return this.#host.call('transport.publish', [[...messages]]);
  }

  consume(): Promise<Consumer> {
    return notHere('consume()');
  }

  ack(_delivery: Delivery): Promise<void> {
    return notHere('ack()');
  }

  requeue(_delivery: Delivery): Promise<void> {
    return notHere('requeue()');
  }

  defer(_delivery: Delivery, _notBefore: number): Promise<void> {
    return notHere('defer()');
  }

  deadLetter(_delivery: Delivery, _reason: string): Promise<void> {
    return notHere('deadLetter()');
  }

  depth(queue: string): Promise<number> {
    return this.#host.call('transport.depth', [queue]);
  }

  purge(queue: string): Promise<number> {
    return this.#host.call('transport.purge', [queue]);
  }

  health(): HealthReport {
    return { status: 'healthy', reason: 'through the main worker' };
  }

  async close(): Promise<void> {}
}

/** Result sink proxy: every call is made by the main worker's sink. */
export class ProxySink implements ResultSink {
  readonly kind: string;
  readonly shared: boolean;
  readonly #host: HostClient;

  constructor(host: HostClient, info: NonNullable<BootInfo['sink']>) {
    this.#host = host;
    this.kind = info.kind;
    this.shared = info.shared;
  }

  async connect(): Promise<void> {}

  store(meta: ResultMeta, options: { expiresMs: number }): Promise<void> {
    return this.#host.call('sink.store', [meta, { expiresMs: options.expiresMs }]);
  }

  get(taskId: string): Promise<ResultMeta | null> {
    return this.#host.call('sink.get', [taskId]);
  }

  wait(taskId: string, options: { signal?: AbortSignal }): Promise<ResultMeta> {
    return this.#host.call('sink.wait', [taskId], options.signal);
  }

  watch(taskId: string, listener: (meta: ResultMeta) => void): Promise<() => Promise<void>> {
    return this.#host.subscribe('sink.watch', [taskId], listener);
  }

  forget(taskId: string): Promise<void> {
    return this.#host.call('sink.forget', [taskId]);
  }

  incr(key: string, by: number, options: { expiresMs: number }): Promise<number> {
    return this.#host.call('sink.incr', [key, by, { expiresMs: options.expiresMs }]);
  }

  health(): HealthReport {
    return { status: 'healthy', reason: 'through the main worker' };
  }

  async close(): Promise<void> {}
}
