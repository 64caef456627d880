import type { AppCore } from './core.js';
import type { SignatureJson } from './messages/types.js';
import type { AsyncResult } from './result.js';
import { toSendRequest } from './send-request.js';
import type { ApplyOptions } from './task.js';

/**
 * A task with (partial) args and options, not yet sent: the unit of workflows and `link`.
 * Serialized in Celery's signature shape, so Python workers can apply it too.
 *
 * @example
 * await add.applyAsync({ args: [2, 3], link: mul.s(10) }) // mul(5, 10) runs after add
 */
export class Signature<R = unknown> {
  readonly task: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly options: Readonly<Record<string, unknown>>;
  readonly immutable: boolean;
  readonly #core: AppCore;

  /** @internal use `task.s()` or `app.signature()`. */
  constructor(
    core: AppCore,
    task: string,
    args: unknown[],
    kwargs: Record<string, unknown>,
    options: Record<string, unknown>,
    immutable = false,
  ) {
    this.#core = core;
    this.task = task;
    this.args = args;
    this.kwargs = kwargs;
    this.options = options;
    this.immutable = immutable;
  }

  /** Sends the task with the signature's args followed by `args` (partial application, as Celery). */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync({ args });
  }

  applyAsync(options: ApplyOptions<readonly unknown[]> = {}): Promise<AsyncResult<R>> {
    const args = this.immutable ? [...this.args] : [...this.args, ...(options.args ?? [])];
    const kwargs = { ...this.kwargs, ...(options.kwargs ?? {}) };
    const request = toSendRequest(
      this.task,
      { ...options, args, kwargs },
      this.#core.tasks.get(this.task)?.options,
    );
    return this.#core.send(request) as Promise<AsyncResult<R>>;
  }

  /** The same signature with its args frozen: results of a previous step are not prepended. */
  si(): Signature<R> {
    return new Signature<R>(
      this.#core,
      this.task,
      [...this.args],
      { ...this.kwargs },
      { ...this.options },
      true,
    );
  }

  /** Celery's wire shape. */
  toJSON(): SignatureJson {
    return {
      task: this.task,
      args: [...this.args],
      kwargs: { ...this.kwargs },
      options: { ...this.options },
      subtask_type: null,
      immutable: this.immutable,
    };
  }
}
