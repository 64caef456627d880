import type { TaskContext } from './context.js';
import type { AppCore } from './core.js';
import type { Duration } from './duration.js';
import type { EagerResult } from './eager.js';
import type { AsyncResult } from './result.js';
import type { StandardSchemaV1 } from './schema.js';
import { toSendRequest } from './send-request.js';
import { Signature } from './signature.js';
import type { PoolKind } from './worker/pool.js';
import type { Rate } from './worker/rate-limit.js';

/** How a task retries. `max` retries after the first run; delays grow from `base` up to `cap`. */
export interface RetryPolicy {
  /** Retries after the first run. Default 3. */
  max?: number;
  /** `exponential` (default): base · 2^retries; `fixed`: base every time. */
  backoff?: 'fixed' | 'exponential';
  /** First delay. Default 1s. */
  base?: Duration;
  /** Longest delay. Default 10m. */
  cap?: Duration;
  /** Jitter: a random delay between half the computed one and all of it, so retries do not stampede. Default true. */
  jitter?: boolean;
}

/** A class of errors, for `autoretryFor`. */
// biome-ignore lint/suspicious/noExplicitAny: constructor parameter lists of arbitrary error classes
export type ErrorClass = abstract new (...args: any[]) => Error;

export interface TaskOptions {
  /** Queue the task is sent to unless a call names another. Default: routes, then `defaultQueue`. */
  queue?: string;
  /** Broker (by name in config `brokers`) the task is sent to; default: its route's, else `default`. */
  broker?: string;
  /** Default priority, 0–9, 9 the most urgent. */
  priority?: number;
  /** Retry policy used by `ctx.retry()` and `autoretryFor`. */
  retry?: RetryPolicy;
  /** Errors (by class) that retry the task automatically under `retry`. */
  autoretryFor?: readonly ErrorClass[];
  /** Store no result (Celery's `ignore_result`): for tasks whose result nobody reads. */
  ignoreResult?: boolean;
  /** Names of the positional parameters: keyword args sent by Python callers are mapped onto them. */
  params?: readonly string[];
  /** A Standard Schema for the args tuple: a bad call is refused at `delay()`, a bad message dead-lettered. */
  argsSchema?: StandardSchemaV1;
  /** Pass the task context as the first argument (Celery's `bind=True`). */
  bind?: boolean;
  /** Soft limit: the signal aborts with SoftTimeLimitExceeded. Hard limit: the task fails with TimeLimitExceeded. */
  timeLimit?: { soft?: Duration; hard?: Duration };
  /** Ack after the task finishes (default true, at-least-once); false acks before running (at-most-once). */
  acksLate?: boolean;
  /** Store STARTED when the task starts. Default: the app's `trackStarted`. */
  trackStarted?: boolean;
  /** Run on this pool instead of the worker's default: `threads` for CPU work, `process` for isolation and hard kills. */
  pool?: PoolKind;
  /** At most this many starts per second on each worker (Celery's `rate_limit`): a number, or `'100/s'`, `'10/m'`, `'5/h'`. */
  rateLimit?: Rate;
}

/** Options of one call (Celery's `apply_async`). Durations in ms or with a unit; `eta` and `expires` also take a Date. */
export interface ApplyOptions<A extends readonly unknown[] = unknown[]> {
  args?: A;
  kwargs?: Record<string, unknown>;
  /** Run no earlier than this long from now. */
  countdown?: Duration;
  /** Run no earlier than this time. */
  eta?: Date | string | number;
  /** Do not run after this: a Date, or a duration from now. An expired task is REVOKED, not run. */
  expires?: Date | Duration;
  /** 0–9, 9 the most urgent. */
  priority?: number;
  queue?: string;
  /** Use this id instead of a new uuid4. */
  taskId?: string;
  /** Extra message headers. */
  headers?: Record<string, unknown>;
  ignoreResult?: boolean;
  /** Another name for logs (Celery's `shadow`). */
  shadow?: string;
  /** Signatures to apply with this task's result when it succeeds (Celery's `link`). */
  link?: Signature | readonly Signature[];
  /** Signatures to apply with this task's id when it fails (Celery's `link_error`). */
  linkError?: Signature | readonly Signature[];
  timeLimit?: { soft?: Duration; hard?: Duration };
}

