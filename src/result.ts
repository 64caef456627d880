import type { AppCore } from './core.js';
import type { Duration } from './duration.js';
import { toMs } from './duration.js';
import { NoResultSinkError, TimeoutError } from './errors.js';
import { toTaskError } from './results/exceptions.js';
import type { ResultMeta, TaskState } from './results/meta.js';
import { READY_STATES } from './results/meta.js';
import type { ResultSink } from './results/sink.js';

/**
 * A handle on a task's result, read from the app's result sink. `state()`, `ready()` and `info()`
 * read the sink once; `get()` waits for a ready state on a notification, never polling.
 *
 * @example
 * const r = await add.delay(2, 3);
 * await r.get({ timeout: '5s' }) // 5
 */
export class AsyncResult<T = unknown> {
  readonly id: string;
  readonly #core: AppCore;

  /** @internal use `task.delay()` or `app.asyncResult(id)`. */
  constructor(core: AppCore, id: string) {
    this.#core = core;
    this.id = id;
  }

  async #sink(): Promise<ResultSink> {
    const sink = await this.#core.sink();
    if (!sink) throw new NoResultSinkError();
    return sink;
  }

  /** The stored meta (Celery's result document), or null while PENDING. */
  async info(): Promise<ResultMeta | null> {
    return (await this.#sink()).get(this.id);
  }

  /** PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, or a custom progress state. */
  async state(): Promise<TaskState> {
    return (await this.info())?.status ?? 'PENDING';
  }

  /** True once the task reached SUCCESS, FAILURE or REVOKED. */
  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  /**
   * Waits for the task to finish and returns its value. Throws a TaskError (with Celery's exc_type,
   * exc_message and traceback) when it failed or was revoked, a TimeoutError after `timeout`, and a
   * NoResultSinkError at once when the app has no result sink.
   */
  async get(options: { timeout?: Duration; signal?: AbortSignal } = {}): Promise<T> {
    const sink = await this.#sink();
    const signals: AbortSignal[] = [];
    const timeoutMs = options.timeout === undefined ? undefined : toMs(options.timeout, 'timeout');
    if (timeoutMs !== undefined) signals.push(AbortSignal.timeout(timeoutMs));
    if (options.signal) signals.push(options.signal);
    const signal = signals.length ? AbortSignal.any(signals) : undefined;
    let meta: ResultMeta;
    try {
      meta = await sink.wait(this.id, signal ? { signal } : {});
    } catch (err) {
      if (timeoutMs !== undefined && signal?.aborted && !options.signal?.aborted) {
        throw new TimeoutError(
          `task ${this.id} was not ready within ${timeoutMs} ms (state: ${await this.state()})`,
        );
      }
      throw err;
    }
    if (meta.status === 'SUCCESS') return meta.result as T;
    throw toTaskError(meta);
  }

  /** Calls `listener` with each state stored from now on (progress, retries, the end). Returns a stop function. */
  async watch(listener: (meta: ResultMeta) => void): Promise<() => Promise<void>> {
    return (await this.#sink()).watch(this.id, listener);
  }

  /** Deletes the stored result. */
  async forget(): Promise<void> {
    await (await this.#sink()).forget(this.id);
  }
}
