import { AsyncLocalStorage } from 'node:async_hooks';
import type { Duration } from './duration.js';
import type { Retry } from './errors.js';
import type { TaskState } from './results/meta.js';

/**
 * What a running task knows about itself. Passed first to `bind: true` handlers, and returned by
 * `currentTask()` anywhere in the task's async call tree.
 */
export interface TaskContext {
  /** The task id (Celery's `request.id`). */
  readonly id: string;
  /** The task name (`tasks.add`). */
  readonly name: string;
  /** How many times this task has been retried so far (0 on the first run). */
  readonly retries: number;
  /** Positional args as received. */
  readonly args: readonly unknown[];
  /** Keyword args as received (those not mapped onto positions by `params`). */
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** The message headers (Celery's names: root_id, parent_id, group, eta, expires…). */
  readonly headers: Readonly<Record<string, unknown>>;
  /** The queue the message came from. */
  readonly queue: string;
  /** The worker's node name (`celeriac@host`), or `eager` for `task.apply()`. */
  readonly hostname: string;
  /** Set when the event this run belongs to was published (`celeriac_event` header), else null. */
  readonly event: string | null;
  /** Fires on soft time limit, revoke-terminate and worker shutdown deadline: stop work and clean up. */
  readonly signal: AbortSignal;
  /**
   * Returns a `Retry` error to throw: `throw ctx.retry({ countdown: '5s' })`. The worker publishes the
   * retry message (same id, retries + 1), stores RETRY, then acks this one. When retries are exhausted
   * it returns the original error (`cause`) or a MaxRetriesExceeded error instead, so the task fails.
   */
  retry(options?: { countdown?: Duration; eta?: Date; cause?: unknown; maxRetries?: number }): Retry | Error;
  /** Stores a progress state (`PROGRESS`, or any custom name) with metadata for `AsyncResult` readers. */
  updateState(state: TaskState, meta?: unknown): Promise<void>;
}

const storage = new AsyncLocalStorage<TaskContext>();

/**
 * The context of the task running in the current async call tree, or undefined outside a task.
 *
 * @example
 * async function helper() { logger.info({ taskId: currentTask()?.id }, 'working') }
 */
export function currentTask(): TaskContext | undefined {
  return storage.getStore();
}

/** Runs `fn(...args)` with `ctx` as the current task context. */
export function runWithContext<A extends unknown[], T>(
  ctx: TaskContext,
  fn: (...args: A) => T,
  ...args: A
): T {
  return storage.run(ctx, fn, ...args);
}
