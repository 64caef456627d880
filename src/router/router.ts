import type { ResolvedConfig } from '../config.js';
import { ConfigError } from '../errors.js';

/** Where a message goes: a broker (by name) and a queue on it. */
export interface Route {
  broker: string;
  queue: string;
}

/**
 * The CEP's Router: maps a task name to the broker and queue its messages go to. Queue: the call's
 * `queue`, else the task's own, else the first matching route, else the default queue. Broker: the
 * task's `broker`, else the matching route's, else the broker that consumes that queue (from routes
 * and task options), else `default`.
 *
 * @example
 * new Router(config).route('emails.send') // { broker: 'rabbit', queue: 'emails' } with routes { 'emails.*': { queue: 'emails', broker: 'rabbit' } }
 */
export class Router {
  readonly #config: Pick<ResolvedConfig, 'routes' | 'defaultQueue' | 'brokers'>;
  readonly #cache = new Map<string, { queue: string; broker: string | undefined }>();
  /** Queue → broker, learnt from routes and registered tasks. */
  readonly #queueBrokers = new Map<string, string>();

  constructor(config: Pick<ResolvedConfig, 'routes' | 'defaultQueue' | 'brokers'>) {
    this.#config = config;
    for (const r of config.routes) if (r.broker) this.#bindQueue(r.queue, r.broker, `route '${r.source}'`);
  }

  /** Records that a task's queue lives on a broker (called for each registered task with `broker`). */
  registerTask(name: string, options: { queue?: string | undefined; broker?: string | undefined }): void {
    if (options.broker === undefined) return;
    if (!(options.broker in this.#config.brokers)) {
      throw new ConfigError(
        `task ${name}: broker`,
        `unknown broker '${options.broker}' (expected one of ${Object.keys(this.#config.brokers).join(', ')})`,
      );
    }
    this.#bindQueue(options.queue ?? this.#byName(name).queue, options.broker, `task ${name}`);
  }

  route(taskName: string, callQueue?: string, taskQueue?: string, taskBroker?: string): Route {
    const named = this.#byName(taskName);
    const queue = callQueue || taskQueue || named.queue;
    const broker = taskBroker ?? named.broker ?? this.brokerOfQueue(queue);
    return { broker, queue };
  }

  queueFor(taskName: string, ...explicit: Array<string | undefined>): string {
    for (const queue of explicit) if (queue) return queue;
    return this.#byName(taskName).queue;
  }

  /** The broker a queue lives on (`default` unless routes or tasks place it elsewhere). */
  brokerOfQueue(queue: string): string {
    return this.#queueBrokers.get(queue) ?? 'default';
  }

  #byName(taskName: string): { queue: string; broker: string | undefined } {
    let hit = this.#cache.get(taskName);
    if (hit === undefined) {
      const route = this.#config.routes.find((r) => r.pattern.test(taskName));
      hit = { queue: route?.queue ?? this.#config.defaultQueue, broker: route?.broker };
      this.#cache.set(taskName, hit);
    }
    return hit;
  }

  #bindQueue(queue: string, broker: string, by: string): void {
    const known = this.#queueBrokers.get(queue);
    if (known !== undefined && known !== broker) {
      throw new ConfigError(
        'routes',
        `${by} puts queue '${queue}' on broker '${broker}', but it is already on '${known}'`,
      );
    }
    this.#queueBrokers.set(queue, broker);
  }
}
