/**
 * Named errors with stable codes. Every error Celeriac throws is a `CeleriacError` subclass with a
 * `code`, an optional `cause`, and a message that names the bad input and what was expected.
 *
 * @example
 * try { await add.delay(1n as never, 2) } catch (e) { if (e instanceof PayloadError) console.log(e.code) }
 */
export class CeleriacError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A config field was missing or had the wrong shape. `field` names it (`broker`, `retry.max`…). */
export class ConfigError extends CeleriacError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', `invalid config: ${field}: ${message}`, options);
    this.field = field;
  }
}

/** A payload or arguments that cannot be sent (not JSON-safe, or refused by a schema). */
export class PayloadError extends CeleriacError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_PAYLOAD', path ? `${path}: ${message}` : message, options);
    this.path = path;
  }
}

/** A message on the wire that cannot be decoded into a task message. `reason` is short and stable. */
export class MalformedMessageError extends CeleriacError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MALFORMED', message, options);
  }
}

/** The worker received a message for a task it does not know. Celery calls this NotRegistered. */
export class NotRegistered extends CeleriacError {
  readonly taskName: string;
  constructor(taskName: string) {
    super('ERR_NOT_REGISTERED', `task not registered: '${taskName}'`);
    this.taskName = taskName;
  }
}

/** `get()` was called but the app has no result sink (`results` unset). */
export class NoResultSinkError extends CeleriacError {
  constructor() {
    super(
      'ERR_NO_RESULT_SINK',
      'no result sink is configured: set `results` (e.g. "memory://", "redis://…") in new Celeriac({...}) or CELERIAC_RESULTS_URL to read results',
    );
  }
}

/** `get({ timeout })` ran out before the task reached a ready state. */
export class TimeoutError extends CeleriacError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
  }
}

/** A broker or sink could not be reached or was closed. */
export class ConnectionError extends CeleriacError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONNECTION', message, options);
  }
}

/** An operation on a closed app, worker, transport or sink. */
export class ClosedError extends CeleriacError {
  constructor(what: string) {
    super('ERR_CLOSED', `${what} is closed`);
  }
}

/**
 * A task failed. Carries Celery's fields so a failure from Python and one from TypeScript look alike.
 * `excType` is the error's name (`ValueError`, `TypeError`…), `excMessage` the list of messages.
 */
export class TaskError extends CeleriacError {
  readonly taskId: string;
  readonly excType: string;
  readonly excMessage: unknown[];
  readonly excModule: string | null;
  readonly traceback: string | null;
  constructor(
    taskId: string,
    fields: { excType: string; excMessage: unknown[]; excModule?: string | null; traceback?: string | null },
  ) {
    const text = fields.excMessage.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(', ');
    super('ERR_TASK_FAILED', `task ${taskId} failed: ${fields.excType}${text ? `: ${text}` : ''}`);
    this.taskId = taskId;
    this.excType = fields.excType;
    this.excMessage = fields.excMessage;
    this.excModule = fields.excModule ?? null;
    this.traceback = fields.traceback ?? null;
  }
}

/** The task was revoked (or expired) and did not run. */
export class TaskRevokedError extends TaskError {}

/** The soft time limit fired: raised where the task awaits, so it can clean up. */
export class SoftTimeLimitExceeded extends CeleriacError {
  constructor(limitMs: number) {
    super('ERR_SOFT_TIME_LIMIT', `soft time limit (${limitMs} ms) exceeded`);
  }
}

/** The hard time limit fired: the task was stopped. */
export class TimeLimitExceeded extends CeleriacError {
  constructor(limitMs: number) {
    super('ERR_TIME_LIMIT', `hard time limit (${limitMs} ms) exceeded`);
  }
}

// ---- Sentinel errors: thrown by a task to steer what the worker does next (Celery's names). ----

/**
 * Throw (or `return ctx.retry(...)`) to run the task again later. The worker publishes the retry
 * message (same id, retries + 1) before it acks the current one.
 *
 * @example
 * throw new Retry({ countdown: '5s', cause: err })
 */
export class Retry extends CeleriacError {
  readonly countdownMs: number | undefined;
  readonly eta: Date | undefined;
  readonly maxRetries: number | undefined;
  constructor(options: { countdownMs?: number; eta?: Date; cause?: unknown; maxRetries?: number } = {}) {
    super('RETRY', 'task asked to be retried', { cause: options.cause });
    this.countdownMs = options.countdownMs;
    this.eta = options.eta;
    this.maxRetries = options.maxRetries;
  }
}

/** Throw to refuse a message: it is dead-lettered (or requeued with `requeue: true`), not retried. */
export class Reject extends CeleriacError {
  readonly requeue: boolean;
  constructor(reason = 'rejected by task', options: { requeue?: boolean } = {}) {
    super('REJECT', reason);
    this.requeue = options.requeue ?? false;
  }
}

/** Throw to drop a message silently: it is acked and no result state is stored. */
export class Ignore extends CeleriacError {
  constructor(reason = 'ignored by task') {
    super('IGNORE', reason);
  }
}
