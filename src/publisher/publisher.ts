import type { CircuitBreakerPolicy } from 'cockatiel';
import type { OutgoingMessage, Transport } from '../brokers/transport.js';
import type { SendRequest } from '../core.js';
import { ConnectionError } from '../errors.js';
import { buildTaskMessage, encodeTask } from '../messages/codec.js';
import { uuid4 } from '../messages/ids.js';
import { publishHeaders, withPublishSpan } from '../observability/tracing.js';
import type { Route, Router } from '../router/router.js';

/** Where a message went: the task id, queue and broker (by name). */
export interface Sent {
  id: string;
  queue: string;
  broker: string;
}

/** One message to publish, with the task's own queue and broker options for routing. */
export interface PublishItem {
  request: SendRequest;
  taskQueue?: string | undefined;
  taskBroker?: string | undefined;
}

/**
 * Turns send requests into Celery v2 messages and hands them to the transport. Coalescing into
 * pipelines and confirms are the transport's job; the publisher builds, routes and validates.
 */
export class Publisher {
  readonly #transport: (broker: string) => Promise<Transport>;
  readonly #router: Router;
  readonly #origin: string;
  readonly #replyTo: string;
  readonly #published = new Set<(messages: readonly OutgoingMessage[]) => void>();
  readonly #headerHooks = new Set<() => Record<string, unknown>>();
  /** One circuit breaker per broker: after 5 publishes in a row fail, publishing fails fast for 5 s. */
  readonly #breakers = new Map<string, CircuitBreakerPolicy>();

  constructor(
    transport: (broker: string) => Promise<Transport>,
    router: Router,
    identity: { origin: string; replyTo: string },
  ) {
    this.#transport = transport;
    this.#router = router;
    this.#origin = identity.origin;
    this.#replyTo = identity.replyTo;
  }

  /** Publishes one task message. */
  async publish(request: SendRequest, taskQueue?: string, taskBroker?: string): Promise<Sent> {
    const [sent] = await this.publishMany([{ request, taskQueue, taskBroker }]);
    return sent as Sent;
  }

  /**
   * Publishes several messages at once: all or none on each broker (one atomic batch there). When
   * the messages go to several brokers, each broker's batch is atomic on its own.
   */
  async publishMany(items: readonly PublishItem[]): Promise<Sent[]> {
    // A `publish <task>` span when OpenTelemetry is on; its traceparent goes into the headers (build()).
    return withPublishSpan(
      items.map((i) => i.request.name),
      items[0]?.request.headers,
      async () => {
        const routes = items.map((i) =>
          this.#router.route(i.request.name, i.request.queue, i.taskQueue, i.taskBroker),
        );
        const brokers = [...new Set(routes.map((r) => r.broker))];
        const transports = new Map(
          await Promise.all(brokers.map(async (b) => [b, await this.#transport(b)] as const)),
        );
        const batches = new Map<string, OutgoingMessage[]>(brokers.map((b) => [b, []]));
        const sent: Sent[] = [];
        for (const [i, { request }] of items.entries()) {
          const route = routes[i] as Route;
          const transport = transports.get(route.broker) as Transport;
          const built = this.build(request, route.queue, transport.defaultPriority ?? 0);
          batches.get(route.broker)?.push(built);
          sent.push({ id: built.message.headers.id as string, queue: built.queue, broker: route.broker });
        }
        await Promise.all(
          [...batches].map(([b, out]) =>
            this.#guarded(b, () => (transports.get(b) as Transport).publish(out)),
          ),
        );
        for (const out of batches.values()) for (const listener of this.#published) listener(out);
        return sent;
      },
    );
  }

  /**
   * Calls `listener` with each batch once the broker has it (task-sent monitoring events, metrics).
   * Returns a function that removes it. A listener must not throw.
   */
  onPublished(listener: (messages: readonly OutgoingMessage[]) => void): () => void {
    this.#published.add(listener);
    return () => {
      this.#published.delete(listener);
    };
  }

  /**
   * Adds the headers `hook` returns to every message built from now on (opt-in extras such as the
   * send time; a message without hooks is exactly Celery's). Returns a function that removes it.
   */
  addHeaders(hook: () => Record<string, unknown>): () => void {
    this.#headerHooks.add(hook);
    return () => {
      this.#headerHooks.delete(hook);
    };
  }

  /** Builds the wire message for a request to `queue` (throws PayloadError for what JSON cannot carry). */
  build(request: SendRequest, queue: string, defaultPriority = 0): OutgoingMessage {
    const id = request.taskId ?? uuid4();
    const message = buildTaskMessage({
      id,
      task: request.name,
      args: request.args,
      kwargs: request.kwargs,
      eta: request.eta,
      expires: request.expires,
      priority: request.priority ?? defaultPriority,
      retries: request.retries ?? 0,
      timelimit: request.timelimit,
      rootId: request.rootId ?? id,
      parentId: request.parentId ?? null,
      group: request.group ?? null,
      groupIndex: request.groupIndex ?? null,
      shadow: request.shadow,
      ignoreResult: request.ignoreResult,
      headers: publishHeaders(this.#withHooks(request.headers ?? {})),
      callbacks: request.embed?.callbacks ?? null,
      errbacks: request.embed?.errbacks ?? null,
      chain: request.embed?.chain ?? null,
      chord: request.embed?.chord ?? null,
      replyTo: request.replyTo ?? this.#replyTo,
      origin: this.#origin,
    });
    return { queue, message: encodeTask(message) };
  }

  /**
   * Publishes through the broker's circuit breaker (cockatiel): while a broker keeps failing, callers
   * get a ConnectionError at once instead of each waiting for its own timeout; after the pause one
   * publish is let through to test it.
   */
  async #guarded(broker: string, publish: () => Promise<void>): Promise<void> {
    const breaker = this.#breakers.get(broker);
    if (!breaker) {
      // No breaker until a broker first fails: cockatiel is loaded then, not in every idle worker.
      try {
        return await publish();
      } catch (err) {
        const created = await newBreaker();
        this.#breakers.set(broker, created);
        await created.execute(() => Promise.reject(err)).catch(() => {}); // that failure counts
        throw err;
      }
    }
    try {
      await breaker.execute(publish);
    } catch (err) {
      if ((err as { isBrokenCircuitError?: boolean }).isBrokenCircuitError === true) {
        throw new ConnectionError(
          `broker '${broker}' is failing: 5 publishes in a row failed, so publishing fails fast for 5 s before trying again`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  #withHooks(headers: Record<string, unknown>): Record<string, unknown> {
    if (!this.#headerHooks.size) return headers;
    const out = { ...headers };
    for (const hook of this.#headerHooks) Object.assign(out, hook());
    return out;
  }
}

/** Opens after 5 failed publishes in a row; lets one through after 5 s (cockatiel, loaded on first use). */
async function newBreaker(): Promise<CircuitBreakerPolicy> {
  const { circuitBreaker, ConsecutiveBreaker, handleAll } = await import('cockatiel');
  return circuitBreaker(handleAll, { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(5) });
}
