/**
 * Documents: a task's result, in Celery's result-meta shape (`celery-task-meta-<id>` on Redis, the
 * rpc reply on AMQP). Key order follows Celery: status, result, traceback, children, date_done,
 * [group_id], [parent_id], [extended fields], task_id.
 */

/** Celery's built-in states; custom progress states (any other string) are allowed too. */
export type BuiltinState = 'PENDING' | 'RECEIVED' | 'STARTED' | 'RETRY' | 'SUCCESS' | 'FAILURE' | 'REVOKED';
export type TaskState = BuiltinState | (string & {});

export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
export const EXCEPTION_STATES: ReadonlySet<string> = new Set(['FAILURE', 'RETRY', 'REVOKED']);

/** A serialized exception, as Celery stores it in `result` for FAILURE / RETRY / REVOKED. */
export interface ExceptionInfo {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string | null;
}

export interface ResultMeta {
  status: TaskState;
  result: unknown;
  traceback: string | null;
  children: unknown[];
  date_done: string | null;
  group_id?: string;
  parent_id?: string;
  name?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  worker?: string;
  retries?: number;
  queue?: string;
  task_id: string;
}
