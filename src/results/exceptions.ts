/**
 * Failures and result metas across languages (DESIGN.md §2 "Errors across languages"), in the
 * shapes Celery stores: `{exc_type, exc_message, exc_module}` and `celery-task-meta-*` documents
 * with Celery's key order.
 *
 * - `exc_type` is the error's name; `exc_module` is `builtins` when that name is one of Python's
 *   built-in exception classes that take a message (so Python rebuilds a real `ValueError`,
 *   `TypeError`…), else `celeriac.errors` (Python then makes an exception class of that name).
 *   A TaskError (a failure that came from another task, maybe Python) keeps its own fields.
 * - The traceback is the JS stack framed like Python's, so Python tools show it sensibly:
 *   `Traceback (most recent call last):`, one `File "<file>", line N, in <function>` per frame,
 *   oldest first, then `<Type>: <message>` (module-qualified unless builtins). A `cause` chain
 *   comes first, joined by Python's "direct cause" sentence.
 */
import { TaskError, TaskRevokedError } from '../errors.js';
import { naiveIso } from '../messages/codec.js';
import { type ExceptionInfo, READY_STATES, type ResultMeta, type TaskState } from './meta.js';

export const BUILTINS_MODULE = 'builtins';
export const CELERIAC_MODULE = 'celeriac.errors';
export const CELERY_EXCEPTIONS_MODULE = 'celery.exceptions';

/**
 * Python 3 built-in exception classes that can be rebuilt from a list of messages. Left out on
 * purpose: SystemExit, KeyboardInterrupt, GeneratorExit (raising them in a Python client would
 * stop it), ExceptionGroup and the Unicode*Error family (their constructors need more arguments).
 */
const PYTHON_BUILTIN_EXCEPTIONS: ReadonlySet<string> = new Set([
  'BaseException',
  'Exception',
  'ArithmeticError',
  'AssertionError',
  'AttributeError',
  'BlockingIOError',
  'BrokenPipeError',
  'BufferError',
  'ChildProcessError',
  'ConnectionAbortedError',
  'ConnectionError',
  'ConnectionRefusedError',
  'ConnectionResetError',
  'EOFError',
  'EnvironmentError',
  'FileExistsError',
  'FileNotFoundError',
  'FloatingPointError',
  'IOError',
  'ImportError',
  'IndentationError',
  'IndexError',
  'InterruptedError',
  'IsADirectoryError',
  'KeyError',
  'LookupError',
  'MemoryError',
  'ModuleNotFoundError',
  'NameError',
  'NotADirectoryError',
  'NotImplementedError',
  'OSError',
  'OverflowError',
  'PermissionError',
  'ProcessLookupError',
  'RecursionError',
  'ReferenceError',
  'RuntimeError',
  'StopAsyncIteration',
  'StopIteration',
  'SyntaxError',
  'SystemError',
  'TabError',
  'TimeoutError',
  'TypeError',
  'UnboundLocalError',
  'UnicodeError',
  'ValueError',
  'ZeroDivisionError',
]);

/** The module Python should look the exception name up in. */
export function excModuleFor(excType: string): string {
  return PYTHON_BUILTIN_EXCEPTIONS.has(excType) ? BUILTINS_MODULE : CELERIAC_MODULE;
}

