import type { ResolvedConfig } from '../config.js';

/**
 * Maps a task name to the queue its messages go to: the call's `queue`, else the task's own, else
 * the first matching route, else the default queue. (Several brokers at once hang off this seam.)
 *
 * @example
 * new Router(config).queueFor('emails.send') // 'emails' with routes { 'emails.*': { queue: 'emails' } }
 */
export class Router {
  readonly #config: Pick<ResolvedConfig, 'routes' | 'defaultQueue'>;
  readonly #cache = new Map<string, string>();

  constructor(config: Pick<ResolvedConfig, 'routes' | 'defaultQueue'>) {
    this.#config = config;
  }

  queueFor(taskName: string, ...explicit: Array<string | undefined>): string {
    for (const queue of explicit) if (queue) return queue;
    let queue = this.#cache.get(taskName);
    if (queue === undefined) {
      queue = this.#config.routes.find((r) => r.pattern.test(taskName))?.queue ?? this.#config.defaultQueue;
      this.#cache.set(taskName, queue);
    }
    return queue;
  }
}