/** A handler's positional parameters; `bind: true` handlers have the context in front. */
export type AnyHandler = (...args: never[]) => unknown;

/**
 * A task: a named handler that workers run. Created by `app.task(name, handler, options)`; its
 * argument and result types come from the handler.
 *
 * @example
 * const add = app.task('tasks.add', async (a: number, b: number) => a + b);
 * const r = await add.delay(2, 3); // AsyncResult<number>
 */
export class Task<A extends unknown[] = unknown[], R = unknown> {
  readonly name: string;
  readonly options: Readonly<TaskOptions>;
  /** @internal the handler as given (with the context first when `bind`). */
  readonly handler: (...args: unknown[]) => unknown;
  readonly #core: AppCore;

  /** @internal use `app.task()`. */
  constructor(core: AppCore, name: string, handler: (...args: unknown[]) => unknown, options: TaskOptions) {
    this.#core = core;
    this.name = name;
    this.handler = handler;
    this.options = options;
  }

  /**
   * Sends the task with positional args. Resolves when the broker has the message.
   *
   * @example
   * const result = await add.delay(2, 3);
   */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.applyAsync({ args });
  }

  /**
   * Sends the task with options (countdown, eta, expires, priority, queue, taskId, headers…).
   *
   * @example
   * await add.applyAsync({ args: [2, 3], countdown: '10s', priority: 9 });
   */
  async applyAsync(options: ApplyOptions<A> = {}): Promise<AsyncResult<R>> {
    const request = toSendRequest(this.name, options, this.options);
    if (this.options.argsSchema)
      await this.#core.validateArgs(this as unknown as Task<never[], unknown>, request.args, 'delay');
    return this.#core.send(request) as Promise<AsyncResult<R>>;
  }

  /**
   * Sends many calls of the task at once, as one batch: one round trip per broker for the lot (in
   * pipelines of up to 1,000 messages on Redis), and all or none on each broker. Resolves when the
   * broker has them, with one AsyncResult per call, in order. A call that cannot be encoded (or that
   * the task's `argsSchema` refuses) rejects the whole batch before anything is sent.
   *
   * @example
   * const results = await add.applyMany([{ args: [1, 2] }, { args: [3, 4], priority: 9 }]);
   */
  async applyMany(calls: readonly ApplyOptions<A>[]): Promise<AsyncResult<R>[]> {
    const requests = calls.map((options) => toSendRequest(this.name, options, this.options));
    if (this.options.argsSchema) {
      const task = this as unknown as Task<never[], unknown>;
      for (const request of requests) await this.#core.validateArgs(task, request.args, 'delay');
    }
    return this.#core.sendMany(requests) as Promise<AsyncResult<R>[]>;
  }

  /**
   * `applyMany` with positional args only: one call per element.
   *
   * @example
   * const results = await add.delayMany([[1, 2], [3, 4]]);
   */
  delayMany(argsList: readonly A[]): Promise<AsyncResult<R>[]> {
    return this.applyMany(argsList.map((args) => ({ args })));
  }

  /**
   * A signature: this task with (partial) args and options, for workflows and `link`.
   *
   * @example
   * add.s(2).delay(3) // runs add(2, 3)... with the partial args first, as Celery does
   */
  s(...args: Partial<A>): Signature<R> {
    return new Signature<R>(this.#core, this.name, args as unknown[], {}, {});
  }

  /**
   * Runs the task here and now, in this process, without a broker (for unit tests): retries are
   * run in place, the result is returned as an EagerResult.
   *
   * @example
   * const r = await add.apply(2, 3); r.get() // 5
   */
  apply(...args: A): Promise<EagerResult<R>> {
    return this.#core.applyEager(this as unknown as Task<never[], unknown>, args, {}) as Promise<
      EagerResult<R>
    >;
  }
}

/** The handler's context type, for `bind: true` handlers. */
export type BoundHandler<A extends unknown[], R> = (ctx: TaskContext, ...args: A) => R;