/** `err.name`, unless it is the inherited 'Error' of a subclass that never set it: then the class name. */
function errorName(err: Error): string {
  if (typeof err.name === 'string' && err.name !== '' && err.name !== 'Error') return err.name;
  const ctor = (err as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : 'Error';
}

function jsonSafeText(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `at fn (file:line:col)` / `at file:line:col` / `at async fn (file:line:col)`. */
const FRAME = /^\s*at (?:(.+?) \()?(.+?):(\d+):\d+\)?$/;

function pythonFrames(stack: string | undefined): string[] {
  if (!stack) return [];
  const frames: string[] = [];
  for (const line of stack.split('\n')) {
    if (!/^\s*at /.test(line)) continue;
    const m = FRAME.exec(line);
    if (m) frames.push(`  File "${m[2]}", line ${m[3]}, in ${m[1] ?? '<module>'}`);
    else frames.push(`  ${line.trim()}`);
  }
  return frames.reverse();
}

function formatOne(info: ExceptionInfo, stack: string | undefined): string {
  const qualified =
    info.exc_module && info.exc_module !== BUILTINS_MODULE
      ? `${info.exc_module}.${info.exc_type}`
      : info.exc_type;
  const message = info.exc_message.map(jsonSafeText).join(', ');
  const frames = pythonFrames(stack);
  return `Traceback (most recent call last):\n${frames.map((f) => `${f}\n`).join('')}${qualified}${message ? `: ${message}` : ''}\n`;
}

/**
 * Serializes anything a task threw into Celery's exception dict and a Python-style traceback.
 *
 * @example
 * serializeError(new TypeError('bad')).info // { exc_type: 'TypeError', exc_message: ['bad'], exc_module: 'builtins' }
 */
export function serializeError(err: unknown): { info: ExceptionInfo; traceback: string } {
  return { info: exceptionInfo(err), traceback: formatTraceback(err, 0) };
}

/** Just the `{exc_type, exc_message, exc_module}` part of `serializeError`. */
export function exceptionInfo(err: unknown): ExceptionInfo {
  if (err instanceof TaskError) {
    return { exc_type: err.excType, exc_message: [...err.excMessage], exc_module: err.excModule };
  }
  if (err instanceof Error) {
    const type = errorName(err);
    return { exc_type: type, exc_message: [err.message], exc_module: excModuleFor(type) };
  }
  return { exc_type: 'Exception', exc_message: [jsonSafeText(err)], exc_module: BUILTINS_MODULE };
}

function formatTraceback(err: unknown, depth: number): string {
  if (err instanceof TaskError && err.traceback) return err.traceback;
  const info = exceptionInfo(err);
  const own = formatOne(info, err instanceof Error ? err.stack : undefined);
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause === undefined || cause === null || depth >= 10) return own;
  return `${formatTraceback(cause, depth + 1)}\nThe above exception was the direct cause of the following exception:\n\n${own}`;
}

// ---------------------------------------------------------------------------------------------
// Result metas

/**
 * Builds a meta with Celery's key order: status, result, traceback, children, date_done,
 * [group_id], [parent_id], [name, args, kwargs, worker, retries, queue], task_id.
 * `date_done` is naive UTC ISO for ready states, null otherwise, unless `extra` sets it.
 */
function meta(
  taskId: string,
  status: TaskState,
  result: unknown,
  traceback: string | null,
  extra: Partial<ResultMeta>,
): ResultMeta {
  const ordered: Record<string, unknown> = {
    status,
    result,
    traceback,
    children: extra.children ?? [],
    date_done:
      extra.date_done !== undefined
        ? extra.date_done
        : READY_STATES.has(status)
          ? naiveIso(Date.now())
          : null,
  };
  if (extra.group_id) ordered.group_id = extra.group_id;
  if (extra.parent_id) ordered.parent_id = extra.parent_id;
  if (extra.name !== undefined) {
    ordered.name = extra.name;
    ordered.args = extra.args ?? null;
    ordered.kwargs = extra.kwargs ?? null;
    ordered.worker = extra.worker ?? null;
    ordered.retries = extra.retries ?? null;
    ordered.queue = extra.queue ?? null;
  }
  ordered.task_id = taskId;
  return ordered as unknown as ResultMeta;
}

/**
 * SUCCESS meta.
 *
 * @example
 * successMeta(id, 5) // {status: 'SUCCESS', result: 5, traceback: null, children: [], date_done: '2026-…', task_id: id}
 */
export function successMeta(taskId: string, result: unknown, extra: Partial<ResultMeta> = {}): ResultMeta {
  return meta(taskId, 'SUCCESS', result, null, extra);
}

/**
 * FAILURE meta from whatever the task threw (see `serializeError`).
 *
 * @example
 * failureMeta(id, new Error('boom')).result // { exc_type: 'Error', exc_message: ['boom'], exc_module: 'celeriac.errors' }
 */
export function failureMeta(taskId: string, error: unknown, extra: Partial<ResultMeta> = {}): ResultMeta {
  const { info, traceback } = serializeError(error);
  return meta(taskId, 'FAILURE', info, traceback, extra);
}

/**
 * RETRY meta as Celery stores it while a retry waits: `result` is the exception dict of the error
 * that caused the retry (null when there is none), `traceback` set, `date_done` null, and the
 * retry itself (same id) as the one child.
 */
export function retryMeta(taskId: string, error?: unknown, extra: Partial<ResultMeta> = {}): ResultMeta {
  const cause = error instanceof Error && error.name === 'Retry' ? error.cause : error;
  const hasCause = cause !== undefined && cause !== null;
  const traceback = hasCause
    ? serializeError(cause).traceback
    : 'Traceback (most recent call last):\ncelery.exceptions.Retry: Retry\n';
  return meta(taskId, 'RETRY', hasCause ? exceptionInfo(cause) : null, traceback, {
    children: [[[taskId, null], null]],
    ...extra,
  });
}

/**
 * REVOKED meta: `TaskRevokedError` from `celery.exceptions` with the reason (`'expired'` when the
 * task expired before it ran, `'revoked'` for a revoke), as Celery's worker stores it.
 */
export function revokedMeta(
  taskId: string,
  reason: string = 'revoked',
  extra: Partial<ResultMeta> = {},
): ResultMeta {
  const info: ExceptionInfo = {
    exc_type: 'TaskRevokedError',
    exc_message: [reason],
    exc_module: CELERY_EXCEPTIONS_MODULE,
  };
  return meta(taskId, 'REVOKED', info, null, extra);
}

/**
 * Any other state (STARTED, a custom progress state): `result` is the state's meta, date_done null
 * unless the state is ready.
 *
 * @example
 * stateMeta(id, 'PROGRESS', { done: 3, total: 10 })
 */
export function stateMeta(
  taskId: string,
  state: TaskState,
  result: unknown,
  extra: Partial<ResultMeta> = {},
): ResultMeta {
  return meta(taskId, state, result ?? null, null, extra);
}

function isExceptionInfo(v: unknown): v is { exc_type: string; exc_message?: unknown; exc_module?: unknown } {
  return typeof v === 'object' && v !== null && typeof (v as { exc_type?: unknown }).exc_type === 'string';
}

/**
 * The error a FAILURE or REVOKED meta stands for: a TaskRevokedError for REVOKED, else a TaskError
 * with the stored type, messages, module and traceback (a Python failure looks like a JS one).
 *
 * @example
 * throw toTaskError(meta) // TaskError: task … failed: ValueError: boom
 */
export function toTaskError(meta: ResultMeta): TaskError {
  const result = meta.result;
  let fields: { excType: string; excMessage: unknown[]; excModule: string | null; traceback: string | null };
  if (isExceptionInfo(result)) {
    const msg = result.exc_message;
    fields = {
      excType: result.exc_type,
      excMessage: Array.isArray(msg) ? msg : msg === undefined || msg === null ? [] : [msg],
      excModule: typeof result.exc_module === 'string' ? result.exc_module : null,
      traceback: meta.traceback,
    };
  } else if (meta.status === 'REVOKED') {
    fields = {
      excType: 'TaskRevokedError',
      excMessage: ['revoked'],
      excModule: CELERY_EXCEPTIONS_MODULE,
      traceback: meta.traceback,
    };
  } else {
    fields = {
      excType: 'UnknownError',
      excMessage: result === null || result === undefined ? [] : [result],
      excModule: null,
      traceback: meta.traceback,
    };
  }
  return meta.status === 'REVOKED'
    ? new TaskRevokedError(meta.task_id, fields)
    : new TaskError(meta.task_id, fields);
}
