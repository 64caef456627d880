/** One part of a process that the controller starts and stops (a connection, the worker, the HTTP server…). */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  /** `timeoutMs` is what is left of the shutdown budget when this component's turn comes. */
  stop(timeoutMs: number): Promise<void>;
}

/**
 * Starts components in order and stops them in reverse, so each one starts after what it needs and
 * stops before it. A start that fails stops, in reverse, the ones already started, then rethrows.
 * A stop that fails is reported through `onError` and does not keep the others from stopping.
 *
 * @example
 * const lifecycle = new Lifecycle([connections, worker, http], (name, err) => log.error({ err }, name));
 * await lifecycle.start();
 * await lifecycle.stop(30_000);
 */
export class Lifecycle {
  readonly #components: readonly Component[];
  readonly #started: Component[] = [];
  readonly #onError: (component: string, err: unknown) => void;

  constructor(components: readonly Component[], onError: (component: string, err: unknown) => void) {
    this.#components = components;
    this.#onError = onError;
  }

  /** Names of the components started so far, in start order. */
  get started(): readonly string[] {
    return this.#started.map((c) => c.name);
  }

  async start(): Promise<void> {
    for (const component of this.#components) {
      try {
        await component.start();
      } catch (err) {
        await this.stop(0);
        throw err;
      }
      this.#started.push(component);
    }
  }

  /** Stops the started components in reverse order within `budgetMs` in all (each gets what is left). */
  async stop(budgetMs: number): Promise<void> {
    const deadline = Date.now() + budgetMs;
    while (this.#started.length) {
      const component = this.#started.pop() as Component;
      try {
        await component.stop(Math.max(0, deadline - Date.now()));
      } catch (err) {
        this.#onError(component.name, err);
      }
    }
  }
}
