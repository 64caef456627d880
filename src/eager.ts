import type { TaskError } from './errors.js';
import type { TaskState } from './results/meta.js';

/**
 * The outcome of `task.apply()`: the task ran in this process. `get()` returns the value or throws
 * the TaskError, like `AsyncResult.get()` but synchronously.
 */
export class EagerResult<T> {
  readonly id: string;
  readonly state: TaskState;
  readonly retries: number;
  readonly #value: T | undefined;
  readonly #error: TaskError | undefined;

  constructor(id: string, state: TaskState, retries: number, value: T | undefined, error?: TaskError) {
    this.id = id;
    this.state = state;
    this.retries = retries;
    this.#value = value;
    this.#error = error;
  }

  ready(): boolean {
    return true;
  }

  /** The value; throws the task's TaskError when it failed. */
  get(): T {
    if (this.#error) throw this.#error;
    return this.#value as T;
  }

  /** The error of a failed run, if any. */
  get error(): TaskError | undefined {
    return this.#error;
  }

  get successful(): boolean {
    return this.state === 'SUCCESS';
  }

  static failed<T>(id: string, retries: number, error: TaskError): EagerResult<T> {
    return new EagerResult<T>(
      id,
      error.excType === 'TaskRevokedError' ? 'REVOKED' : 'FAILURE',
      retries,
      undefined,
      error,
    );
  }
}
