import type { TaskContext } from '../context.js';
import { runWithContext } from '../context.js';
import type { Duration } from '../duration.js';
import { toEpochMs, toMs } from '../duration.js';
import { CeleriacError, Ignore, Reject, Retry, SoftTimeLimitExceeded, TimeLimitExceeded } from '../errors.js';
import { runSpanNeeded, withRunSpan } from '../observability/tracing.js';
import type { TaskState } from '../results/meta.js';
import type { Task } from '../task.js';
import { LazyAbortController } from './abort.js';
import type { ResolvedRetry } from './backoff.js';
import { resolveRetry, retryDelay } from './backoff.js';

/** How one run of a handler ended. */
export type Outcome =
  | { kind: 'success'; value: unknown }
  | { kind: 'failure'; error: Error }
  | { kind: 'retry'; error: Error | null; countdownMs: number }
  | { kind: 'reject'; reason: string; requeue: boolean }
  | { kind: 'ignore'; reason: string };

/** Thrown by ctx.retry() when retries are exhausted and no cause was given (Celery's name). */
export class MaxRetriesExceededError extends CeleriacError {
  constructor(task: string, id: string, max: number) {
    super('ERR_MAX_RETRIES', `can't retry ${task}[${id}]: max retries (${max}) exceeded`);
  }
}

export interface RunInput {
  task: Task<never[], unknown>;
  id: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  headers: Record<string, unknown>;
  retries: number;
  queue: string;
  hostname: string;
  event: string | null;
  /** [hard, soft] in ms, message values overriding the task's. */
  limits: { hardMs: number | null; softMs: number | null };
  /** Aborted from outside (revoke-terminate, shutdown deadline). */
  external?: AbortSignal;
  /** The run's own controller, when the caller already has one (saves linking a second signal). */
  controller?: AbortController;
  updateState: (state: TaskState, meta: unknown) => Promise<void>;
}

/**
 * Runs a task's handler with its context and time limits, and classifies the outcome. Never throws
 * or rejects. A handler that returns (not a promise) with no limit to watch gives its outcome at
 * once, without a promise; otherwise the outcome comes as a promise.
 * The soft limit aborts the context's signal with SoftTimeLimitExceeded (the task can clean up); the
 * hard limit ends the run with TimeLimitExceeded (on the event loop the handler's promise cannot be
 * killed: it is abandoned and its result ignored).
 */
export function runTask(input: RunInput): Outcome | Promise<Outcome> {
  const policy = resolveRetry(input.task.options.retry);
  const controller = input.controller ?? new LazyAbortController();
  // No limit and no outside signal to link (the usual run): no timers, no race.
  if (input.limits.softMs === null && input.limits.hardMs === null && (input.controller || !input.external))
    return runHandler(input, new RunContext(input, controller, policy), policy);
  return runLimited(input, controller, policy);
}

async function runLimited(
  input: RunInput,
  controller: AbortController,
  policy: ResolvedRetry,
): Promise<Outcome> {
  const external = input.controller ? undefined : input.external;
  const onExternal = () => controller.abort(external?.reason);
  external?.addEventListener('abort', onExternal, { once: true });
  const ctx = new RunContext(input, controller, policy);
  const timers: NodeJS.Timeout[] = [];
  if (input.limits.softMs !== null) {
    const ms = input.limits.softMs;
    timers.push(setTimeout(() => controller.abort(new SoftTimeLimitExceeded(ms)), ms));
  }
  let hard: Promise<Outcome> | null = null;
  if (input.limits.hardMs !== null) {
    const ms = input.limits.hardMs;
    hard = new Promise((resolve) => {
      timers.push(
        setTimeout(() => {
          controller.abort(new TimeLimitExceeded(ms));
          resolve({ kind: 'failure', error: new TimeLimitExceeded(ms) });
        }, ms),
      );
    });
  }
  const run = runHandler(input, ctx, policy);
  try {
    return hard ? await Promise.race([run, hard]) : await run;
  } finally {
    for (const t of timers) clearTimeout(t);
    external?.removeEventListener('abort', onExternal);
  }
}

