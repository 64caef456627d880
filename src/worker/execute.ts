import type { TaskContext } from '../context.js';
import { runWithContext } from '../context.js';
import { toEpochMs, toMs } from '../duration.js';
import { CeleriacError, Ignore, Reject, Retry, SoftTimeLimitExceeded, TimeLimitExceeded } from '../errors.js';
import { withRunSpan } from '../observability/tracing.js';
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
 * Runs a task's handler with its context and time limits, and classifies the outcome. Never throws.
 * The soft limit aborts the context's signal with SoftTimeLimitExceeded (the task can clean up); the
 * hard limit ends the run with TimeLimitExceeded (on the event loop the handler's promise cannot be
 * killed: it is abandoned and its result ignored).
 */
export function runTask(input: RunInput): Promise<Outcome> {
  const policy = resolveRetry(input.task.options.retry);
  const controller = input.controller ?? new LazyAbortController();
  // No limit and no outside signal to link (the usual run): no timers, no race.
  if (input.limits.softMs === null && input.limits.hardMs === null && (input.controller || !input.external))
    return runHandler(input, makeContext(input, controller, policy), policy);
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
  const ctx = makeContext(input, controller, policy);
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

/** Calls the handler in its context (and its span, when OpenTelemetry is on); never rejects. */
async function runHandler(input: RunInput, ctx: TaskContext, policy: ResolvedRetry): Promise<Outcome> {
  const { task } = input;
  try {
    const callArgs = task.options.bind ? [ctx, ...input.args] : input.args;
    // A `run <task>` span, child of the caller's trace context in the headers, when OpenTelemetry is on.
    const value = await withRunSpan(task.name, input.id, input.headers, () =>
      runWithContext(ctx, () => task.handler(...callArgs)),
    );
    return { kind: 'success', value };
  } catch (err) {
    return classify(err, input, policy);
  }
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

function makeContext(input: RunInput, controller: AbortController, policy: ResolvedRetry): TaskContext {
  return {
    id: input.id,
    name: input.task.name,
    retries: input.retries,
    args: input.args,
    kwargs: input.kwargs,
    headers: input.headers,
    queue: input.queue,
    hostname: input.hostname,
    event: input.event,
    get signal() {
      return controller.signal;
    },
    retry(options = {}) {
      const max = options.maxRetries ?? policy.max;
      if (input.retries >= max) {
        return options.cause instanceof Error
          ? options.cause
          : new MaxRetriesExceededError(input.task.name, input.id, max);
      }
      return new Retry({
        ...(options.countdown !== undefined
          ? { countdownMs: toMs(options.countdown, 'retry countdown') }
          : {}),
        ...(options.eta !== undefined ? { eta: new Date(toEpochMs(options.eta, 'retry eta')) } : {}),
        cause: options.cause,
        maxRetries: max,
      });
    },
    updateState: (state, meta) => input.updateState(state, meta ?? null),
  };
}
