import type { Transport } from '../../brokers/transport.js';
import { ConfigError } from '../../errors.js';
import type { ResultSink } from '../../results/sink.js';
import type { PoolRun } from '../pool.js';
import type { HostCalls, HostMethod, HostStream, HostStreams, ToChild, ToParent } from './protocol.js';
import { toWireError } from './protocol.js';

type Handlers = {
  [K in HostMethod]: (signal: AbortSignal, ...args: Parameters<HostCalls[K]>) => ReturnType<HostCalls[K]>;
};
type StreamHandlers = {
  [K in HostStream]: (
    emit: (value: HostStreams[K][1]) => void,
    ...args: HostStreams[K][0]
  ) => Promise<() => Promise<void>>;
};

/**
 * The main worker's side of one thread's or child's link: makes the calls its proxies forward on the
 * worker's own transport and sink, and `ctx.updateState` through the run's `updateState` (so the
 * worker's rules, such as ignore_result, apply). `dispose()` when the thread or child is gone.
 */
export class HostServer {
  readonly #send: (message: ToChild) => void;
  readonly #runs: ReadonlyMap<number, PoolRun>;
  readonly #calls = new Map<number, AbortController>();
  readonly #streams = new Map<number, Promise<(() => Promise<void>) | null>>();
  readonly #handlers: Handlers;
  readonly #streamHandlers: StreamHandlers;

  constructor(
    transport: Transport,
    sink: ResultSink | null,
    runs: ReadonlyMap<number, PoolRun>,
    send: (message: ToChild) => void,
  ) {
    this.#send = send;
    this.#runs = runs;
    const needSink = (): ResultSink => {
      if (!sink) throw new ConfigError('results', 'the main worker has no result sink');
      return sink;
    };
    const fanout = () => {
      if (!transport.fanout) throw new ConfigError('broker', `${transport.kind}:// has no fanout`);
      return transport.fanout;
    };
    const revocations = () => {
      if (!transport.revocations)
        throw new ConfigError('broker', `${transport.kind}:// keeps no revocations`);
      return transport.revocations;
    };
    this.#handlers = {
      'transport.publish': async (_s, messages) => transport.publish(messages),
      'transport.depth': async (_s, queue) => transport.depth(queue),
      'transport.purge': async (_s, queue) => transport.purge(queue),
      'deadLetters.list': async (_s, queue, options) => transport.deadLetters.list(queue, options),
      'deadLetters.replay': async (_s, queue, options) => transport.deadLetters.replay(queue, options),
      'deadLetters.purge': async (_s, queue) => transport.deadLetters.purge(queue),
      'subscriptions.add': async (_s, event, sub) => transport.subscriptions.add(event, sub),
      'subscriptions.remove': async (_s, event, sub) => transport.subscriptions.remove(event, sub),
      'subscriptions.list': async (_s, event) => transport.subscriptions.list(event),
      'fanout.publish': async (_s, exchange, key, message) => fanout().publish(exchange, key, message),
      'revocations.add': async (_s, ids, expiresAt) => revocations().add(ids, expiresAt),
      'revocations.list': async () => revocations().list(),
      'sink.store': async (_s, meta, options) => needSink().store(meta, options),
      'sink.get': async (_s, id) => needSink().get(id),
      'sink.wait': async (signal, id) => needSink().wait(id, { signal }),
      'sink.forget': async (_s, id) => needSink().forget(id),
      'sink.incr': async (_s, key, by, options) => needSink().incr(key, by, options),
      'run.updateState': async (_s, runId, state, meta) => {
        const run = this.#runs.get(runId);
        if (!run) throw new Error(`updateState after task run ${runId} ended`);
        await run.updateState(state, meta);
      },
    };
    this.#streamHandlers = {
      'sink.watch': (emit, id) => needSink().watch(id, emit),
      'fanout.subscribe': (emit, exchange, key) =>
        fanout().subscribe(exchange, key, (message, routingKey) => emit([message, routingKey])),
    };
  }

  /** Handles a message from the thread or child; returns false when it is not a call. */
  receive(message: ToParent): boolean {
    switch (message.t) {
      case 'call':
        void this.#call(message.cid, message.method, message.args);
        return true;
      case 'cancel':
        this.#calls.get(message.cid)?.abort(new Error('cancelled'));
        return true;
      case 'subscribe':
        this.#subscribe(message.cid, message.method, message.args);
        return true;
      case 'unsubscribe':
        void this.#unsubscribe(message.cid);
        return true;
      default:
        return false;
    }
  }

  /** The thread or child is gone: cancel its calls, close its subscriptions. */
  async dispose(): Promise<void> {
    for (const c of this.#calls.values()) c.abort(new Error('pool thread or child gone'));
    this.#calls.clear();
    await Promise.all([...this.#streams.keys()].map((cid) => this.#unsubscribe(cid)));
  }

  async #call(cid: number, method: HostMethod, args: unknown[]): Promise<void> {
    const controller = new AbortController();
    this.#calls.set(cid, controller);
    const handler = this.#handlers[method] as
      | ((signal: AbortSignal, ...args: unknown[]) => Promise<unknown>)
      | undefined;
    let reply: ToChild;
    try {
      if (!handler) throw new Error(`unknown pool call '${String(method)}'`);
      reply = { t: 'reply', cid, ok: true, value: await handler(controller.signal, ...args) };
    } catch (err) {
      reply = { t: 'reply', cid, ok: false, error: toWireError(err) };
    }
    if (!this.#calls.delete(cid) || controller.signal.aborted) return;
    try {
      this.#send(reply);
    } catch (err) {
      // The value cannot cross (or the thread or child is gone): say so rather than leave it waiting.
      this.#trySend({ t: 'reply', cid, ok: false, error: toWireError(err) });
    }
  }

  #subscribe(cid: number, method: HostStream, args: unknown[]): void {
    const handler = this.#streamHandlers[method] as
      | ((emit: (value: unknown) => void, ...args: unknown[]) => Promise<() => Promise<void>>)
      | undefined;
    const emit = (value: unknown) => this.#trySend({ t: 'event', cid, value });
    const opened = (async () => {
      if (!handler) throw new Error(`unknown pool subscription '${String(method)}'`);
      return handler(emit, ...args);
    })();
    this.#streams.set(
      cid,
      opened.catch(() => null),
    );
    opened.then(
      () => this.#trySend({ t: 'reply', cid, ok: true, value: null }),
      (err: unknown) => {
        this.#streams.delete(cid);
        this.#trySend({ t: 'reply', cid, ok: false, error: toWireError(err) });
      },
    );
  }

  async #unsubscribe(cid: number): Promise<void> {
    const stream = this.#streams.get(cid);
    this.#streams.delete(cid);
    const unsubscribe = await stream;
    await unsubscribe?.().catch(() => {});
  }

  #trySend(message: ToChild): void {
    try {
      this.#send(message);
    } catch {
      // The thread or child is gone, or the value cannot cross: the call there is abandoned.
    }
  }
}