/**
 * Calls the handler in its context (and its span, when OpenTelemetry is on); never throws or
 * rejects. Synchronous when the handler is and no span is needed.
 */
function runHandler(input: RunInput, ctx: TaskContext, policy: ResolvedRetry): Outcome | Promise<Outcome> {
  const { task } = input;
  let value: unknown;
  try {
    if (runSpanNeeded(input.headers)) {
      // A `run <task>` span, child of the caller's trace context in the headers.
      const callArgs = task.options.bind ? [ctx, ...input.args] : input.args;
      value = withRunSpan(task.name, input.id, input.headers, () =>
        runWithContext(ctx, callHandler, task, callArgs),
      );
    } else {
      value = runWithContext(ctx, callHandler, task, task.options.bind ? [ctx, ...input.args] : input.args);
    }
  } catch (err) {
    return classify(err, input, policy);
  }
  if (!isThenable(value)) return { kind: 'success', value };
  return Promise.resolve(value).then(
    (v): Outcome => ({ kind: 'success', value: v }),
    (err: unknown) => classify(err, input, policy),
  );
}

function callHandler(task: Task<never[], unknown>, args: unknown[]): unknown {
  return task.handler(...(args as never[]));
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}
function classify(err: unknown, input: RunInput, policy: ResolvedRetry): Outcome {
  if (err instanceof Retry) {
    const countdownMs = err.eta
      ? Math.max(0, err.eta.getTime() - Date.now())
      : (err.countdownMs ?? retryDelay(policy, input.retries));
    const cause = err.cause instanceof Error ? err.cause : null;
    return { kind: 'retry', error: cause, countdownMs };
  }
  if (err instanceof Reject) return { kind: 'reject', reason: err.message, requeue: err.requeue };
  if (err instanceof Ignore) return { kind: 'ignore', reason: err.message };
  const error = err instanceof Error ? err : new Error(String(err));
  const auto = input.task.options.autoretryFor;
  if (auto?.some((cls) => error instanceof cls) && input.retries < policy.max) {
    return { kind: 'retry', error, countdownMs: retryDelay(policy, input.retries) };
  }
  return { kind: 'failure', error };
}

/**
 * The TaskContext of one run. A class (getter and methods on the prototype), so a context per task
 * costs one small object: an object literal with a getter would need its own hidden class each time.
 */
class RunContext implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly queue: string;
  readonly hostname: string;
  readonly event: string | null;
  readonly #input: RunInput;
  readonly #controller: AbortController;
  readonly #policy: ResolvedRetry;

  constructor(input: RunInput, controller: AbortController, policy: ResolvedRetry) {
    this.id = input.id;
    this.name = input.task.name;
    this.retries = input.retries;
    this.args = input.args;
    this.kwargs = input.kwargs;
    this.headers = input.headers;
    this.queue = input.queue;
    this.hostname = input.hostname;
    this.event = input.event;
    this.#input = input;
    this.#controller = controller;
    this.#policy = policy;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  retry(
    options: { countdown?: Duration; eta?: Date; cause?: unknown; maxRetries?: number } = {},
  ): Retry | Error {
    const max = options.maxRetries ?? this.#policy.max;
    if (this.retries >= max) {
      return options.cause instanceof Error
        ? options.cause
        : new MaxRetriesExceededError(this.name, this.id, max);
    }
    return new Retry({
      ...(options.countdown !== undefined ? { countdownMs: toMs(options.countdown, 'retry countdown') } : {}),
      ...(options.eta !== undefined ? { eta: new Date(toEpochMs(options.eta, 'retry eta')) } : {}),
      cause: options.cause,
      maxRetries: max,
    });
  }

  updateState(state: TaskState, meta?: unknown): Promise<void> {
    return this.#input.updateState(state, meta ?? null);
  }
}
